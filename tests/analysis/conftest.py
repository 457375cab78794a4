"""Shared helpers for the analysis tests: small nets with random weights, 16x16 grey inputs."""
from __future__ import annotations

import numpy as np
import pytest

from bench._mxnet import require_mxnet
from bench.models.registry import get_model
from bench.models.resnet import ResNet

mx = require_mxnet()
CTX = mx.cpu()


def registry_net(name: str, **overrides) -> ResNet:
    net = get_model(name, in_channels=1, **overrides)
    net.initialize(mx.init.Xavier(), ctx=CTX)
    return net


def two_unit_net(shortcut: str, preact: bool = False, preact_shortcut: bool = True) -> ResNet:
    """Stage 1: one unit keeping the shape (4 -> 4); stage 2: one downsampling unit (4 -> 8)."""
    net = ResNet(block="basic", layers=(1, 1), stage_channels=(4, 8), stem="cifar",
                 stem_width=4, classes=3, in_channels=1, shortcut=shortcut, preact=preact,
                 preact_shortcut=preact_shortcut)
    net.initialize(mx.init.Xavier(), ctx=CTX)
    randomize_bn(net)
    return net


def randomize_bn(net) -> None:
    """BN with running statistics and scales away from their defaults, so that a test fails
    when a layer is skipped, doubled or run on batch statistics."""
    rng = np.random.default_rng(1)
    for name, param in net.collect_params().items():
        shape = param.shape
        if name.endswith(("gamma", "beta")) and param.grad_req == "null":
            continue  # a BN without scale/shift (GluonCV's input BN) keeps gamma 1, beta 0
        if name.endswith(("gamma", "running_var")):
            param.set_data(mx.nd.array(rng.uniform(0.5, 1.5, shape)))
        elif name.endswith(("beta", "running_mean")):
            param.set_data(mx.nd.array(rng.uniform(-0.3, 0.3, shape)))


def images(n: int = 2, size: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 1, size, size)).astype(np.float32)


def run(net, x: np.ndarray) -> np.ndarray:
    return net(mx.nd.array(x, ctx=CTX)).asnumpy()


@pytest.fixture
def ctx():
    return CTX
