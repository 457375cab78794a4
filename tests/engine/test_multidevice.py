"""The multi-device path on several CPU contexts: only the CUDA kernels differ on GPUs."""
from __future__ import annotations

import numpy as np
import pytest

from bench.engine.step import train_step


def _net_without_bn(mx, ctxs, seed: int = 3):
    # Batch norm's statistics are per device, so only a BN-free net must match exactly.
    from mxnet.gluon import nn
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, 3, padding=1, in_channels=1), nn.Activation("relu"),
            nn.Dense(10, in_units=4 * 8 * 8))
    mx.random.seed(seed)
    net.initialize(mx.init.Xavier(), ctx=ctxs)
    net.hybridize()
    return net


@pytest.mark.parametrize("kvstore", ["device", "local"])
def test_one_step_on_two_contexts_equals_one_step_on_one(kvstore):
    import mxnet as mx
    rng = np.random.default_rng(0)
    data = mx.nd.array(rng.normal(size=(10, 1, 8, 8)).astype(np.float32))
    labels = rng.integers(0, 10, size=10)
    results = []
    for ctxs in ([mx.cpu(0)], [mx.cpu(0), mx.cpu(1)]):
        net = _net_without_bn(mx, ctxs)
        trainer = mx.gluon.Trainer(net.collect_params(), "sgd",
                                   {"learning_rate": 0.1, "momentum": 0.9, "wd": 1e-4},
                                   kvstore=kvstore)
        loss = mx.gluon.loss.SoftmaxCrossEntropyLoss()
        for _ in range(2):  # the second step also checks the momentum state
            loss_sum, wrong = train_step(net, trainer, loss, data, labels, ctxs, global_batch=10)
        params = {k: [p.data(c).asnumpy() for c in ctxs]
                  for k, p in net.collect_params().items()}
        for copies in params.values():  # every device holds the same weights after a step
            for other in copies[1:]:
                np.testing.assert_array_equal(other, copies[0])
        results.append(([c[0] for c in params.values()], loss_sum.asscalar(), wrong.asscalar()))
    (single, l1, w1), (double, l2, w2) = results
    for a, b in zip(single, double):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    assert l1 == pytest.approx(l2, rel=1e-5) and w1 == w2
