"""Top-1 error of a trained net on clean (unaugmented, unperturbed) evaluation batches."""
from __future__ import annotations

from typing import Iterable

import numpy as np

from bench._mxnet import require_mxnet
from bench.errors import BenchError

mx = require_mxnet()


def predict(net, x: np.ndarray, ctx) -> np.ndarray:
    """The net's outputs for ``x`` in inference mode: no recording, BN on its running
    statistics, dropout and stochastic depth in their test-time form, even when the caller
    sits inside ``autograd.record()``."""
    with mx.autograd.pause(train_mode=False):
        return net(mx.nd.array(x, ctx=ctx, dtype="float32")).asnumpy()


def clean_error(net, batches: Iterable[tuple[np.ndarray, np.ndarray]], ctx) -> float:
    """Top-1 error in percent of ``net`` over ``batches`` of (float32 NCHW images, labels)."""
    wrong = seen = 0
    for x, y in batches:
        labels = np.asarray(y).astype(np.int64).reshape(-1)
        guesses = predict(net, x, ctx).argmax(axis=1)
        if len(guesses) != len(labels):
            raise BenchError(f"a batch has {len(guesses)} images but {len(labels)} labels")
        wrong += int((guesses != labels).sum())
        seen += len(labels)
    if seen == 0:
        raise BenchError("the evaluation batches were empty: an error rate over no images means "
                         "nothing; check the evaluation set")
    return 100.0 * wrong / seen
