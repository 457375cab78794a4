"""Plots: error curves of recorded results, and the trade-off at each protocol's compute."""
from __future__ import annotations

import pytest

from bench.results.published import Published, eval_gmacs, protocol_crops
from bench.results.records import record_run
from tests.cli import invoke
from tests.results.fixtures import record, write_published, write_run
from tests.results.test_results import _png_size


def test_curves_of_a_recorded_result_are_its_history(tmp_path):
    from bench.results.plots import curves_of
    results = tmp_path / "results"
    write_published(results)
    rec = record("he2015_cifar10_resnet20", "cifar_resnet20_v1_a", 8.6, epochs=4)
    path = record_run(write_run(tmp_path / "run", rec), results)
    curves = curves_of(path)
    assert curves["val"] == [(1, 38.6), (2, 28.6), (3, 18.6), (4, 8.6)]
    assert curves["train"] == [] and "recorded" in curves["name"]
    out = tmp_path / "curves.png"
    result = invoke("plot", "curves", str(path), str(tmp_path / "run"), "--out", str(out))
    assert result.exit_code == 0, result.stderr
    assert _png_size(out) == (800, 600)


def test_curves_of_something_else_is_a_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = invoke("plot", "curves", str(tmp_path / "empty"))
    assert result.exit_code == 2 and "a recorded result (results/runs/*.json)" in result.stderr


@pytest.mark.parametrize("protocol, dataset, crops", [
    ("center", "imagenet", (1, 224)),
    ("10crop", "imagenet", (10, 224)),
    ("center 320 from 320", "imagenet", (1, 320)),
    ("center 320 (resize not stated)", "imagenet", (1, 320)),
    ("center (published weights)", "imagenet", (1, 224)),
    ("other: resize 232 (bilinear) -> center crop 224, ImageNet-1k val", "imagenet", (1, 224)),
    ("other: timm validate: 224, crop 0.95, bicubic", "imagenet", (1, 224)),
    ("multi-scale (fully convolutional)", "imagenet", None),
    ("full", "cifar10", (1, None)),
])
def test_protocol_labels_give_their_crops(protocol, dataset, crops):
    assert protocol_crops(protocol, dataset) == crops


def test_a_320_crop_row_is_at_the_compute_of_a_320_crop():
    """Oracle: the profiler counting ResNet-18 on a 320x320 input (not the area ratio)."""
    from bench.models import get_model
    from bench.models import profile
    at_224 = profile(get_model("resnet18_v1", classes=1000), (1, 3, 224, 224)).macs / 1e9
    at_320 = profile(get_model("resnet18_v1", classes=1000), (1, 3, 320, 320)).macs / 1e9
    row = Published(network="resnet18_v1", recipe="x", dataset="imagenet",
                    protocol="center 320 from 320", source="s", verified=True, tolerance=0.5,
                    top1_err=30.0, gmacs=at_224)
    assert eval_gmacs(row) == pytest.approx(at_320, rel=1e-3)  # the classifier does not scale
    ten = Published(**{**row.__dict__, "protocol": "10crop"})
    assert eval_gmacs(ten) == pytest.approx(10 * at_224)


def test_tradeoff_labels_families_protocols_and_our_points(tmp_path, monkeypatch):
    from bench.results import plots
    results = tmp_path / "results"
    write_published(results)
    record_run(write_run(tmp_path / "run", record("he2015_cifar10_resnet20",
                                                  "cifar_resnet20_v1_a", 8.6)), results)
    annotations = []
    real = plots._save

    def keep(plt, fig, out):
        from matplotlib.legend import Legend
        ax = fig.axes[0]
        legends = [a for a in ax.artists if isinstance(a, Legend)] + [ax.get_legend()]
        annotations.extend(t.get_text() for t in ax.texts)
        annotations.extend(t.get_text() for legend in legends for t in legend.get_texts())
        return real(plt, fig, out)

    monkeypatch.setattr(plots, "_save", keep)
    out = tmp_path / "tradeoff.png"
    result = invoke("plot", "tradeoff", "--dataset", "cifar10", "--results-dir", str(results),
                    "--out", str(out), "--size", "900x600")
    assert result.exit_code == 0, result.stderr
    assert _png_size(out) == (900, 600)
    assert "ours: cifar_resnet20_v1_a / he2015_cifar10_resnet20 (n=1)" in annotations
    assert {"cifar resnet v1 a", "cifar resnet v1", "full"} <= set(annotations)


@pytest.mark.parametrize("network, family", [
    ("resnet50_v1d", "resnet v1d"), ("resnet50_v1", "resnet v1"), ("resnet152_v2", "resnet v2"),
    ("resnext101_32x4d", "resnext"), ("cifar_wrn28_10", "cifar wrn"),
    ("cifar_resnet110_v1_a", "cifar resnet v1 a"),
])
def test_family_drops_depth_and_width_only(network, family):
    from bench.results.plots import family as family_of
    assert family_of(network) == family
