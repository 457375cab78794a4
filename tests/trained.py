"""A small net trained for real on the 8x8 digits, for the tests of converted precisions
(tests/test_inference.py, tests/engine/test_eval_dtype.py).

Trained for 80 SGD steps (about 95% test top-1 after a few seconds), so that its logits are
spread out like a trained net's: a freshly initialised net has near-equal logits, where any
rounding flips top-1 and an agreement test would measure noise. Each test module makes its own
(module-scoped fixtures) by calling :func:`train_digits_net`.
"""
from __future__ import annotations

import numpy as np


def train_digits_net(network: str = "cifar_resnet20_v1", steps: int = 80):
    """``network`` (1 input channel, 10 classes) trained on the digits' training split, with
    BN running statistics settled on the final weights; returns (net, x_train, x_test)."""
    import mxnet as mx
    from bench.data.small import digits_split
    from bench.models import get_model
    x_train, y_train, x_test, _ = digits_split(8)
    mx.random.seed(0)
    rng = np.random.RandomState(0)
    net = get_model(network, classes=10, in_channels=1)
    net.initialize(mx.init.Xavier(magnitude=2))
    net.hybridize(static_alloc=True)
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd",
                               {"learning_rate": 0.05, "momentum": 0.9, "wd": 1e-4})
    loss = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    for _ in range(steps):
        i = rng.choice(len(x_train), 32, replace=False)
        with mx.autograd.record():
            out = loss(net(mx.nd.array(x_train[i])), mx.nd.array(y_train[i]))
        out.backward()
        trainer.step(32)
    # Settle the BN running statistics on the final weights (no gradient step).
    for j in range(10):
        with mx.autograd.train_mode():
            net(mx.nd.array(x_train[j * 64:(j + 1) * 64]))
    return net, x_train, x_test
