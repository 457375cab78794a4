"""A diverged run stops with one line and keeps only finite checkpoints; a run that ends at
chance level says so and fails the gate (issue 10)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from bench.engine import health
from bench.engine.checkpoint import list_checkpoints, save_checkpoint
from bench.engine.record import chance_error, outcome
from bench.recipes import load_recipe
from tests.cli import assert_one_line_error, invoke

DIGITS = ("run", "recipe", "digits_resnet", "--no-progress", "--loader-workers", "0")


@pytest.fixture
def mx():
    from bench._mxnet import require_mxnet
    return require_mxnet()


def _net(mx, ctxs, blocks: int = 1):
    """Conv + BatchNorm + Dense, ``blocks`` times: 6 parameters a block, 2 of them the BN
    running statistics (aux states)."""
    from mxnet.gluon import nn
    net = nn.HybridSequential(prefix="tiny_")
    with net.name_scope():
        for _ in range(blocks):
            net.add(nn.Conv2D(4, 3, padding=1, in_channels=2), nn.BatchNorm(in_channels=4))
        net.add(nn.Dense(3, in_units=4 * 5 * 5))
    net.initialize(mx.init.Xavier(), ctx=ctxs)
    return net


def _set(param, ctx, index, value) -> None:
    """Write ``value`` at flat ``index`` of ``param``'s copy on ``ctx`` (as an update would)."""
    data = param.data(ctx)
    flat = data.asnumpy().ravel()
    flat[index] = value
    data[:] = flat.reshape(data.shape)


def _running_var(net):
    return next(p for name, p in net.collect_params().items() if name.endswith("running_var"))


# --- the check itself ---------------------------------------------------------------------

def test_a_healthy_net_passes_and_huge_finite_values_are_not_flagged(mx):
    net = _net(mx, [mx.cpu()])
    assert health.count_unhealthy(net.collect_params()) == 0
    _set(_running_var(net), mx.cpu(), 0, 3e38)  # near float32's max, still finite
    assert health.count_unhealthy(net.collect_params()) == 0
    assert health.nonfinite_params(net.collect_params()) == []


@pytest.mark.parametrize("value, kind", [(math.inf, "inf"), (math.nan, "nan")])
def test_an_injected_value_in_a_batchnorm_running_var_is_caught_and_named(mx, value, kind):
    net = _net(mx, [mx.cpu()])
    var = _running_var(net)
    _set(var, mx.cpu(), 2, value)
    params = net.collect_params()
    assert health.count_unhealthy(params) == 1
    assert health.nonfinite_params(params) == [(var.name, 1, 4, kind)]
    assert health.describe_nonfinite(health.nonfinite_params(params)) == (
        f"parameter {var.name} holds 1 non-finite ({kind}) of its 4 values")


def test_every_device_copy_is_checked(mx):
    # BatchNorm statistics differ per device: an inf on the second device alone counts.
    ctxs = [mx.cpu(0), mx.cpu(1)]
    net = _net(mx, ctxs)
    _set(_running_var(net), ctxs[1], 0, -math.inf)
    assert health.count_unhealthy(net.collect_params()) == 1
    assert health.nonfinite_params(net.collect_params())[0][1:] == (1, 4, "inf")


def test_every_parameter_is_checked_also_beyond_one_fused_call(mx):
    # MXNet's multi_all_finite takes at most 200 arrays: 60 blocks make 362 parameters, 300 of
    # them of size 4 (so one call is full); an inf in any one of them must count.
    net = _net(mx, [mx.cpu()], blocks=60)
    params = net.collect_params()
    arrays = [(int(np.prod(p.shape)), p.data()) for p in params.values()]
    assert len(arrays) == 362 and max(len(c) for c in health._by_size(arrays)) == 200
    for param in params.values():
        before = param.data().asnumpy()
        _set(param, mx.cpu(), 0, math.inf)
        assert health.count_unhealthy(params) == 1, param.name
        param.data()[:] = before
    assert health.count_unhealthy(params) == 0


