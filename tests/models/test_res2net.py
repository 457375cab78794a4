"""Res2Net (Gao et al. 2019): the hierarchical split against its closed form with known weights,
stage units (timm's / the authors' vs PaddleClas's), stage shapes, export, backward, and the
parameter counts of timm's nets."""
from __future__ import annotations

import numpy as np
import pytest

from bench.errors import BenchError
from bench.models import get_model
from tests.models.conftest import reloaded_output
from tests.models.source_layouts import RES2NET_TIMM


def _body(mx, stage_unit, stride=1, pool_count_pad=True, width=2, scale=3):
    """A branch whose 3x3 convs are identity kernels (centre tap 1) and whose BNs are the
    identity, so every group's output is ReLU of its input: the hierarchy in closed form."""
    from bench.models.res2net import HierarchicalBottleneck
    body = HierarchicalBottleneck(width * scale, width * scale, stride, width=width,
                                  scale=scale, groups=1, stage_unit=stage_unit,
                                  pool_count_pad=pool_count_pad, zero_gamma=False)
    body.initialize()
    eye = np.eye(width * scale).reshape(width * scale, width * scale, 1, 1)
    body.reduce[0].weight.set_data(mx.nd.array(eye))
    body.expand[0].weight.set_data(mx.nd.array(eye))
    k = np.zeros((width, width, 3, 3))
    k[np.arange(width), np.arange(width), 1, 1] = 1
    for seq in body.convs._children.values():
        seq[0].weight.set_data(mx.nd.array(k))
    for name, param in body.collect_params().items():
        if name.endswith("running_var"):  # inference BN then divides by sqrt(var + eps) = 1
            param.set_data(mx.nd.full(param.shape, 1 - 1e-5))
    return body


def _relu(a):
    return np.maximum(a, 0)


