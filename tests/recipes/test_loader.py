"""The recipe loader: strict keys and types, one level of inheritance, overrides, rescaling."""
from __future__ import annotations

import textwrap

import pytest

from bench.errors import BenchError
from bench.recipes import load_recipe, plan_for, recipe_from_dict, recipe_hash, recipe_to_dict

BASE = """
description = "a base"
network = "cifar_resnet20_v1_a"
[data]
dataset = "cifar10"
train_augment = "cifar"
input_size = 32
protocol = "full"
[optim]
lr = 0.1
batch_size = 128
[schedule]
kind = "step"
epochs = 10
milestones = [5, 8]
[train]
devices = 2
[reference]
source = "a test fixture, not a publication"
top1_err = 8.75
"""


@pytest.fixture
def recipes(tmp_path):
    def write(name: str, text: str):
        (tmp_path / f"{name}.toml").write_text(textwrap.dedent(text))
        return tmp_path
    write("base", BASE)
    return write


def _load(recipes, name, overrides=()):
    return load_recipe(name, overrides, directory=recipes("unused", "description = 'x'"))


def test_a_recipe_loads_into_typed_sections(recipes):
    r = _load(recipes, "base")
    assert r.schedule.milestones == (5.0, 8.0)
    assert r.optim.lr == 0.1 and isinstance(r.optim.lr, float)
    assert r.reference.top1_err == 8.75


def test_child_overrides_its_base_key_by_key(recipes):
    recipes("child", 'base = "base"\ndescription = "c"\n[optim]\nlr = 0.2\n')
    r = _load(recipes, "child")
    assert r.optim.lr == 0.2 and r.optim.batch_size == 128 and r.base == "base"


def test_inheritance_is_one_level(recipes):
    recipes("child", 'base = "base"\ndescription = "c"\n')
    recipes("grandchild", 'base = "child"\ndescription = "g"\n')
    with pytest.raises(BenchError, match="one level"):
        _load(recipes, "grandchild")


@pytest.mark.parametrize("text, message", [
    ("[optim]\nlrr = 0.1\n", "unknown key 'optim.lrr' (did you mean: lr?)"),
    ("netwrk = 'x'\n", "unknown key 'netwrk' (did you mean: network"),
    ("[optim]\nlr = 'fast'\n", "optim.lr must be float"),
    ("[schedule]\nepochs = 1.5\n", "schedule.epochs must be int"),
    ("[schedule]\nkind = 'steps'\n", "schedule.kind = 'steps' is not one of"),
    ("[optim]\nmomentum = 1.5\n", "optim.momentum = 1.5 must be between"),
    ("[schedule]\nmilestones = [8, 5]\n", "milestones must be increasing"),
    ("network = 'resnet50_v1x'\n", "unknown model 'resnet50_v1x'"),
    ("[network_args]\nzero_init = true\n", "unknown model option 'zero_init'"),
])
def test_bad_values_are_one_line_errors_naming_the_key(recipes, text, message):
    recipes("bad", 'base = "base"\ndescription = "c"\n' + text)
    with pytest.raises(BenchError) as err:
        _load(recipes, "bad")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_missing_reference_source_is_rejected(recipes):
    recipes("nosource", BASE.replace('source = "a test fixture, not a publication"', ''))
    with pytest.raises(BenchError, match="reference.source is required"):
        _load(recipes, "nosource")


def test_unknown_recipe_suggests_close_names(recipes):
    with pytest.raises(BenchError, match=r"unknown recipe 'bsae' \(did you mean: base"):
        _load(recipes, "bsae")


def test_overrides_are_typed_and_checked(recipes):
    r = _load(recipes, "base", ["optim.lr=0.05", "train.mixup_alpha=0.2",
                                "network_args.zero_init_last_bn=true"])
    assert r.optim.lr == 0.05 and r.train.mixup_alpha == 0.2
    assert r.network_args == {"zero_init_last_bn": True}
    with pytest.raises(BenchError, match="did you mean: lr"):
        _load(recipes, "base", ["optim.lrate=1"])
    with pytest.raises(BenchError, match="expected key=value"):
        _load(recipes, "base", ["optim.lr"])
    with pytest.raises(BenchError, match="optim.batch_size must be int"):
        _load(recipes, "base", ["optim.batch_size=many"])


def test_json_round_trip_keeps_the_hash(recipes):
    r = _load(recipes, "base")
    again = recipe_from_dict(recipe_to_dict(r))
    assert again == r and recipe_hash(again) == recipe_hash(r)
    assert recipe_hash(_load(recipes, "base", ["optim.lr=0.2"])) != recipe_hash(r)
    # Writing a default out, or a schema that gains an option with a default, keeps the hash.
    assert recipe_hash(_load(recipes, "base", ["data.eval_size=0"])) == recipe_hash(r)


def test_plan_with_unknown_memory_keeps_per_device_batch_and_scales_lr_linearly(recipes):
    # No memory facts (a GPU MXNet cannot query): 64 per device is what is known to fit.
    r = _load(recipes, "base")
    plan = plan_for(r, devices=1)
    assert (plan.per_device_batch, plan.global_batch, plan.lr) == (64, 64, pytest.approx(0.05))
    assert any("linear scaling" in c for c in plan.changes)
    same = plan_for(r, devices=2)
    assert same.lr == 0.1 and same.changes == ()
    explicit = plan_for(r, devices=1, global_batch=128)
    assert explicit.lr == 0.1 and explicit.per_device_batch == 128


def test_iteration_budgets_stretch_with_a_smaller_batch(recipes):
    recipes("iters", 'base = "base"\ndescription = "c"\n[schedule]\niterations = 64000\n'
                     'milestones = [32000, 48000]\nunit = "iteration"\n')
    plan = plan_for(_load(recipes, "iters"), devices=1)
    assert plan.iterations == 128000 and plan.milestones == (64000, 96000)


def test_bad_global_batch_is_rejected(recipes):
    with pytest.raises(BenchError, match="multiple of the 2 device"):
        plan_for(_load(recipes, "base"), devices=2, global_batch=65)


def test_a_childs_reference_replaces_the_bases_whole(recipes):
    recipes("child", 'base = "base"\ndescription = "c"\n[reference]\nsource = "other"\n'
                     'top5_err = 2.0\n')
    r = _load(recipes, "child")
    assert r.reference.top1_err is None and r.reference.top5_err == 2.0