def test_float16_and_float32_parameters_are_checked_each_in_their_dtype(mx):
    net = _net(mx, [mx.cpu()])
    net.cast("float16")  # Gluon keeps BatchNorm's parameters in float32
    dtypes = {np.dtype(p.dtype) for p in net.collect_params().values()}
    assert dtypes == {np.dtype("float16"), np.dtype("float32")}
    weight = next(p for p in net.collect_params().values() if np.dtype(p.dtype) == np.float16)
    _set(weight, mx.cpu(), 1, 70000.0)  # overflows float16 to inf
    assert health.count_unhealthy(net.collect_params()) == 1
    assert health.nonfinite_params(net.collect_params())[0][0] == weight.name


def test_the_last_good_checkpoint_is_read_back_from_disk(mx, tmp_path):
    net = _net(mx, [mx.cpu()])
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    net(mx.nd.ones((1, 2, 5, 5)))
    common = dict(net=net, trainer=trainer, batch_in_epoch=0, recipe_hash="h", extra={},
                  keep=5)
    good = save_checkpoint(tmp_path, epoch=1, iteration=1, **common)
    _set(_running_var(net), mx.cpu(), 0, math.inf)
    # As a writer without the check would: the newest checkpoint holds an inf.
    bad = save_checkpoint(tmp_path, epoch=2, iteration=2, **common)
    assert list_checkpoints(tmp_path) == [good, bad]
    assert health.checkpoint_is_finite(good / "net.params")
    assert not health.checkpoint_is_finite(bad / "net.params")
    assert health.last_good_checkpoint(tmp_path) == good
    (good / "net.params").write_bytes(b"broken")  # checksums no longer match
    assert health.last_good_checkpoint(tmp_path) is None


def test_the_loss_bound():
    assert health.loss_scale(3.2, 10) == 3.2
    assert health.loss_scale(0.01, 10) == pytest.approx(math.log(10))  # the floor
    assert health.loss_bound_exceeded(321.0, 3.2, 100.0)
    assert not health.loss_bound_exceeded(319.0, 3.2, 100.0)
    assert not health.loss_bound_exceeded(1e30, 3.2, 0.0)  # 0: off
    assert not health.loss_bound_exceeded(1e30, None, 100.0)  # not known yet


@pytest.mark.parametrize("value, words", [
    ("0.5", "must be 0"), ("1", "must be 0"), ("-1", "must be 0"),
    ("nan", "not a finite number"), ("inf", "not a finite number"),  # (the loader's own check)
])
def test_a_divergence_factor_that_is_not_off_or_above_one_is_refused(value, words):
    result = invoke(*DIGITS, "--set", f"train.divergence_factor={value}", "--dry-run")
    assert_one_line_error(result, "train.divergence_factor", words)


def test_the_default_factor_leaves_the_recipe_hashes_alone():
    from bench.recipes import recipe_hash
    digits = load_recipe("digits_resnet")
    assert digits.train.divergence_factor == 100.0
    assert recipe_hash(load_recipe("digits_resnet", ["train.divergence_factor=100"])) == \
        recipe_hash(digits)
    assert recipe_hash(load_recipe("digits_resnet", ["train.divergence_factor=0"])) != \
        recipe_hash(digits)


# --- runs ---------------------------------------------------------------------------------

def _events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def _run_dir(out: Path) -> Path:
    (run_dir,) = (out / "digits_resnet").iterdir()
    return run_dir


def test_the_loss_bound_stops_a_diverging_run_with_one_line(tmp_path):
    # lr 100: by iteration 10 (warm-up at lr 41) the mean loss is ~1e8, the first step's ~3.
    result = invoke(*DIGITS, "--set", "optim.lr=100", "--max-steps", "40",
                    "--out", str(tmp_path))
    assert result.exit_code == health.EXIT_DIVERGED
    assert_one_line_error(result, "training diverged by iteration 10 (lr 40.9091)",
                          "exceeds 100 x", "train.divergence_factor", "lower the LR",
                          "last good checkpoint: none")
    run_dir = _run_dir(tmp_path)
    stop = _events(run_dir)[-1]
    assert stop["event"] == "stop" and stop["reason"] == "loss bound"
    assert stop["loss"] > stop["bound"] == 100 * next(
        e["scale"] for e in _events(run_dir) if e["event"] == "loss_bound")
    assert not (run_dir / "result.json").exists() and not list_checkpoints(run_dir)


