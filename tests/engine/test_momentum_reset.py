"""schedule.reset_momentum: WRN's train.lua starts a fresh optimizer state at every LR drop.

The oracle for the step right after a reset is torch's optim.sgd from an empty state (what
train.lua's `state.optim = tablex.deepcopy(opt)` leaves): the buffer becomes the gradient
g' = grad / batch + wd * w, and the update is lr * g' (plain momentum, dampening 0) or
lr * (g' + momentum * g') (Nesterov), computed here in numpy from the autograd gradient."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bench.engine.momentum import reset_momentum, updaters
from bench.engine.schedules import build_schedule
from bench.engine.run import resume_run, start_run
from bench.engine.runplan import RunOptions
from bench.errors import BenchError
from bench.recipes import load_recipe

ROOT = Path(__file__).resolve().parents[2]
LR, MOMENTUM, WD, BATCH, MILESTONE = 0.1, 0.9, 1e-3, 4, 3


@pytest.fixture
def mx():
    from bench._mxnet import require_mxnet
    return require_mxnet()


def _schedule(reset: bool):
    return build_schedule(kind="step", base_lr=LR, epochs=1, iters_per_epoch=10,
                          milestones=[MILESTONE], unit="iteration", factor=0.2,
                          reset_momentum=reset)


def _trainer(mx, ctxs, optimizer, kvstore):
    from mxnet.gluon import nn
    net = nn.Dense(3, in_units=5, prefix="tiny_")
    net.initialize(mx.init.Xavier(), ctx=ctxs)
    options = {"learning_rate": LR, "momentum": MOMENTUM, "wd": WD}
    kwargs = {"kvstore": kvstore} if kvstore != "per-device" else {
        "kvstore": "local", "update_on_kvstore": False}  # as with a dist kvstore
    return net, mx.gluon.Trainer(net.collect_params(), optimizer, options, **kwargs)


def _backward(mx, net, ctxs, rng) -> None:
    x = mx.nd.array(rng.normal(size=(BATCH, 5)))
    y = mx.nd.array(rng.integers(0, 3, size=BATCH))
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    xs = mx.gluon.utils.split_and_load(x, ctxs)
    ys = mx.gluon.utils.split_and_load(y, ctxs)
    with mx.autograd.record():
        losses = [loss_fn(net(a), b) for a, b in zip(xs, ys)]
    mx.autograd.backward(losses)


def _momenta(trainer) -> list[np.ndarray]:
    return [state.asnumpy() for u in updaters(trainer) for state in u.states.values()]


CONFIGS = {"one device": 1, "two devices, update on the kvstore": 2,
           "two devices, one updater each": 2}


@pytest.mark.parametrize("optimizer", ["sgd", "nag"])
@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("reset", [True, False])
def test_momentum_is_zero_after_the_milestone_and_the_next_step_is_a_fresh_one(
        mx, optimizer, config, reset):
    ctxs = [mx.cpu(i) for i in range(CONFIGS[config])]
    kvstore = "per-device" if "each" in config else "device"
    net, trainer = _trainer(mx, ctxs, optimizer, kvstore)
    schedule, rng = _schedule(reset), np.random.default_rng(0)
    for it in range(MILESTONE):
        trainer.set_learning_rate(schedule(it))
        _backward(mx, net, ctxs, rng)
        trainer.step(BATCH)
    # The loop's step boundary at the milestone.
    trainer.set_learning_rate(schedule(MILESTONE))
    if schedule.resets_momentum(MILESTONE):
        assert reset_momentum(trainer) == len(_momenta(trainer)) > 0
    momenta = _momenta(trainer)
    assert len(updaters(trainer)) == (2 if "each" in config else 1)
    assert len(momenta) == 2 * len(updaters(trainer))  # weight and bias, every copy
    if reset:
        assert all(not m.any() for m in momenta)
    else:
        assert all(np.abs(m).max() > 1e-4 for m in momenta)

    params = list(net.collect_params().values())
    _backward(mx, net, ctxs, rng)
    before = [p.data(ctxs[0]).asnumpy().astype(np.float64) for p in params]
    grads = [sum(p.grad(c).asnumpy().astype(np.float64) for c in ctxs) for p in params]
    trainer.step(BATCH)
    lr = LR * 0.2
    for p, w, g in zip(params, before, grads):
        fresh = g / BATCH + WD * w  # torch optim.sgd's state.dfdx from an empty state
        step = fresh if optimizer == "sgd" else fresh + MOMENTUM * fresh
        for ctx in ctxs:
            after = p.data(ctx).asnumpy()
            if reset:
                np.testing.assert_allclose(after, w - lr * step, rtol=1e-5, atol=1e-7)
            else:
                assert np.abs(after - (w - lr * step)).max() > 1e-5


def test_only_the_momentum_of_a_multi_precision_state_is_zeroed(mx):
    momentum, master = mx.nd.ones((2, 2)), mx.nd.full((2, 2), 3.0)
    updater = SimpleNamespace(states={0: (momentum, master), 1: None, 2: mx.nd.ones(3)})
    fake = SimpleNamespace(_kv_initialized=False, _kvstore=None, _update_on_kvstore=None,
                           _updaters=[updater])
    assert reset_momentum(fake) == 2
    assert not momentum.asnumpy().any() and not updater.states[2].asnumpy().any()
    np.testing.assert_array_equal(master.asnumpy(), np.full((2, 2), 3.0))


def test_the_plan_says_where_the_momentum_is_reset():
    lines = _schedule(True).describe(iters_per_epoch=10)
    assert "x0.2 at epoch 0.3 (iteration 3): lr 0.02, momentum reset to 0" in lines
    assert not any("momentum" in line for line in _schedule(False).describe(10))


@pytest.mark.parametrize("override, words", [
    ("schedule.kind=cosine", "needs schedule.kind = 'step'"),
    ("schedule.milestones=[]", "needs schedule.kind = 'step' with schedule.milestones"),
])
def test_reset_momentum_without_step_milestones_is_refused(override, words):
    with pytest.raises(BenchError, match=words):
        load_recipe("zagoruyko2016_cifar10_wrn28_10", [override])
    with pytest.raises(BenchError, match="no milestones"):
        build_schedule(kind="cosine", base_lr=0.1, epochs=1, iters_per_epoch=10,
                       reset_momentum=True)


def test_the_wrn_recipes_reset_the_momentum():
    for name in ("zagoruyko2016_cifar10_wrn28_10", "zagoruyko2016_cifar100_wrn28_10_dropout"):
        recipe = load_recipe(name)
        assert recipe.schedule.reset_momentum and recipe.schedule.milestones == (59, 119, 159)
    assert not load_recipe("he2015_cifar10_resnet20").schedule.reset_momentum


# --- the engine's loop: a resume before, at or after the milestone is a straight run ------------

STEPS, RESET_AT = 10, 6
RESET = ["schedule.kind=step", f"schedule.milestones=[{RESET_AT}]", "schedule.unit=iteration",
         "schedule.warmup_epochs=0", "schedule.reset_momentum=true"]


def _weights(run_dir: Path) -> dict[str, np.ndarray]:
    import mxnet as mx
    from bench.engine.checkpoint import latest_checkpoint
    loaded = mx.nd.load(str(latest_checkpoint(run_dir) / "net.params"))
    return {k: v.asnumpy() for k, v in loaded.items()}


def _resets(run_dir: Path) -> list[int]:
    events = map(json.loads, (run_dir / "log.jsonl").read_text().splitlines())
    return [e["iteration"] for e in events if e["event"] == "momentum_reset"]


def _run(out: Path, recipe, stops: list[int]) -> Path:
    """Start a run that stops after ``stops[0]`` steps, resume it at each later stop."""
    options = RunOptions(out=out, progress=False, loader_workers=0, max_steps=stops[0])
    run_dir = start_run(recipe, options)
    for stop in stops[1:]:
        resume_run(run_dir, dataclasses.replace(options, max_steps=stop))
    return run_dir


def resume_scenario(out: str) -> None:
    """Runs in a fresh process with one engine thread (ops in order: bit-exact sums); writes
    what the test checks to ``out/result.json``."""
    out_dir = Path(out)
    recipe = load_recipe("digits_resnet", RESET)
    straight = _weights(_run(out_dir / "straight", recipe, [STEPS]))
    result = {}
    # Resumed before the milestone and through it, then after it; and resumed exactly at it
    # (the checkpoint after 6 steps was taken before the reset that precedes step 6).
    for label, stops in {"before, after": [2, 8, STEPS], "at": [RESET_AT, STEPS]}.items():
        run_dir = _run(out_dir / label.replace(", ", "-"), recipe, stops)
        weights = _weights(run_dir)
        result[label] = {"resets": _resets(run_dir),
                         "diff": max(float(np.abs(weights[k] - v).max())
                                     for k, v in straight.items())}
    plain = _run(out_dir / "plain", load_recipe("digits_resnet", RESET[:-1]), [STEPS])
    result["without reset"] = {"resets": _resets(plain), "diff": max(
        float(np.abs(_weights(plain)[k] - v).max()) for k, v in straight.items())}
    (out_dir / "result.json").write_text(json.dumps(result))


def test_a_run_resumed_before_at_or_after_the_milestone_equals_the_straight_run(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1",
               MXNET_ENGINE_TYPE="NaiveEngine")
    code = ("from tests.engine.test_momentum_reset import resume_scenario; "
            f"resume_scenario({str(tmp_path)!r})")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    for label in ("before, after", "at"):
        assert result[label] == {"resets": [RESET_AT], "diff": 0.0}, label  # reset once
    assert result["without reset"]["resets"] == [] and result["without reset"]["diff"] > 1e-3
