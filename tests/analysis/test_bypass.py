"""Bypassing units of registry nets: nothing bypassed is the normal net, graphs are rebuilt,
and the net comes back intact."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from bench.analysis import bypass, rebuild_graph

from .conftest import images, randomize_bn, registry_net, run

@pytest.mark.parametrize("name", ["cifar_resnet20_v1_a", "cifar_resnet20_v2"])
def test_bypassing_nothing_is_the_normal_net_and_exit_restores_it(name):
    """Imperative first, then the same net hybridized."""
    net = registry_net(name)
    randomize_bn(net)
    x = images()
    for hybridized in (False, True):
        if hybridized:
            net.hybridize()
        normal = run(net, x)
        with bypass(net, []):
            np.testing.assert_array_equal(run(net, x), normal)
        with bypass(net, [1, 4]):
            assert not np.allclose(run(net, x), normal)
        np.testing.assert_array_equal(run(net, x), normal)
        with bypass(net, []):
            np.testing.assert_array_equal(run(net, x), normal)


@pytest.mark.parametrize("flags", [{}, {"static_alloc": True, "static_shape": True}],
                         ids=["default", "static"])
def test_hybridized_net_rebuilds_its_graph_on_entry_and_exit(flags):
    plain = registry_net("cifar_resnet20_v1_a")
    randomize_bn(plain)
    x = images()
    with bypass(plain, [2, 5]):
        bypassed_imperative = run(plain, x)
    plain.hybridize(**flags)
    normal = run(plain, x)
    with bypass(plain, [2, 5]):
        np.testing.assert_allclose(run(plain, x), bypassed_imperative, rtol=1e-5, atol=1e-6)
        assert not np.allclose(run(plain, x), normal)
    np.testing.assert_array_equal(run(plain, x), normal)


def test_exit_restores_the_net_after_an_exception():
    net = registry_net("cifar_resnet20_v1_a")
    net.hybridize()
    x = images()
    normal = run(net, x)
    with pytest.raises(RuntimeError):
        with bypass(net, [0, 3]):
            run(net, x)
            raise RuntimeError("inside")
    units = [u for stage in list(net.features._children.values())[3:6]
             for u in stage._children.values()]
    assert len(units) == 9 and not any(u.bypassed for u in units)
    np.testing.assert_array_equal(run(net, x), normal)


def test_the_unused_parameter_warning_is_silenced_only_inside():
    net = registry_net("cifar_resnet20_v1_a")
    net.hybridize()
    x = images()
    unit = list(net.features._children.values())[3]._children["0"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with bypass(net, [0]):
            run(net, x)
        unit.bypassed = True  # the same by hand: MXNet does warn
        rebuild_graph(net)
        run(net, x)
        unit.bypassed = False
        rebuild_graph(net)
    unused = [w for w in caught if "not used by any computation" in str(w.message)]
    assert len(unused) == 1
