"""Clean top-1 error against a hand count."""
from __future__ import annotations

import numpy as np
import pytest

from bench.analysis import clean_error
from bench.data.arrays import ArrayEval
from bench.errors import BenchError

from .conftest import CTX, mx

# Test data: each image is 3 logits (3x1x1); its label and whether argmax hits it by hand.
LOGITS = np.array([[3, 1, 0], [0, 2, 1], [0, 1, 5], [4, 0, 0], [0, 0, 1]], np.float32)
LABELS = np.array([0, 1, 0, 2, 2])  # right, right, wrong, wrong, right: 2 of 5 wrong


def logits_net():
    """Identity on the logits, behind a dropout that would scramble them in training mode
    and a BN whose batch statistics would rescale them (its running ones are the identity)."""
    net = mx.gluon.nn.HybridSequential()
    net.add(mx.gluon.nn.BatchNorm(in_channels=3, epsilon=0.0), mx.gluon.nn.Flatten(),
            mx.gluon.nn.Dropout(0.9), mx.gluon.nn.Dense(3, in_units=3, use_bias=False))
    net.initialize(ctx=CTX)
    net[3].weight.set_data(mx.nd.array(np.eye(3)))
    net[0].gamma.set_data(mx.nd.array([1, 1, 1]))
    return net


@pytest.mark.parametrize("hybridize", [False, True])
def test_error_against_a_hand_count(hybridize):
    net = logits_net()
    if hybridize:
        net.hybridize()
    x = LOGITS.reshape(5, 3, 1, 1)
    batches = [(x[:2], LABELS[:2]), (x[2:], LABELS[2:])]
    assert clean_error(net, batches, CTX) == pytest.approx(40.0)
    with mx.autograd.record():  # still evaluated in inference mode
        assert clean_error(net, iter(batches), CTX) == pytest.approx(40.0)


def test_error_of_array_eval_batches():
    x = LOGITS.reshape(5, 3, 1, 1)
    data = ArrayEval(x, LABELS, batch_size=2, prepare=lambda raw, rng: raw.astype(np.float32))
    assert clean_error(logits_net(), data.batches(), CTX) == pytest.approx(40.0)


def test_empty_batches_are_refused():
    with pytest.raises(BenchError, match="empty") as err:
        clean_error(logits_net(), [], CTX)
    assert "\n" not in str(err.value)
