"""Listing a net's units and measuring its error with units removed."""
from __future__ import annotations

import numpy as np
import pytest

from bench.analysis import Unit, bypass, clean_error, lesion_errors, single_deletions, units
from bench.errors import BenchError

from .conftest import CTX, images, mx, randomize_bn, registry_net


def test_units_of_cifar_resnet20():
    found = units(registry_net("cifar_resnet20_v1_a"))
    assert [u.index for u in found] == list(range(9))
    assert [(u.stage, u.position) for u in found] == [(s, p) for s in (1, 2, 3) for p in (1, 2, 3)]
    assert [u.index for u in found if u.downsampling] == [3, 6]
    assert all(u.removable for u in found)
    assert found[4] == Unit(index=4, stage=2, position=2, downsampling=False,
                            name="cifar_resnet20_v1_a_stage2_unit2", removable=True)


def test_units_of_a_plain_net_mark_the_shape_changing_ones_unremovable():
    found = units(registry_net("cifar_resnet20_v1_a", shortcut="none"))
    assert [u.index for u in found if not u.removable] == [3, 6]


def test_units_refuses_other_blocks():
    with pytest.raises(BenchError, match="of a resnet, wide resnet, resnext or res2net network "
                                         "of this suite, not of a Dense$"):
        units(mx.gluon.nn.Dense(3))


def _trained_enough(name: str, hybridize: bool = True, **overrides):
    """Random weights with BN statistics away from the defaults, so removing a unit changes
    the predictions (an untrained net with unit BN predicts one class for everything)."""
    net = registry_net(name, **overrides)
    randomize_bn(net)
    if hybridize:
        net.hybridize()
    return net


def _eval_set(net, n: int = 24, batch: int = 8):
    """Images labelled with the intact net's own guesses: its clean error is 0 %."""
    x = images(n, seed=11)
    y = net(mx.nd.array(x, ctx=CTX)).asnumpy().argmax(axis=1)
    return lambda: ((x[i:i + batch], y[i:i + batch]) for i in range(0, n, batch))


def test_lesion_errors_match_the_error_with_the_units_bypassed():
    net = _trained_enough("cifar_resnet20_v1_a")
    batches_fn = _eval_set(net)
    calls = []

    def counting():
        calls.append(1)
        return batches_fn()

    sets = [(), (2, 7), (0, 1, 2, 3, 4, 5, 6, 7, 8)]
    errors = lesion_errors(net, counting, sets, CTX)
    assert len(calls) == len(sets)
    assert errors[0] == 0.0 and errors[2] > 0.0
    with bypass(net, (2, 7)):
        assert errors[1] == clean_error(net, batches_fn(), CTX)
    assert all(isinstance(e, float) and 0.0 <= e <= 100.0 for e in errors)
    assert clean_error(net, batches_fn(), CTX) == errors[0]  # nothing left bypassed


def test_single_deletions_cover_every_removable_unit_once():
    net = _trained_enough("cifar_resnet20_v1_a", hybridize=False, shortcut="none")
    batches_fn = _eval_set(net, n=8)
    result = single_deletions(net, batches_fn, CTX)
    assert [u.index for u, _ in result] == [0, 1, 2, 4, 5, 7, 8]
    assert all(isinstance(u, Unit) and u.removable for u, _ in result)
    with bypass(net, [5]):
        assert result[4][1] == clean_error(net, batches_fn(), CTX)
