"""Stochastic depth (Huang et al. 2016): a dropped unit skips its branch in training, is
reproducible under mx.random.seed, gets a zero gradient, and test mode scales the branch."""
from __future__ import annotations

import numpy as np
import pytest

from bench.models import get_model
from bench.models.resnet import ResidualUnit
from tests.models.conftest import reloaded_output

HYBRID = dict(static_alloc=True, static_shape=True)  # as bench/engine/trainer.py does

# (preact, shortcut, preact_shortcut, in, out, stride): identity, option A, projections.
UNITS = [(False, "A", True, 4, 4, 1), (False, "A", True, 4, 8, 2), (False, "B", True, 4, 8, 2),
         (True, "A", True, 4, 8, 2), (True, "B", True, 4, 8, 2), (True, "B", False, 4, 8, 2),
         (True, "C", True, 4, 4, 1)]


def _unit(mx, preact, shortcut, preact_shortcut, cin, cout, stride, survival=0.5):
    unit = ResidualUnit(cin, cout, stride, kind="basic", preact=preact, stride_on="1x1",
                        shortcut=shortcut, mid_channels=cout, survival=survival,
                        preact_shortcut=preact_shortcut)
    unit.initialize(mx.init.Xavier())
    return unit


def _by_hand(unit, x, scale):
    """branch * scale + shortcut (+ ReLU for v1), from the unit's sub-blocks."""
    pre = unit.preact(x) if unit.preact is not None else x
    source = pre if unit._preact_shortcut else x
    identity = x if unit.shortcut is None else unit.shortcut(source)
    out = unit.body(pre) * scale + identity
    return out if unit.preact is not None else out.relu()


def _force(monkeypatch, decide):
    monkeypatch.setattr(ResidualUnit, "_drops", lambda self, x: decide(self))


