"""Bypassed units against the same computation written out by hand on two-unit nets."""
from __future__ import annotations

import numpy as np
import pytest

from bench.analysis import bypass
from bench.errors import BenchError

from .conftest import images, mx, run, two_unit_net


def _expected_with_unit_bypassed(net, x, bypassed: int):
    """The two-unit net by hand: every feature block in order, one unit replaced by its
    shortcut path computed from the unit's own sub-blocks."""
    nd = mx.nd
    h = nd.array(x)
    stage = 0
    for block in net.features._children.values():
        unit = block._children.get("0") if block.name.startswith(net.prefix + "stage") else None
        if unit is None:
            h = block(h)
            continue
        if stage == bypassed:
            source = h
            if unit.preact is not None and unit._preact_shortcut:
                source = unit.preact(h)
            identity = h if unit.shortcut is None else unit.shortcut(source)
            h = identity if unit.preact is not None else nd.relu(identity)
        else:
            h = unit(h)
        stage += 1
    return net.output(h).asnumpy()


CASES = [("A", False, True), ("B", False, True), ("A", True, True), ("B", True, True),
         ("A", True, False), ("B", True, False)]


@pytest.mark.parametrize("shortcut,preact,preact_shortcut", CASES,
                         ids=[f"{s}-{'v2' if p else 'v1'}{'' if ps else '-raw'}"
                              for s, p, ps in CASES])
def test_a_bypassed_unit_outputs_its_shortcut(shortcut, preact, preact_shortcut):
    """Unit 0 has an identity shortcut, unit 1 downsamples; imperative, then hybridized."""
    net = two_unit_net(shortcut, preact, preact_shortcut)
    x = images(seed=3)
    expected = [_expected_with_unit_bypassed(net, x, which) for which in (0, 1)]
    normal = run(net, x)
    for hybridized in (False, True):
        if hybridized:
            net.hybridize()
            np.testing.assert_allclose(run(net, x), normal, rtol=1e-5, atol=1e-6)  # cached
        for which in (0, 1):
            assert not np.allclose(expected[which], normal)  # the unit's branch matters here
            with bypass(net, [which]):
                np.testing.assert_allclose(run(net, x), expected[which], rtol=1e-5, atol=1e-6)


def test_plain_net_skips_a_shape_keeping_unit_and_refuses_a_shape_changing_one():
    net = two_unit_net("none")
    x = images(seed=5)
    features = list(net.features._children.values())
    h = mx.nd.array(x)
    for block in features:
        if block.name != net.prefix + "stage1":  # the skipped layer pair
            h = block(h)
    expected = net.output(h).asnumpy()
    assert not np.allclose(expected, run(net, x))
    net.hybridize()
    run(net, x)
    with bypass(net, [0]):
        np.testing.assert_allclose(run(net, x), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(BenchError) as err:
        with bypass(net, [1]):
            pass
    assert "\n" not in str(err.value) and "changes the shape" in str(err.value)


@pytest.mark.parametrize("index", [2, -1, "1"])
def test_unknown_unit_is_refused_in_one_line(index):
    net = two_unit_net("A")
    with pytest.raises(BenchError, match="numbered 0 to 1") as err:
        with bypass(net, [index]):
            pass
    assert "\n" not in str(err.value)
