"""Every registered network: forward shape, hybridize, export and reload, backward (the four
deepest in `make test-slow`, each beside a smaller stand-in of the same structure)."""
from __future__ import annotations

import numpy as np
import pytest

from bench.errors import BenchError
from bench.models import get_model, get_spec, list_models

from .conftest import reloaded_output, small_input_size

ALL = list_models()

# The deepest rows, whose forward/backward checks take most of this file's time (about 30 s
# each for the 1202/1001-layer nets on 2 cores), and a smaller registered row built by the same
# class with the same flags except the units per stage: it runs the same code (the same unit,
# only repeated fewer times) in `make test`, the big row itself in `make test-slow`.
# test_deep_rows_stand_ins_differ_only_in_depth checks the pairing; every row's parameter count
# stays in `make test` (test_counts.py).
STAND_INS = {
    "cifar_resnet1202_v1_a": "cifar_resnet110_v1_a",
    "cifar_resnet1001_v2": "cifar_resnet164_v2",
    "res2net152_v1d_26w_4s": "res2net50_v1d_26w_4s",
    "res2net200_v1d_26w_4s": "res2net50_v1d_26w_4s_paddle",
}


def _rows():
    """Every registered row; those with a stand-in under the slow marker."""
    for name in ALL:
        yield pytest.param(name, id=name, marks=[pytest.mark.slow] if name in STAND_INS else [])


@pytest.mark.parametrize("big, small", sorted(STAND_INS.items()))
def test_deep_rows_stand_ins_differ_only_in_depth(big, small):
    """A stand-in is what makes a deep row's forward/backward check safe to leave to the slow
    run: same architecture class, input, classes and constructor flags but ``layers``, fewer
    units, and itself checked in `make test`."""
    a, b = get_spec(big), get_spec(small)
    assert (a.arch, a.input_size, a.classes) == (b.arch, b.input_size, b.classes)
    assert {k: v for k, v in a.flags.items() if k != "layers"} == \
        {k: v for k, v in b.flags.items() if k != "layers"}
    assert len(a.flags["layers"]) == len(b.flags["layers"])
    assert sum(b.flags["layers"]) < sum(a.flags["layers"])
    assert small not in STAND_INS and small in ALL


def initialized(name: str, mx, **overrides):
    """A net with random weights whose BN scales are 0.1, so that an untrained 1000-layer net
    stays finite in inference mode (BN's running statistics are the identity before training
    and every unit would otherwise add the variance of its branch)."""
    net = get_model(name, **overrides)
    net.initialize(mx.init.Xavier())
    for pname, param in net.collect_params().items():
        if pname.endswith("gamma") and param.grad_req != "null":
            param.set_data(mx.nd.full(param.shape, 0.1))
    return net


@pytest.mark.parametrize("name", list(_rows()))
def test_forward_hybridize_export_reload(name, mx, tmp_path):
    net = initialized(name, mx)
    size = small_input_size(name)
    x = mx.nd.random.normal(shape=(2, 3, size, size))
    imperative = net(x).asnumpy()
    assert imperative.shape == (2, get_spec(name).classes)
    assert np.isfinite(imperative).all()
    net.hybridize(static_alloc=True, static_shape=True)
    hybrid = net(x).asnumpy()
    np.testing.assert_allclose(hybrid, imperative, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(reloaded_output(mx, net, x, tmp_path, name), hybrid,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(_rows()))
def test_backward_reaches_the_first_layer(name, mx):
    net = initialized(name, mx)
    net.hybridize()
    size = small_input_size(name)
    x = mx.nd.random.normal(shape=(2, 3, size, size))
    with mx.autograd.record():
        loss = mx.gluon.loss.SoftmaxCrossEntropyLoss()(net(x), mx.nd.array([0, 1]))
    loss.backward()
    grads = [p.grad() for p in net.collect_params().values() if p.grad_req != "null"]
    first_conv = next(p for p in net.collect_params().values() if p.name.endswith("weight"))
    assert all(np.isfinite(g.asnumpy()).all() for g in grads)
    assert np.abs(first_conv.grad().asnumpy()).sum() > 0


@pytest.mark.parametrize("name", [n for n in ALL if get_spec(n).flags.get("shortcut") == "A"])
def test_option_a_shortcuts_have_no_parameters(name):
    from bench.models.resnet import ZeroPadShortcut
    net = get_model(name)
    shortcuts = [u.shortcut for stage in net.features._children.values()
                 for u in getattr(stage, "_children", {}).values() if hasattr(u, "shortcut")]
    assert shortcuts and all(s is None or isinstance(s, ZeroPadShortcut) for s in shortcuts)
    assert any(isinstance(s, ZeroPadShortcut) for s in shortcuts)
    assert not [p for p in net.collect_params() if "shortcut" in p]


def test_option_a_pads_zeros_and_subsamples(mx):
    from bench.models.resnet import ZeroPadShortcut
    block = ZeroPadShortcut(2, 5, 2)
    x = mx.nd.arange(2 * 2 * 4 * 4).reshape((2, 2, 4, 4))
    y = block(x).asnumpy()
    assert y.shape == (2, 5, 2, 2)
    np.testing.assert_array_equal(y[:, :2], x.asnumpy()[:, :, ::2, ::2])
    assert not y[:, 2:].any()


def _copy_params(src, dst):
    for a, b in zip(src.collect_params().values(), dst.collect_params().values()):
        b.set_data(a.data())


def test_stochastic_depth_with_survival_one_equals_the_plain_net(mx):
    plain = get_model("cifar_resnet110_v1_a")
    sd = get_model("cifar_resnet110_v1_sd", survival_prob_last=1.0)
    plain.initialize(mx.init.Xavier())
    sd.initialize()
    _copy_params(plain, sd)
    x = mx.nd.random.normal(shape=(4, 3, 32, 32))
    np.testing.assert_allclose(sd(x).asnumpy(), plain(x).asnumpy(), rtol=1e-6)
    with mx.autograd.record():
        a, b = sd(x), plain(x)
    np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-6)


