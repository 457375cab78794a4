"""Checkpoints: exact round trip, atomic against crashes, corruption caught, pruning."""
from __future__ import annotations

import json
import os
import random
import warnings

import numpy as np
import pytest

from bench.engine import checkpoint as ck
from bench.engine.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from bench.errors import BenchError
from bench.files import atomic_write_text


@pytest.fixture
def mx():
    from bench._mxnet import require_mxnet
    return require_mxnet()


def _model(mx, ctxs, kvstore="device", deferred=False):
    from mxnet.gluon import nn
    net = nn.HybridSequential(prefix="net_")
    with net.name_scope():
        net.add(nn.Dense(8, in_units=0 if deferred else 6, activation="relu"),
                nn.Dense(3, in_units=0 if deferred else 8))
    net.initialize(mx.init.Xavier(), ctx=ctxs)
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd",
                               {"learning_rate": 0.1, "momentum": 0.9, "wd": 1e-4},
                               kvstore=kvstore)
    return net, trainer


def _steps(mx, net, trainer, ctxs, n, seed=0):
    rng = np.random.default_rng(seed)
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    for _ in range(n):
        x = mx.nd.array(rng.normal(size=(4, 6)))
        y = mx.nd.array(rng.integers(0, 3, size=4))
        xs = mx.gluon.utils.split_and_load(x, ctxs, even_split=False)
        ys = mx.gluon.utils.split_and_load(y, ctxs, even_split=False)
        with mx.autograd.record():
            losses = [loss_fn(net(a), b) for a, b in zip(xs, ys)]
        mx.autograd.backward(losses)
        trainer.step(4)


def _params(net, ctx=None):
    return {k: p.data(ctx).asnumpy() for k, p in net.collect_params().items()}


def _momentum(trainer):
    updater = trainer._kvstore._updater if trainer._update_on_kvstore else trainer._updaters[0]
    return {k: v.asnumpy() for k, v in updater.states.items()}


def _save(run_dir, net, trainer, epoch=1, iteration=10, **kw):
    args = dict(batch_in_epoch=0, recipe_hash="abc", extra={"history": [1, 2]})
    args.update(kw)
    return save_checkpoint(run_dir, net=net, trainer=trainer, epoch=epoch, iteration=iteration,
                           **args)


def _assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_round_trip_restores_params_momentum_and_state(mx, tmp_path):
    ctxs = [mx.cpu(0)]
    net, trainer = _model(mx, ctxs)
    _steps(mx, net, trainer, ctxs, 2)
    random.seed(5)
    np.random.seed(5)
    path = _save(tmp_path, net, trainer, epoch=2, iteration=7, batch_in_epoch=3,
                 extra={"history": [{"top1_err": np.float32(0.5)}], "gate": {"done": True}})
    expected_py, expected_np = random.random(), np.random.rand()
    assert path.name == "ckpt-0002-00000007" and latest_checkpoint(tmp_path) == path
    assert sorted(p.name for p in path.iterdir()) == ["net.params", "state.json",
                                                      "trainer.states"]

    fresh, fresh_trainer = _model(mx, ctxs, deferred=True)  # shapes unknown until loaded
    state = load_checkpoint(path, net=fresh, trainer=fresh_trainer, recipe_hash="abc")
    assert (state["epoch"], state["iteration"], state["batch_in_epoch"]) == (2, 7, 3)
    assert state["extra"] == {"history": [{"top1_err": 0.5}], "gate": {"done": True}}
    assert (random.random(), np.random.rand()) == (expected_py, expected_np)
    _assert_same(_params(fresh), _params(net))
    _assert_same(_momentum(fresh_trainer), _momentum(trainer))
    # And training goes on identically.
    _steps(mx, net, trainer, ctxs, 2, seed=1)
    _steps(mx, fresh, fresh_trainer, ctxs, 2, seed=1)
    _assert_same(_params(fresh), _params(net))


@pytest.mark.parametrize("kvstore", ["device", "local"])
def test_round_trip_on_two_contexts_into_a_trainer_that_already_stepped(mx, tmp_path, kvstore):
    # With several devices the weights live in the kvstore too: loading must refresh them.
    ctxs = [mx.cpu(0), mx.cpu(1)]
    net, trainer = _model(mx, ctxs, kvstore)
    _steps(mx, net, trainer, ctxs, 3)
    path = _save(tmp_path, net, trainer)
    other, other_trainer = _model(mx, ctxs, kvstore)
    _steps(mx, other, other_trainer, ctxs, 1, seed=9)  # kvstore created, different weights
    load_checkpoint(path, net=other, trainer=other_trainer, recipe_hash=None)
    _steps(mx, net, trainer, ctxs, 2, seed=1)
    _steps(mx, other, other_trainer, ctxs, 2, seed=1)
    for ctx in ctxs:
        _assert_same(_params(other, ctx), _params(net, ctx))


def test_save_before_any_step_works(mx, tmp_path):
    ctxs = [mx.cpu(0)]
    net, trainer = _model(mx, ctxs)
    path = _save(tmp_path, net, trainer, epoch=0, iteration=0)
    load_checkpoint(path, net=_model(mx, ctxs)[0], trainer=_model(mx, ctxs)[1], recipe_hash="abc")


