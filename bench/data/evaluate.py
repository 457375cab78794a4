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
    return evaluate_together([predict], data)[0][0]


def evaluate_together(predicts: list[Callable[[Any], Any]], data
                      ) -> tuple[list[dict[str, Any]], list[float]]:
    """:func:`evaluate` of every predictor on the same batches, read once, and the agreement
    of each with the first: the fraction of samples whose top-1 class is the same (1.0 for
    the first itself). Used to put a converted (int8, bf16) net next to its fp32 original."""
    top1 = [0] * len(predicts)
    top5 = [0] * len(predicts)
    same = [0] * len(predicts)
    seen = 0
    for x, y in data.batches():
        labels = _as_numpy(y).astype(np.int64).reshape(-1)
        n = len(labels)
        if data.crops > 1:
            x = x.reshape((n * data.crops,) + tuple(x.shape[2:]))
        first = None
        for i, predict in enumerate(predicts):
            scores = _as_numpy(predict(x))
            if data.crops > 1:
                scores = _probabilities(scores.astype(np.float64).reshape(n, data.crops, -1)
                                        ).mean(axis=1)
            if scores.ndim != 2 or scores.shape[0] != n:
                raise BenchError(f"the network returned scores of shape {scores.shape} for a "
                                 f"batch of {n}: expected ({n}, classes)")
            k = min(5, scores.shape[1])
            best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            top1[i] += int((best[:, 0] == labels).sum())
            top5[i] += int((best == labels[:, None]).any(axis=1).sum())
            first = best[:, 0] if first is None else first
            same[i] += int((best[:, 0] == first).sum())
        seen += n
    check_count(seen, data.num_samples, "evaluation set")
    if seen == 0:
        raise BenchError("the evaluation set is empty")
    results = [{"top1_err": 100.0 * (1 - t1 / seen), "top5_err": 100.0 * (1 - t5 / seen),
                "num_samples": seen} for t1, t5 in zip(top1, top5)]
    return results, [s / seen for s in same]
