"""`bench speed`: it runs and reports in both modes, compares with GluonCV, and gives one-line
errors. Speed targets are checked by benchmarks (`bench speed ... --compare gluoncv`), never
here: no assertion is made on a timing's value."""
from __future__ import annotations

import json

import pytest

from bench import precision
from bench.cli import cli
from tests.cli import assert_one_line_error, runner

TINY = ("--batch-size", "4", "--iterations", "2", "--rounds", "1", "--warmup", "1")


def run(*args: str):
    return runner().invoke(cli, ["speed", *args], catch_exceptions=False)


def _json(result) -> dict:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_json(mode):
    out = _json(run("cifar_resnet20_v1", "--mode", mode, *TINY, "--format", "json"))
    assert out["model"] == "cifar_resnet20_v1" and out["mode"] == mode
    assert out["batch_size"] == 4 and out["iterations"] == 2 and out["input_size"] == 32
    assert out["ours"]["images_per_sec"] > 0 and len(out["ours"]["rounds"]) == 1
    assert out["theirs"] is None and out["ratio"] is None
    assert out["device"] == "cpu(0)" and out["dtype"] == "float32"
    for key in ("mxnet", "omp_num_threads", "cpu", "date"):
        assert out[key]


def test_compare_gluoncv():
    out = _json(run("cifar_resnet20_v1", "--compare", "gluoncv", *TINY, "--rounds", "2",
                    "--format", "json"))
    assert out["theirs"]["name"] == "cifar_resnet20_v1"
    assert len(out["ours"]["rounds"]) == len(out["theirs"]["rounds"]) == 2
    assert out["ratio"] > 0  # its value is a benchmark's business, not a test's


def test_text_and_progress():
    result = run("cifar_resnet20_v1", *TINY)
    assert result.exit_code == 0, result.stderr
    assert "img/s" in result.stdout and "cifar_resnet20_v1" in result.stdout
    assert result.stderr.startswith("round 1/1: ours ")


def test_unknown_model():
    _assert_quiet_error(run("cifar_resnet20_v2x", *TINY), "did you mean",
                           "cifar_resnet20_v2")


def test_compare_without_counterpart():
    _assert_quiet_error(run("cifar_resnet20_v1_a", "--compare", "gluoncv", *TINY),
                           "cifar_resnet20_v1_a", "GluonCV", "cifar_resnet20_v1")


def test_gpus_without_gpu():
    # The same checks as `bench run` (CPU wheel, GPU count, compute capability).
    _assert_quiet_error(run("cifar_resnet20_v1", "--gpus", "0", *TINY), "CPU wheel", "cu112")
    _assert_quiet_error(run("cifar_resnet20_v1", "--gpus", "zero", *TINY), "--gpus")


def test_float16_on_cpu():
    _assert_quiet_error(run("cifar_resnet20_v1", "--dtype", "float16", *TINY),
                           "float16", "--gpus")


def test_int8_against_float32():
    out = _json(run("cifar_resnet20_v1", "--dtype", "int8", "--compare", "float32",
                    "--batch-size", "4", "--iterations", "1", "--rounds", "1", "--warmup", "1",
                    "--calib-batches", "2", "--format", "json"))
    assert out["dtype"] == "int8" and out["fused"] is False and out["compare"] == "float32"
    calib = out["calibration"]
    assert calib["mode"] == "naive" and calib["batches"] == 2 and calib["examples"] == 8
    assert calib["granularity"] == "tensor-wise" and calib["data"] == "synthetic"
    assert calib["excluded"] == ["cifar_resnet20_v1_conv0_fwd", "cifar_resnet20_v1_dense0_fwd"]
    assert out["theirs"]["name"] == "cifar_resnet20_v1" and out["ratio"] > 0
    assert isinstance(out["cpu_flags"], list) and out["cpu"] and "omp_num_threads" in out


def test_fused_text():
    result = run("cifar_resnet20_v1", "--fuse", "--compare", "float32", *TINY)
    assert result.exit_code == 0, result.stderr
    assert "precision float32 fused" in result.stdout
    assert "ratio float32 fused / float32: " in result.stdout


@pytest.mark.parametrize("args, needles", [
    (("--dtype", "int8", "--mode", "train"), ("int8", "--mode infer")),
    (("--fuse", "--mode", "train"), ("--fuse", "--mode infer")),
    (("--compare", "float32"), ("itself", "--fuse")),
    (("--dtype", "int8", "--fuse"), ("--fuse", "int8")),
])
def test_precision_refusals(args, needles):
    _assert_quiet_error(run("cifar_resnet20_v1", *args, *TINY), *needles)


@pytest.mark.skipif(bool(precision.unsupported("bfloat16", False, precision.cpu_flags())),
                    reason="this CPU has no bf16")
def test_bfloat16_training_step_against_float32():
    """--mode train --dtype bfloat16 times the engine's bf16 training graph (the fp32 master
    weights updated through it) against our fp32 net, interleaved."""
    result = run("cifar_resnet20_v1", "--mode", "train", "--dtype", "bfloat16", "--compare",
                 "float32", "-f", "json", *TINY)
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["mode"], out["dtype"], out["compare"]) == ("train", "bfloat16", "float32")
    assert out["ours"]["images_per_sec"] > 0 and out["theirs"]["images_per_sec"] > 0
    assert out["ratio"] > 0


def test_bfloat16_without_cpu_flags(monkeypatch):
    import bench.precision
    monkeypatch.setattr(bench.precision, "cpu_flags", lambda *a: {})
    _assert_quiet_error(run("cifar_resnet20_v1", "--dtype", "bfloat16", *TINY),
                        "bfloat16", "avx512_bf16")


def test_bad_input_size():
    _assert_quiet_error(run("resnet50_v1d", "--input-size", "1", *TINY), "1x1")


def _assert_quiet_error(result, *needles: str) -> None:
    assert result.exit_code == 2
    assert_one_line_error(result, *needles, quiet=True)