def test_crash_leftovers_are_never_picked(mx, tmp_path):
    ctxs = [mx.cpu(0)]
    net, trainer = _model(mx, ctxs)
    good = _save(tmp_path, net, trainer, epoch=1, iteration=10)
    root = tmp_path / "checkpoints"
    # A writer killed mid-save (its pid is gone) and one killed mid-delete, both newer.
    dead_pid = 2 ** 22 + 12345
    partial = root / f".tmp-{dead_pid}-ckpt-0002-00000020"
    partial.mkdir()
    (partial / "net.params").write_bytes(b"half")
    (root / f".del-{dead_pid}-ckpt-0003-00000030").mkdir()
    (root / "ckpt-0004-00000040").mkdir()  # a final name without state.json
    assert latest_checkpoint(tmp_path) == good
    # The next save cleans the dead writer's leftovers up.
    newer = _save(tmp_path, net, trainer, epoch=2, iteration=20)
    assert latest_checkpoint(tmp_path) == newer
    assert not partial.exists() and not any(p.name.startswith(".") for p in root.iterdir())


def test_a_failing_save_leaves_the_previous_checkpoint(mx, tmp_path):
    ctxs = [mx.cpu(0)]
    net, trainer = _model(mx, ctxs)
    good = _save(tmp_path, net, trainer, epoch=1, iteration=10)
    with pytest.raises(TypeError):
        _save(tmp_path, net, trainer, epoch=2, iteration=20, extra={"bad": object()})
    assert latest_checkpoint(tmp_path) == good
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == [good.name]


