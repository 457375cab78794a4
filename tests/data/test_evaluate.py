"""evaluate(): top-1 / top-5 arithmetic, ten-crop averaging, and its counting guard."""
from __future__ import annotations

import numpy as np
import pytest

from bench.data import DataSpec, build_eval, evaluate
from bench.errors import BenchError


class Stub:
    """An EvalData whose "images" are the labels themselves, so predictors can cheat."""

    def __init__(self, labels, batch=4, crops=1, num_samples=None):
        self.labels, self.batch, self.crops = np.asarray(labels), batch, crops
        self.num_samples = len(labels) if num_samples is None else num_samples

    def batches(self):
        for s in range(0, len(self.labels), self.batch):
            y = self.labels[s:s + self.batch]
            if self.crops > 1:
                yield np.repeat(y[:, None], self.crops, axis=1).reshape(len(y), -1, 1, 1, 1), y
            else:
                yield y.reshape(len(y), 1, 1, 1), y


def ranked(classes: int, shift: int):
    """Scores that rank class (label + shift) first, then +1, +2, ... (the label comes last
    when shift is 1)."""
    def predict(x):
        y = np.asarray(x).reshape(-1).astype(int)
        order = (np.arange(classes)[None, :] - y[:, None] - shift) % classes
        return -order.astype(np.float32)
    return predict


LABELS = np.arange(10) % 7


def test_perfect_and_shifted_predictors():
    assert evaluate(ranked(7, 0), Stub(LABELS)) == {"top1_err": 0.0, "top5_err": 0.0,
                                                     "num_samples": 10}
    r = evaluate(ranked(7, 1), Stub(LABELS))
    assert r["top1_err"] == 100.0 and r["top5_err"] == 100.0  # label ranked 7th of 7
    r = evaluate(ranked(7, -3), Stub(LABELS))  # label 4th
    assert r["top1_err"] == 100.0 and r["top5_err"] == 0.0


def test_half_right():
    def predict(x):
        y = np.asarray(x).reshape(-1).astype(int)
        guess = np.where(np.arange(len(y)) % 2 == 0, y, (y + 1) % 7)
        return np.eye(7, dtype=np.float32)[guess]
    # Batches of 4 restart the even/odd pattern: samples 0,2 | 4,6 | 8 right: 5 of 10.
    assert evaluate(predict, Stub(LABELS))["top1_err"] == pytest.approx(50.0)


def test_top5_with_fewer_than_five_classes_is_top_k():
    r = evaluate(ranked(3, 1), Stub(np.arange(9) % 3))
    assert r["top1_err"] == 100.0 and r["top5_err"] == 0.0


def test_ten_crops_average_softmax_probabilities():
    seen = []

    def predict(x):
        seen.append(np.asarray(x).shape)
        n = len(x) // 10
        y = np.asarray(x).reshape(n, 10)[:, 0].astype(int)
        logits = np.zeros((n, 10, 4), np.float32)
        rows = np.arange(n)
        logits[rows, 0, (y + 1) % 4] = 50.0  # one very confident wrong crop
        for crop in range(1, 10):
            logits[rows, crop, y] = 2.0  # nine mildly right crops
        return logits.reshape(n * 10, 4)
    r = evaluate(predict, Stub(np.arange(6) % 4, batch=4, crops=10))
    assert seen == [(40, 1, 1, 1), (20, 1, 1, 1)]
    assert r["top1_err"] == 0.0  # averaged probabilities, not summed logits (which says wrong)


def test_count_mismatch_raises():
    with pytest.raises(BenchError) as e:
        evaluate(ranked(7, 0), Stub(LABELS, num_samples=11))
    assert "instead of 11" in str(e.value)


def test_on_real_digits_with_a_nearest_mean_classifier():
    from bench.data.small import digits_split
    x_train, y_train = digits_split()[:2]
    means = np.stack([x_train[y_train == c].mean(axis=0).reshape(-1) for c in range(10)])
    predict = lambda x: -((np.asarray(x).reshape(len(x), 1, -1) - means) ** 2).sum(-1)  # noqa
    r = evaluate(predict, build_eval(DataSpec("digits", "none", 8, protocol="full"), None, 50))
    assert r["num_samples"] == 360 and r["top1_err"] < 15 and r["top5_err"] < r["top1_err"]
