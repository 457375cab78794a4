"""`bench run recipe` end to end on tiny files in the real formats (CIFAR binary batches,
ImageNet-style .rec packed by mxnet's im2rec, and image folders), as a user's data would be."""
from __future__ import annotations

import json

import pytest

from tests.cli import invoke
from tests.data.helpers import write_cifar, write_image_folders

SMOKE = ("--max-steps", "2", "--no-progress", "--loader-workers", "0")


def _metrics(out) -> dict:
    run_dir = next(p for p in out.rglob("metrics.json")).parent
    return json.loads((run_dir / "metrics.json").read_text())


def test_he2015_cifar_recipe_on_binary_batches(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-bin", "cifar10", "bin", per_batch=4, test=9)
    result = invoke("run", "recipe", "he2015_cifar10_resnet20", "--data-dir", str(tmp_path),
                    "--batch-size", "4", "--out", str(tmp_path / "runs"), *SMOKE)
    assert result.exit_code == 0, result.stderr
    metrics = _metrics(tmp_path / "runs")
    assert metrics["iterations"] == 2 and metrics["num_eval_samples"] == 9


@pytest.fixture(scope="module")
def imagenet_like(tmp_path_factory):
    from bench.data.recordio import pack_image_folder
    root = write_image_folders(tmp_path_factory.mktemp("imagenet"))
    rec = tmp_path_factory.mktemp("rec")
    pack_image_folder(root, rec, resize=None)
    return root, rec


@pytest.mark.parametrize("layout", ["rec", "folder"])
def test_gluoncv_imagenet_recipe_on_rec_and_folder_layouts(imagenet_like, tmp_path, layout):
    root, rec = imagenet_like
    data_dir = rec if layout == "rec" else root
    result = invoke("run", "recipe", "gluoncv_resnet18_v1b", "--data-dir", str(data_dir),
                    "--batch-size", "4", "--set", "data.input_size=32", "--set", "data.resize=40",
                    "--set", "network_args.classes=2", "--out", str(tmp_path / "runs"), *SMOKE)
    assert result.exit_code == 0, result.stderr
    metrics = _metrics(tmp_path / "runs")
    assert metrics["iterations"] == 2 and metrics["num_eval_samples"] == 10


def test_a_run_evaluates_at_its_recipes_eval_size_and_says_so(imagenet_like, tmp_path):
    # He 2016's ResNet-200 protocol in miniature: train on 32 crops, test 40 crops from side 40.
    root, _ = imagenet_like
    result = invoke("run", "recipe", "gluoncv_resnet18_v1b", "--data-dir", str(root),
                    "--batch-size", "4", "--set", "data.input_size=32", "--set", "data.resize=40",
                    "--set", "data.eval_size=40", "--set", "data.eval_resize=40",
                    "--set", "network_args.classes=2", "--out", str(tmp_path / "runs"), *SMOKE)
    assert result.exit_code == 0, result.stderr
    metrics = _metrics(tmp_path / "runs")
    assert metrics["num_eval_samples"] == 10 and metrics["protocol"] == "center 40 from 40"


def test_truncated_rec_is_one_line_and_nothing_is_written(imagenet_like, tmp_path):
    _, rec = imagenet_like
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("train.idx", "val.rec", "val.idx"):
        (broken / name).write_bytes((rec / name).read_bytes())
    data = (rec / "train.rec").read_bytes()
    (broken / "train.rec").write_bytes(data[:len(data) // 3])
    result = invoke("run", "recipe", "gluoncv_resnet18_v1b", "--data-dir", str(broken),
                    "--out", str(tmp_path / "runs"), *SMOKE)
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: ") and result.stderr.strip().count("\n") == 0
    assert "train.rec" in result.stderr
    assert not (tmp_path / "runs").exists()