def _avg3(a, stride, count_pad):
    """3x3 average pool, padding 1, counting the zero padding or not."""
    n, c, h, w = a.shape
    padded = np.pad(a, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ones = np.pad(np.ones((h, w)), 1)
    out_h, out_w = (h - 1) // stride + 1, (w - 1) // stride + 1
    out = np.zeros((n, c, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            win = padded[:, :, i * stride:i * stride + 3, j * stride:j * stride + 3]
            count = 9 if count_pad else ones[i * stride:i * stride + 3, j * stride:j * stride + 3].sum()
            out[:, :, i, j] = win.sum(axis=(2, 3)) / count
    return out


def test_a_normal_unit_adds_each_groups_output_to_the_next_group(mx):
    body = _body(mx, stage_unit=False)
    x = np.random.RandomState(0).normal(size=(2, 6, 5, 5))
    g = [_relu(x[:, 2 * i:2 * i + 2]) for i in range(3)]  # reduce = 1x1 identity + BN + ReLU
    y1 = _relu(g[0])
    y2 = _relu(g[1] + y1)  # hierarchical: y_i = K_i(x_i + y_{i-1})
    expected = np.concatenate([y1, y2, g[2]], axis=1)  # the last group passes through
    np.testing.assert_allclose(body(mx.nd.array(x)).asnumpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("stride, count_pad", [(1, True), (2, True), (2, False)])
def test_a_stage_unit_adds_nothing_and_pools_the_last_group(mx, stride, count_pad):
    body = _body(mx, stage_unit=True, stride=stride, pool_count_pad=count_pad)
    x = np.random.RandomState(1).normal(size=(2, 6, 5, 5))
    g = [_relu(x[:, 2 * i:2 * i + 2]) for i in range(3)]
    sub = (slice(None), slice(None), slice(None, None, stride), slice(None, None, stride))
    expected = np.concatenate([g[0][sub], g[1][sub], _avg3(g[2], stride, count_pad)], axis=1)
    out = body(mx.nd.array(x)).asnumpy()
    assert out.shape == ((2, 6, 3, 3) if stride == 2 else (2, 6, 5, 5))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def _units(net):
    return [u for stage in list(net.features._children.values())
            if stage.prefix.endswith(tuple(f"stage{i}_" for i in range(1, 5)))
            for u in stage._children.values()]


@pytest.mark.parametrize("name, stage_units", [
    ("res2net50_26w_4s", [True, False, False, True]),  # authors / timm: every stage's first
    ("res2net50_26w_4s_paddle", [False, False, False, True])])  # PaddleClas: strided only
def test_which_units_are_stage_units(name, stage_units):
    units = _units(get_model(name))
    firsts = [units[0], units[1], units[2], units[3]]  # stage 1: units 0-2, stage 2 from 3
    assert [u.stage_unit for u in firsts] == stage_units
    assert sum(u.stage_unit for u in units) == stage_units.count(True) + 2  # stages 3, 4


def test_paddle_layout_has_timms_parameters_but_other_outputs(mx):
    timm, paddle = get_model("res2net50_26w_4s"), get_model("res2net50_26w_4s_paddle")
    timm.initialize(mx.init.Xavier())
    paddle.initialize()
    for a, b in zip(timm.collect_params().values(), paddle.collect_params().values()):
        b.set_data(a.data())
    x = mx.nd.random.normal(shape=(1, 3, 64, 64))
    assert not np.allclose(timm(x).asnumpy(), paddle(x).asnumpy(), rtol=1e-3)


def _tiny(mx):
    from bench.models.res2net import Res2Net
    net = Res2Net(layers=(1, 1, 1, 1), stage_channels=(32, 64, 128, 256), base_width=26,
                  scale=4, stem="deep", stem_width=8, shortcut="D", classes=5)
    net.initialize(mx.init.Xavier())
    return net


def test_stage_shapes(mx):
    net = _tiny(mx)
    out, shapes = mx.nd.random.normal(shape=(2, 3, 64, 64)), []
    for child in net.features._children.values():
        out = child(out)
        if "_stage" in child.prefix:
            shapes.append(out.shape)
    assert shapes == [(2, 32, 16, 16), (2, 64, 8, 8), (2, 128, 4, 4), (2, 256, 2, 2)]
    assert net(mx.nd.zeros((1, 3, 64, 64))).shape == (1, 5)


def test_hybridize_export_reload_and_backward(mx, tmp_path):
    net = _tiny(mx)
    x = mx.nd.random.normal(shape=(2, 3, 64, 64))
    imperative = net(x).asnumpy()
    net.hybridize(static_alloc=True, static_shape=True)
    np.testing.assert_allclose(net(x).asnumpy(), imperative, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(reloaded_output(mx, net, x, tmp_path), imperative,
                               rtol=1e-5, atol=1e-6)
    with mx.autograd.record():
        loss = net(x).sum()
    loss.backward()
    grads = [p.grad().asnumpy() for p in net.collect_params().values() if p.grad_req != "null"]
    assert all(np.isfinite(g).all() for g in grads) and np.abs(grads[0]).sum() > 0


@pytest.mark.parametrize("name", sorted(RES2NET_TIMM))
def test_params_equal_timms(name):
    from bench.models import profile
    src = RES2NET_TIMM[name]
    net = get_model(name)
    stages = tuple(len(b) for b in net.features if b.prefix.startswith(f"{name}_stage"))
    assert stages == src.stages
    assert profile(net, (1, 3, 224, 224)).learnable_params == src.params, src.source


@pytest.mark.parametrize("overrides, fragment", [
    (dict(scale=1), "scale"), (dict(shortcut="A"), "shortcut"), (dict(stem="cifar"), "stem"),
    (dict(stage_units="all"), "stage_units")])
def test_bad_options_are_one_line_errors(overrides, fragment):
    with pytest.raises(BenchError, match=fragment) as err:
        get_model("res2net50_26w_4s", **overrides)
    assert "\n" not in str(err.value)