def _unit(mx, survival):
    from bench.models.resnet import ResidualUnit
    unit = ResidualUnit(4, 4, 1, kind="basic", preact=False, stride_on="1x1", shortcut="B",
                        mid_channels=4, survival=survival)
    unit.initialize(mx.init.Xavier())
    return unit


def test_stochastic_depth_drops_whole_branches_in_training_and_scales_at_test(mx):
    unit, reference = _unit(mx, 0.5), _unit(mx, 1.0)
    _copy_params(unit, reference)
    x = mx.nd.random.normal(shape=(3, 4, 5, 5))
    unit.hybridize()
    identity = mx.nd.relu(x).asnumpy()
    full = reference(x).asnumpy()
    seen = set()
    for _ in range(40):
        with mx.autograd.record():
            y = unit(x).asnumpy()
        if np.allclose(y, identity, atol=1e-6):
            seen.add("dropped")
        else:
            # kept: the unit behaves exactly as without stochastic depth (BN in train mode)
            with mx.autograd.record():
                np.testing.assert_allclose(y, reference(x).asnumpy(), rtol=1e-5, atol=1e-6)
            seen.add("kept")
    assert seen == {"dropped", "kept"}
    branch = reference.body(x).asnumpy()
    np.testing.assert_allclose(unit(x).asnumpy(), np.maximum(x.asnumpy() + 0.5 * branch, 0),
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(unit(x).asnumpy(), full)


def test_survival_probability_decays_linearly_to_p_last():
    net = get_model("cifar_resnet110_v1_sd")
    units = [u for stage in list(net.features._children.values())
             if hasattr(stage, "_children")
             for u in stage._children.values() if hasattr(u, "_survival")]
    assert len(units) == 54
    survivals = [u._survival for u in units]
    assert survivals[-1] == pytest.approx(0.5)
    assert survivals[0] == pytest.approx(1 - 0.5 / 54)
    assert np.allclose(np.diff(survivals), -0.5 / 54)


@pytest.mark.parametrize("name", ["resnet50_v1d", "cifar_resnet20_v1", "resnet18_v2"])
def test_zero_init_last_bn_silences_every_residual_branch(name, mx):
    net = get_model(name, zero_init_last_bn=True)
    net.initialize(mx.init.Xavier())
    zero = [p for n, p in net.collect_params().items()
            if n.endswith("gamma") and not p.data().asnumpy().any()]
    units = sum(get_spec(name).flags["layers"])
    assert len(zero) == units


def test_classifier_dropout_is_inactive_at_test_time(mx):
    plain, dropped = get_model("cifar_resnet20_v1"), get_model("cifar_resnet20_v1", dropout=0.5)
    plain.initialize(mx.init.Xavier())
    dropped.initialize()
    _copy_params(plain, dropped)
    x = mx.nd.random.normal(shape=(2, 3, 32, 32))
    np.testing.assert_allclose(dropped(x).asnumpy(), plain(x).asnumpy(), rtol=1e-6)
    with mx.autograd.record():
        assert not np.allclose(dropped(x).asnumpy(), plain(x).asnumpy())


@pytest.mark.parametrize("overrides, fragment", [
    (dict(shortcut="E"), "shortcut must be"), (dict(survival_prob_last=0.0), "survival"),
    (dict(stride_on="7x7"), "stride_on"), (dict(dropout=1.5), "dropout"),
    (dict(shortcut="none", survival_prob_last=0.5), "needs shortcuts")])
def test_bad_flag_values_are_one_line_errors(overrides, fragment):
    with pytest.raises(BenchError, match=fragment) as err:
        get_model("resnet18_v1", **overrides)
    assert "\n" not in str(err.value)