def test_without_the_bound_the_finiteness_check_stops_it_and_every_kept_checkpoint_is_finite(
        mx, tmp_path):
    # No loss bound: lr 100 runs until the BatchNorm variances overflow (about iteration 20);
    # a checkpoint every epoch (11 steps), all kept.
    result = invoke(*DIGITS, "--set", "optim.lr=100", "--set", "train.divergence_factor=0",
                    "--set", "train.checkpoint_every=1", "--set", "train.keep_checkpoints=100",
                    "--max-steps", "80", "--out", str(tmp_path))
    assert result.exit_code == health.EXIT_DIVERGED, result.stderr
    assert_one_line_error(result, "training diverged by iteration", "non-finite")
    run_dir = _run_dir(tmp_path)
    kept = list_checkpoints(run_dir)
    assert kept, "diverged before the first epoch ended: nothing tested"
    for ckpt in kept:
        loaded = mx.nd.load(str(ckpt / "net.params"))
        assert any(name.endswith("running_var") for name in loaded)
        for name, array in loaded.items():
            assert np.isfinite(array.asnumpy()).all(), (ckpt.name, name)
    error = result.stderr.strip().splitlines()[-1]
    assert f"last good checkpoint: {kept[-1]};" in error
    stop = _events(run_dir)[-1]
    assert stop["reason"] == "non-finite parameters" and stop["iteration"] > int(
        kept[-1].name.split("-")[-1])


def test_the_default_bound_leaves_a_healthy_run_alone(tmp_path):
    result = invoke(*DIGITS, "--max-steps", "22", "--out", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    events = _events(_run_dir(tmp_path))
    (bound,) = [e for e in events if e["event"] == "loss_bound"]
    assert bound["iteration"] == 10 and bound["bound"] == 100 * bound["scale"]
    # The first step's loss of a 10-class softmax at initialisation: near ln(10).
    assert 0.5 * math.log(10) < bound["first_step_loss"] < 3 * math.log(10)
    windows = [e["loss"] for e in events if e["event"] == "window"]
    assert len(windows) >= 4 and max(windows) < 0.05 * bound["bound"]


# --- chance level -------------------------------------------------------------------------

def test_chance_error_is_a_uniform_guess_less_a_margin():
    assert chance_error(10) == pytest.approx(85.0)
    assert chance_error(100) == pytest.approx(98.5)
    assert chance_error(1000) == pytest.approx(99.85)
    assert chance_error(2) == pytest.approx(45.0)


def test_outcome_of_a_run():
    digits = load_recipe("digits_resnet")  # reference 1.0 % top-1 error
    assert outcome(digits, 89.7, 10, complete=True) == "chance"
    assert outcome(digits, 80.0, 10, complete=True) == "learned"
    assert outcome(digits, 89.7, 10, complete=False) is None
    assert outcome(digits, None, 10, complete=True) is None
    synthetic = load_recipe("digits_resnet", ["data.dataset=synthetic", "data.input_size=8"])
    assert outcome(synthetic, 89.7, 10, complete=True) is None
    near = load_recipe("digits_resnet", ["reference.top1_err=50"])  # not far below 85 %
    assert outcome(near, 89.7, 10, complete=True) == "learned"


def test_a_run_that_ends_at_chance_level_says_so_and_fails_the_gate(tmp_path, monkeypatch):
    # A complete one-epoch run whose network answers class 0 for every image, as a collapsed
    # one does: the digits test set has 36 of its 360 images in class 0, so 90 % error.
    from bench.engine import trainer
    monkeypatch.setattr(trainer._Training, "predict",
                        lambda self, batch: np.eye(10, dtype=np.float32)[[0] * len(batch)])
    result = invoke(*DIGITS, "--epochs", "1", "--out", str(tmp_path))
    assert result.exit_code == health.EXIT_CHANCE
    assert_one_line_error(result, "digits_resnet ended at chance level: top-1 error",
                          "learned nothing")
    run_dir = _run_dir(tmp_path)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["complete"] and metrics["top1_err"] == pytest.approx(90.0)
    assert metrics["outcome"] == "chance"
    assert json.loads((run_dir / "result.json").read_text())["outcome"] == "chance"
    check = invoke("check", str(run_dir))
    assert check.exit_code == 1
    assert check.stdout.startswith("FAILED ") and "ended at chance level" in check.stdout
    assert "1 outside (1 at chance level)" in check.stdout
