"""He 2015 Fig. 7 layer responses: one per 3x3 layer, in depth order, checked by hand."""
from __future__ import annotations

import numpy as np
import pytest

from bench.analysis import bypass, layer_responses, sorted_responses
from bench.errors import BenchError
from bench.models.resnet import ResNet

from .conftest import CTX, images, mx, randomize_bn, registry_net

EPS = 1e-5  # Gluon BatchNorm's default epsilon


def conv3x3(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Stride-1, pad-1 cross-correlation written out with numpy (N, C, H, W) x (O, C, 3, 3)."""
    n, c, h, wd = x.shape
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, w.shape[0], h, wd))
    for dy in range(3):
        for dx in range(3):
            out += np.einsum("nchw,oc->nohw", padded[:, :, dy:dy + h, dx:dx + wd], w[:, :, dy, dx])
    return out


def batchnorm(x: np.ndarray, bn) -> np.ndarray:
    """Inference-mode BN from the layer's running statistics."""
    get = lambda p: p.data().asnumpy().astype(np.float64).reshape(1, -1, 1, 1)  # noqa: E731
    return (x - get(bn.running_mean)) / np.sqrt(get(bn.running_var) + EPS) * get(bn.gamma) \
        + get(bn.beta)


def small(**flags) -> ResNet:
    net = ResNet(block=flags.pop("block", "basic"), layers=(1, 1), stage_channels=(8, 16),
                 stem_width=4, classes=3, in_channels=1, **flags)
    net.initialize(mx.init.Xavier(), ctx=CTX)
    return net


@pytest.mark.parametrize("make,count", [
    (lambda: registry_net("cifar_resnet20_v1_a"), 19),
    (lambda: registry_net("cifar_resnet20_v2"), 19),
    (lambda: registry_net("cifar_resnet20_v1_a", shortcut="none"), 19),
    (lambda: small(stem="cifar", block="bottleneck"), 1 + 2),
    (lambda: small(stem="deep"), 3 + 4),
    (lambda: small(stem="conv7"), 0 + 4),
], ids=["resnet20_v1_a", "resnet20_v2", "plain20", "bottleneck", "deep-stem", "conv7-stem"])
def test_one_finite_positive_value_per_3x3_layer_hybridized_or_not(make, count):
    net = make()
    randomize_bn(net)
    x = images(4, size=32)
    values = layer_responses(net, x, CTX)
    assert len(values) == count
    assert all(type(v) is float and np.isfinite(v) and v > 0 for v in values)
    net.hybridize(static_alloc=True)
    net(mx.nd.array(x, ctx=CTX))
    np.testing.assert_allclose(layer_responses(net, x, CTX), values, rtol=1e-5)


def test_post_activation_responses_by_hand():
    """Stem conv + BN, then the first unit's first conv + BN, with known gammas per channel."""
    net = registry_net("cifar_resnet20_v1_a")
    randomize_bn(net)
    stem_conv, stem_bn = net.features[0], net.features[1]
    unit = net.features[3][0]
    conv0, bn0 = unit.body[0], unit.body[1]
    stem_bn.gamma.set_data(mx.nd.array(np.linspace(0.5, 2.0, 16)))
    bn0.gamma.set_data(mx.nd.full((16,), 3.0))
    x = images(3)
    stem = batchnorm(conv3x3(x, stem_conv.weight.data().asnumpy()), stem_bn)
    first = batchnorm(conv3x3(np.maximum(stem, 0), conv0.weight.data().asnumpy()), bn0)
    values = layer_responses(net, x, CTX)
    np.testing.assert_allclose(values[:2], [stem.std(), first.std()], rtol=1e-4)


def test_pre_activation_second_conv_is_measured_before_any_bn():
    """A v2 unit's second 3x3 conv has no BN of its own: its raw output is the response."""
    net = registry_net("cifar_resnet20_v2")
    randomize_bn(net)
    input_bn, stem_conv = net.features[0], net.features[1]
    unit = net.features[2][0]
    pre_bn, conv0, bn0, conv1 = unit.preact[0], unit.body[0], unit.body[1], unit.body[3]
    x = images(3)
    mean, var = input_bn.running_mean.data().asnumpy(), input_bn.running_var.data().asnumpy()
    h = (x - mean.reshape(1, -1, 1, 1)) / np.sqrt(var.reshape(1, -1, 1, 1) + EPS)
    stem = conv3x3(h, stem_conv.weight.data().asnumpy())  # the v2 CIFAR stem has no BN
    h = conv3x3(np.maximum(batchnorm(stem, pre_bn), 0), conv0.weight.data().asnumpy())
    mid = batchnorm(h, bn0)
    last = conv3x3(np.maximum(mid, 0), conv1.weight.data().asnumpy())
    values = layer_responses(net, x, CTX)
    np.testing.assert_allclose(values[:3], [stem.std(), mid.std(), last.std()], rtol=1e-4)


def test_sorted_responses_descend():
    assert sorted_responses([0.5, 2, 1.25]) == [2.0, 1.25, 0.5]
    assert all(type(v) is float for v in sorted_responses(np.array([1, 3], np.float32)))


def test_responses_inside_a_bypass_are_refused_in_one_line():
    net = small(stem="cifar")
    with bypass(net, [0]), pytest.raises(BenchError, match="outside `bypass`") as err:
        layer_responses(net, images(), CTX)
    assert "\n" not in str(err.value)