@pytest.mark.parametrize("config", UNITS)
@pytest.mark.parametrize("hybridize", [False, True])
def test_a_dropped_unit_outputs_its_shortcut_path_without_running_the_branch(
        mx, monkeypatch, config, hybridize):
    unit = _unit(mx, *config)
    x = mx.nd.random.normal(shape=(2, config[3], 6, 6))
    with mx.autograd.record():  # training mode: a projection's BN uses batch statistics
        expected = _by_hand(unit, x, 0.0).asnumpy()
    if hybridize:
        unit.hybridize(**HYBRID)
    calls = []
    unit.body.register_forward_pre_hook(lambda block, inputs: calls.append(block))
    _force(monkeypatch, lambda u: True)
    with mx.autograd.record():
        y = unit(x)
    np.testing.assert_allclose(y.asnumpy(), expected, rtol=1e-6, atol=1e-6)
    assert not calls  # the branch's layers did not run
    _force(monkeypatch, lambda u: False)
    with mx.autograd.record():
        kept = unit(x)
    assert calls  # the hook does see the body when it runs
    with mx.autograd.record():
        np.testing.assert_allclose(kept.asnumpy(), _by_hand(unit, x, 1.0).asnumpy(),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("config", UNITS)
@pytest.mark.parametrize("hybridize", [False, True])
def test_test_mode_scales_the_branch_by_its_survival(mx, config, hybridize):
    unit = _unit(mx, *config, survival=0.3)
    x = mx.nd.random.normal(shape=(2, config[3], 6, 6))
    expected = _by_hand(unit, x, 0.3).asnumpy()
    if hybridize:
        unit.hybridize(**HYBRID)
    np.testing.assert_allclose(unit(x).asnumpy(), expected, rtol=1e-5, atol=1e-6)


def _sd_net(mx, name="cifar_resnet20_v1_sd", **overrides):
    net = get_model(name, **overrides)
    net.initialize(mx.init.Xavier())
    net.hybridize(**HYBRID)
    return net


def _units(net):
    return [u for stage in net.features._children.values()
            for u in getattr(stage, "_children", {}).values() if isinstance(u, ResidualUnit)]


def test_training_is_reproducible_under_mx_random_seed(mx, monkeypatch):
    net = _sd_net(mx)
    x = mx.nd.random.normal(shape=(4, 3, 8, 8))
    pattern = []
    original = ResidualUnit._drops
    monkeypatch.setattr(ResidualUnit, "_drops",
                        lambda self, x: pattern.append(original(self, x)) or pattern[-1])

    def run(seed):
        pattern.clear()
        mx.random.seed(seed)
        with mx.autograd.record():
            out = net(x).asnumpy()
        return out, list(pattern)

    (a, drops_a), (b, drops_b), (c, drops_c) = run(3), run(3), run(4)
    np.testing.assert_array_equal(a, b)
    assert drops_a == drops_b and len(drops_a) == 9
    assert any(drops_a + drops_c) and not all(drops_a + drops_c)
    assert drops_a != drops_c or not np.array_equal(a, c)


def test_engine_steps_give_a_dropped_unit_an_exactly_zero_gradient(mx, monkeypatch):
    from bench.engine.step import step_seed, train_step
    net = _sd_net(mx)
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd",
                               {"learning_rate": 0.1, "momentum": 0.9, "wd": 1e-4})
    loss = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    x = mx.nd.random.normal(shape=(8, 3, 8, 8))
    labels = np.arange(8) % 10
    victim = _units(net)[4]

    def step(it):
        mx.random.seed(step_seed(0, it))
        total, _ = train_step(net, trainer, loss, x, labels, [mx.cpu()], 8)
        assert np.isfinite(total.asscalar())

    for it in range(3):  # the real draws, including drops, with the engine's call
        step(it)
    _force(monkeypatch, lambda u: False)
    step(3)  # every gradient written by backward
    body = list(victim.body.collect_params().values())
    assert all(np.abs(p.grad().asnumpy()).sum() > 0 for p in body if p.grad_req != "null")
    before = [p.data().copy() for p in body]
    _force(monkeypatch, lambda u: u is victim)
    step(4)
    for p, old in zip(body, before):
        if p.grad_req != "null":
            assert not p.grad().asnumpy().any(), p.name
            assert not np.array_equal(p.data().asnumpy(), old.asnumpy())  # momentum, wd act
    kept = [p for p in _units(net)[3].body.collect_params().values() if p.grad_req != "null"]
    assert all(np.abs(p.grad().asnumpy()).sum() > 0 for p in kept)


def test_hybridize_keeps_only_the_droppable_path_imperative(mx):
    net = _sd_net(mx)
    assert not net._active and not net.features._active
    assert all(not stage._active for stage in net.features._children.values()
               if any(isinstance(u, ResidualUnit) for u in getattr(stage, "_children", {})
                      .values()))
    assert all(u._active and u.body._active for u in _units(net))
    assert net.features[0]._active and net.output._active
    constant = _sd_net(mx, "cifar_resnet20_v1_a")
    blocks = [constant, constant.features, *_units(constant)]
    assert all(b._active for b in blocks)


def test_export_writes_the_test_time_graph(mx, tmp_path):
    net = _sd_net(mx)
    x = mx.nd.random.normal(shape=(2, 3, 8, 8))
    with mx.autograd.record():  # a training step first: BN statistics and cached graphs
        net(x)
    expected = net(x).asnumpy()
    net.export(str(tmp_path / "sd"))
    sym = mx.sym.load(str(tmp_path / "sd-symbol.json"))
    assert sum(n["op"] == "Dropout" for n in
               __import__("json").loads(sym.tojson())["nodes"]) == 9
    np.testing.assert_allclose(reloaded_output(mx, net, x, tmp_path, "sd"), expected,
                               rtol=1e-5, atol=1e-6)


def test_a_symbol_call_still_gives_the_gated_graph(mx):
    net = _sd_net(mx)
    out = net(mx.sym.var("data"))
    assert out.infer_shape(data=(2, 3, 8, 8))[1] == [(2, 10)]
    assert "dropout" in out.tojson().lower()