def test_corrupt_params_are_a_one_line_error(mx, tmp_path):
    ctxs = [mx.cpu(0)]
    net, trainer = _model(mx, ctxs)
    path = _save(tmp_path, net, trainer)
    params = path / "net.params"
    data = bytearray(params.read_bytes())
    data[len(data) // 2] ^= 0xFF
    params.write_bytes(bytes(data))
    with pytest.raises(BenchError) as info:
        load_checkpoint(path, net=net, trainer=trainer, recipe_hash="abc")
    message = str(info.value)
    assert message == f"checkpoint {path} is corrupt (net.params sha256 mismatch)"


@pytest.mark.parametrize("damage, words", [
    (lambda p: (p / "state.json").write_text((p / "state.json").read_text()[:40]),
     "state.json unreadable"),
    (lambda p: (p / "trainer.states").unlink(), "trainer.states missing"),
    (lambda p: (p / "trainer.states").write_bytes(b""), "trainer.states sha256 mismatch"),
])
def test_damaged_checkpoints_are_one_line_errors(mx, tmp_path, damage, words):
    ctxs = [mx.cpu(0)]
    net, trainer = _model(mx, ctxs)
    path = _save(tmp_path, net, trainer)
    damage(path)
    with pytest.raises(BenchError) as info:
        load_checkpoint(path, net=net, trainer=trainer, recipe_hash=None)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_recipe_change_is_refused(mx, tmp_path):
    ctxs = [mx.cpu(0)]
    net, trainer = _model(mx, ctxs)
    path = _save(tmp_path, net, trainer, recipe_hash="a" * 64)
    with pytest.raises(BenchError, match="recipe changed since the run started"):
        load_checkpoint(path, net=net, trainer=trainer, recipe_hash="b" * 64)


def test_another_network_is_a_one_line_error(mx, tmp_path):
    from mxnet.gluon import nn
    ctxs = [mx.cpu(0)]
    net, trainer = _model(mx, ctxs)
    path = _save(tmp_path, net, trainer)
    other = nn.HybridSequential(prefix="net_")
    with other.name_scope():
        other.add(nn.Dense(5, in_units=6), nn.Dense(3))
    other.initialize(ctx=ctxs)
    with pytest.raises(BenchError, match="does not fit this network") as info:
        load_checkpoint(path, net=other, trainer=trainer, recipe_hash=None)
    assert "\n" not in str(info.value)


def test_keep_prunes_older_checkpoints_after_the_new_one_exists(mx, tmp_path):
    ctxs = [mx.cpu(0)]
    net, trainer = _model(mx, ctxs)
    paths = [_save(tmp_path, net, trainer, epoch=e, iteration=10 * e) for e in range(1, 5)]
    kept = ck.list_checkpoints(tmp_path)
    assert kept == paths[-2:]
    assert latest_checkpoint(tmp_path) == paths[-1]
    _save(tmp_path, net, trainer, epoch=5, iteration=50, keep=1)
    assert [p.name for p in ck.list_checkpoints(tmp_path)] == ["ckpt-0005-00000050"]
    with pytest.raises(BenchError):
        _save(tmp_path, net, trainer, epoch=6, iteration=60, keep=0)


def test_saving_the_same_step_twice_replaces_it(mx, tmp_path):
    ctxs = [mx.cpu(0)]
    net, trainer = _model(mx, ctxs)
    first = _save(tmp_path, net, trainer, extra={"n": 1})
    second = _save(tmp_path, net, trainer, extra={"n": 2})
    assert first == second and ck.read_state(second)["extra"] == {"n": 2}


def test_latest_orders_by_iteration(mx, tmp_path):
    ctxs = [mx.cpu(0)]
    net, trainer = _model(mx, ctxs)
    _save(tmp_path, net, trainer, epoch=9, iteration=900, keep=5)
    newest = _save(tmp_path, net, trainer, epoch=10, iteration=1000, keep=5)
    assert latest_checkpoint(tmp_path) == newest
    assert latest_checkpoint(tmp_path / "nothing-here") is None


def test_atomic_write_text_replaces_whole_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "metrics.json"
    atomic_write_text(target, json.dumps({"a": 1}))
    atomic_write_text(target, json.dumps({"a": 2}))
    assert json.loads(target.read_text()) == {"a": 2}
    assert os.listdir(target.parent) == ["metrics.json"]


def test_mxnet_drops_optimizer_states_loaded_before_the_parameters(mx, tmp_path):
    # Why load_checkpoint loads the parameters first: on several devices, set_data resets the
    # kvstore and the momentum loaded into it. If MXNet stops doing that, this test says so.
    ctxs = [mx.cpu(0), mx.cpu(1)]
    net, trainer = _model(mx, ctxs)
    _steps(mx, net, trainer, ctxs, 2)
    path = _save(tmp_path, net, trainer)
    wrong, wrong_trainer = _model(mx, ctxs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # MXNet's own unclosed file
        wrong_trainer.load_states(str(path / "trainer.states"))
    wrong.load_parameters(str(path / "net.params"))
    _steps(mx, net, trainer, ctxs, 1, seed=1)
    _steps(mx, wrong, wrong_trainer, ctxs, 1, seed=1)
    diff = max(np.abs(a - b).max() for a, b in zip(_params(net).values(),
                                                    _params(wrong).values()))
    assert diff > 1e-4


def _edit_state(path, **changes):
    state = json.loads((path / "state.json").read_text())
    state.update(changes)
    (path / "state.json").write_text(json.dumps(state))


@pytest.mark.parametrize("damage, why", [
    (lambda mx, p: mx.nd.save(str(p / "net.params"), {"w": mx.nd.array([1.0, np.nan])}),
     "is not finite (1 non-finite values in w)"),
    (lambda mx, p: _edit_state(p, iteration=11), "unlike its directory's name"),
    (lambda mx, p: _edit_state(p, epoch="2"), "field epoch is '2', not a count"),
    (lambda mx, p: _edit_state(p, rng={"python": [3]}), "field rng is not a pair"),
    (lambda mx, p: _edit_state(p, extra={"history": "abc"}), "field extra.history is a str"),
    (lambda mx, p: _edit_state(p, recipe_hash="x" * 64), "was written for a different recipe"),
])
def test_newest_valid_skips_what_a_resume_could_not_use(mx, tmp_path, damage, why):
    ctxs = [mx.cpu(0)]
    net, trainer = _model(mx, ctxs)
    older = _save(tmp_path, net, trainer, epoch=1, iteration=10)
    newest = _save(tmp_path, net, trainer, epoch=2, iteration=20)
    damage(mx, newest)
    state = json.loads((newest / "state.json").read_text())  # checksums made to match again
    state["files"] = {f: ck.sha256_file(newest / f) for f in ("net.params", "trainer.states")}
    (newest / "state.json").write_text(json.dumps(state))
    path, found, skipped = ck.newest_valid_checkpoint(tmp_path, "abc", {"history": list})
    assert path == older and found["iteration"] == 10
    assert [p for p, _ in skipped] == [newest] and why in skipped[0][1], skipped


def test_set_aside_hides_a_checkpoint_and_keeps_it(mx, tmp_path):
    ctxs = [mx.cpu(0)]
    net, trainer = _model(mx, ctxs)
    older = _save(tmp_path, net, trainer, epoch=1, iteration=10)
    newest = _save(tmp_path, net, trainer, epoch=2, iteration=20)
    moved = ck.set_aside(newest)
    assert moved.name == "skipped-ckpt-0002-00000020" and (moved / "net.params").is_file()
    assert ck.list_checkpoints(tmp_path) == [older] and latest_checkpoint(tmp_path) == older
    again = _save(tmp_path, net, trainer, epoch=2, iteration=20)
    assert ck.set_aside(again).name == "skipped-ckpt-0002-00000020-1"


def test_no_checkpoint_or_none_valid_is_one_line(mx, tmp_path):
    with pytest.raises(BenchError, match="has no checkpoint yet"):
        ck.newest_valid_checkpoint(tmp_path, None)
    net, trainer = _model(mx, [mx.cpu(0)])
    path = _save(tmp_path, net, trainer)
    (path / "net.params").write_bytes(b"")
    with pytest.raises(BenchError, match=r"none of its 1 checkpoint\(s\) is valid "
                                         r"\(ckpt-0001-00000010 is corrupt \(net.params sha256"):
        ck.newest_valid_checkpoint(tmp_path, None)
