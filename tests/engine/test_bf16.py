"""Training in bfloat16 on CPU (issue 13, ``train.dtype = "bfloat16"``): the recipe vocabulary,
the refusal on a CPU without AVX512_BF16/AMX, and a few steps of the digits recipe at batch 32
(a falling finite loss, fp32 parameters in the checkpoint, a resume equal to a straight run)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import bench.precision
from bench.engine.runplan import RunOptions, prepare
from bench.errors import BenchError
from bench.precision import cpu_flags, unsupported
from bench.recipes import load_recipe
from tests.cli import assert_one_line_error, invoke
from tests.engine.test_distill import TEACHER, teacher_file  # noqa: F401 (a fixture)
from tests.engine.test_training import _bench, _final_params

BF16 = 'train.dtype="bfloat16"'
# Batch 32 of digits' 1437 training images: 44 steps per epoch, so 12 steps stay in epoch 1.
COMMON = ("run", "recipe", "digits_resnet", "--set", BF16, "--set", "train.log_interval=3",
          "--batch-size", "32", "--no-progress", "--loader-workers", "0")
needs_bf16 = pytest.mark.skipif(
    unsupported("bfloat16", on_gpu=False, flags=cpu_flags(), training=True) is not None,
    reason="this CPU has neither AVX512_BF16 nor AMX-BF16")


def test_the_schema_takes_the_precision_vocabulary():
    assert load_recipe("digits_resnet", [BF16]).train.dtype == "bfloat16"
    with pytest.raises(BenchError, match="train.dtype") as caught:
        load_recipe("digits_resnet", ['train.dtype="bf16"'])
    assert "bfloat16" in str(caught.value)  # the choices are listed


def test_a_cpu_without_bf16_refuses_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(bench.precision, "cpu_flags",
                        lambda *a, **k: {f: False for f in bench.precision.CPU_FLAGS})
    with pytest.raises(BenchError, match="bfloat16 needs a CPU with avx512_bf16 or amx_bf16"):
        prepare(load_recipe("digits_resnet", [BF16]), RunOptions())
    result = invoke(*COMMON, "--max-steps", "1", "--out", str(tmp_path))
    assert_one_line_error(result, "bfloat16 needs a CPU with")
    assert not (tmp_path / "digits_resnet").exists()  # refused before any run directory


def test_the_memory_estimate_counts_two_bytes_per_bf16_activation():
    from bench.engine.memory import training_bytes
    recipe = load_recipe("digits_resnet")
    fp32, fixed32 = training_bytes(recipe, "float32")
    bf16, fixed16 = training_bytes(recipe, "bfloat16")
    assert bf16 * 2 == fp32 and fixed16 == fixed32  # parameters stay fp32


@needs_bf16
def test_the_bf16_graph_trains_the_nets_own_fp32_parameters():
    import mxnet as mx
    from mxnet import autograd
    from bench.engine.build import low_precision_forward
    from bench.models import get_model
    net = get_model("cifar_resnet20_v1_a", classes=10, in_channels=1)
    net.initialize(mx.init.Xavier())
    net.hybridize()
    x = mx.nd.random.uniform(shape=(4, 1, 8, 8))
    block = low_precision_forward(net, "bfloat16", x)
    ours, theirs = net.collect_params(), block.collect_params()
    assert set(theirs.keys()) == set(ours.keys())
    assert all(theirs[k] is ours[k] for k in ours)  # the same Parameter objects
    # bf16 rounding of the same network (inference mode, both): within bf16's 8-bit mantissa
    np.testing.assert_allclose(block(x).asnumpy(), net(x).asnumpy(), rtol=0.05, atol=0.02)
    with autograd.record():
        out = block(x)
        loss = mx.gluon.loss.SoftmaxCrossEntropyLoss()(out, mx.nd.array([0, 1, 2, 3]))
    loss.backward()
    assert out.dtype == np.float32 and all(np.dtype(p.dtype) == np.float32 for p in ours.values())
    weight = next(p for k, p in ours.items() if k.endswith("conv0_weight"))  # the stem
    grad = weight.grad().asnumpy()
    assert grad.dtype == np.float32 and np.abs(grad).sum() > 0


@pytest.fixture(scope="module")
def bf16_runs(tmp_path_factory):
    """12 steps straight, and 6 steps + a resume in a fresh process to 12 (one thread and
    MXNet's NaiveEngine: ops run in order)."""
    out = tmp_path_factory.mktemp("bf16")
    straight = _bench(*COMMON, "--max-steps", "12", "--out", str(out / "a"), threads=1)
    assert straight.returncode == 0, straight.stderr
    half = _bench(*COMMON, "--max-steps", "6", "--out", str(out / "b"), threads=1)
    assert half.returncode == 0, half.stderr
    run_b = next((out / "b" / "digits_resnet").iterdir())
    rest = _bench("run", "recipe", "--resume", str(run_b), "--max-steps", "12", "--no-progress",
                  "--loader-workers", "0", threads=1)
    assert rest.returncode == 0, rest.stderr
    return next((out / "a" / "digits_resnet").iterdir()), run_b


def _windows(run_dir: Path) -> list[dict]:
    events = map(json.loads, (run_dir / "log.jsonl").read_text().splitlines())
    return [e for e in events if e["event"] == "window"]


@needs_bf16
def test_bf16_trains_with_fp32_master_weights(bf16_runs):
    run_a, _ = bf16_runs
    losses = [w["loss"] for w in _windows(run_a)]
    assert len(losses) == 4 and all(np.isfinite(losses))
    assert losses[-1] < 0.8 * losses[0], losses  # 2.3 (chance) falls to about 1.0 in 12 steps
    params = _final_params(run_a)
    assert params and {str(v.dtype) for v in params.values()} == {"float32"}
    assert json.loads((run_a / "run.json").read_text())["dtype"] == "bfloat16"
    assert json.loads((run_a / "metrics.json").read_text())["dtype"] == "bfloat16"


@needs_bf16
def test_a_resumed_bf16_run_equals_a_straight_one(bf16_runs):
    run_a, run_b = bf16_runs
    a, b = _final_params(run_a), _final_params(run_b)
    assert a.keys() == b.keys()
    for name in a:  # bit-exact: one thread, same kernels, same order
        np.testing.assert_array_equal(b[name], a[name], err_msg=name)
    assert [w["loss"] for w in _windows(run_b)][-2:] == [w["loss"] for w in _windows(run_a)][-2:]


@needs_bf16
def test_distillation_runs_its_teacher_in_bf16_too(tmp_path, teacher_file):
    from bench.engine.run import start_run
    recipe = load_recipe("digits_resnet", [BF16, f"distill.teacher={TEACHER}",
                                           f"distill.weights={teacher_file}"])
    run_dir = start_run(recipe, RunOptions(out=tmp_path, progress=False, loader_workers=0,
                                           max_steps=3, batch_size=32))
    info = json.loads((run_dir / "run.json").read_text())
    assert info["dtype"] == "bfloat16" and info["teacher"]["file"] == str(teacher_file)
    losses = [w["loss"] for w in _windows(run_dir)]
    assert losses and all(np.isfinite(losses))
    assert {str(v.dtype) for v in _final_params(run_dir).values()} == {"float32"}
