"""The registry: names, aliases, sources and the one-line error for unknown names."""
from __future__ import annotations

import pytest

from bench.errors import BenchError
from bench.models import ALIASES, get_spec, list_models, model_flags, resolve_name

ALL = list_models()

# Every plain ResNet-family name in GluonCV 0.10.5's model zoo (gluoncv/model_zoo/model_zoo.py).
GLUONCV_NAMES = (
    [f"resnet{d}_v{v}" for d in (18, 34, 50, 101, 152) for v in ("1", "1b", "2")]
    + [f"resnet{d}_v1{s}" for d in (50, 101, 152) for s in "cdes"]
    + ["resnext50_32x4d", "resnext101_32x4d", "resnext101_64x4d", "resnext101e_64x4d"]
    + [f"cifar_resnet{d}_v{v}" for d in (20, 56, 110) for v in (1, 2)]
    + ["cifar_wideresnet16_10", "cifar_wideresnet28_10", "cifar_wideresnet40_8",
       "cifar_resnext29_32x4d", "cifar_resnext29_16x64d"])


def test_every_gluoncv_resnet_name_is_registered_as_its_own_counterpart():
    for name in GLUONCV_NAMES:
        assert get_spec(name).gluoncv == name
    assert sorted(s for s in (get_spec(n).gluoncv for n in ALL) if s) == sorted(GLUONCV_NAMES)


@pytest.mark.parametrize("name", [
    "resnet200_v1d", "resnet200_v2", "resnet34_v1_a", "resnet34_v1_c", "plain18_v1",
    "plain34_v1", "cifar_resnet1202_v1_a", "cifar_resnet164_v2", "cifar_resnet1001_v2",
    "cifar_wrn16_8", "cifar_wrn28_10", "cifar_wrn40_4", "cifar_resnet110_v1_sd",
    "resnet152_v1b_sd"])
def test_paper_variants_beyond_gluoncv_are_registered(name):
    assert get_spec(name).gluoncv is None
    assert get_spec(name).source


@pytest.mark.parametrize("name", [n for n in ALL if get_spec(n).arch == "resnet"])
def test_depth_matches_the_stage_layout(name):
    spec = get_spec(name)
    per_unit = 2 if spec.flags.get("block", "basic") == "basic" else 3
    # Zagoruyko & Komodakis count WRN depth as 6n + 4 (the projections included).
    extra = 4 if spec.family == "wide" else 2
    assert per_unit * sum(spec.flags["layers"]) + extra == spec.depth


@pytest.mark.parametrize("alias, canonical", [
    ("resnet50d", "resnet50_v1d"), ("resnet50c", "resnet50_v1c"), ("resnet50", "resnet50_v1b"),
    ("resnetv1d50", "resnet50_v1d"), ("ResNet50_vd", "resnet50_v1d"), ("ResNet50_vc",
    "resnet50_v1c"), ("ResNet200_vd", "resnet200_v1d"), ("resnet50_v1.5", "resnet50_v1b"),
    ("ResNet-50-D", "resnet50_v1d"), ("WRN-28-10", "cifar_wrn28_10")])
def test_aliases_from_other_schemes(alias, canonical):
    assert resolve_name(alias) == canonical
    assert alias in get_spec(canonical).aliases


def test_aliases_point_at_registered_names_and_never_shadow_them():
    for alias, target in ALIASES.items():
        assert target in ALL
        assert alias not in ALL


def test_unknown_name_is_one_line_with_close_matches():
    with pytest.raises(BenchError) as err:
        get_spec("resnet50_v1x")
    message = str(err.value)
    assert "\n" not in message and "resnet50_v1" in message and "did you mean" in message


def test_list_models_filters_by_pattern_and_alias():
    assert list_models("cifar_wrn*") == ["cifar_wrn16_8", "cifar_wrn28_10", "cifar_wrn40_4"]
    assert list_models("ResNet50_vd") == ["resnet50_v1d"]
    assert list_models("nothing*") == []


def test_unknown_override_is_rejected_with_a_suggestion():
    with pytest.raises(BenchError, match="did you mean: dropout"):
        model_flags("resnet18_v1", dropuot=0.5)


@pytest.mark.parametrize("name", ALL)
def test_every_network_builds_with_its_architecture_class(name):
    from bench.models.registry import ARCHITECTURES, constructor
    module, cls = ARCHITECTURES[get_spec(name).arch].split(":")
    assert constructor(name).__name__ == cls and constructor(name).__module__ == module


def test_an_option_of_another_family_is_refused_with_the_network_named():
    with pytest.raises(BenchError, match="unknown model option 'cardinalty' for resnet50_v1d.*"
                                         "cardinality"):
        model_flags("resnet50_v1d", cardinalty=2)
