"""Top-1 / top-5 error of a predictor over an evaluation set."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from bench.data.arrays import check_count
from bench.errors import BenchError


def _as_numpy(x: Any) -> np.ndarray:
    return np.asarray(x.asnumpy() if hasattr(x, "asnumpy") else x)


def _probabilities(scores: np.ndarray) -> np.ndarray:
    """Rows that already are distributions stay as they are; logits go through a softmax."""
    if scores.min() >= 0 and np.allclose(scores.sum(axis=-1), 1.0, atol=1e-3):
        return scores
    shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def evaluate(predict: Callable[[Any], Any], data) -> dict[str, Any]:
    """``{"top1_err", "top5_err"}`` in percent over ``data`` and ``"num_samples"``.

    ``predict`` maps a batch (n, C, H, W) to scores (n, classes): logits or probabilities. With
    ``data.crops`` > 1 the crops of each sample are predicted as one (n * crops) batch and their
    softmax probabilities averaged. Top-5 is top-min(5, classes)."""
    top1 = top5 = seen = 0
    for x, y in data.batches():
        labels = _as_numpy(y).astype(np.int64).reshape(-1)
        n = len(labels)
        if data.crops > 1:
            x = x.reshape((n * data.crops,) + tuple(x.shape[2:]))
            scores = _as_numpy(predict(x)).astype(np.float64)
            scores = _probabilities(scores.reshape(n, data.crops, -1)).mean(axis=1)
        else:
            scores = _as_numpy(predict(x))
        if scores.ndim != 2 or scores.shape[0] != n:
            raise BenchError(f"the network returned scores of shape {scores.shape} for a batch "
                             f"of {n}: expected ({n}, classes)")
        k = min(5, scores.shape[1])
        best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        top1 += int((best[:, 0] == labels).sum())
        top5 += int((best == labels[:, None]).any(axis=1).sum())
        seen += n
    check_count(seen, data.num_samples, "evaluation set")
    if seen == 0:
        raise BenchError("the evaluation set is empty")
    return {"top1_err": 100.0 * (1 - top1 / seen), "top5_err": 100.0 * (1 - top5 / seen),
            "num_samples": seen}
