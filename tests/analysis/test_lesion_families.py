"""Lesion analysis beyond the ResNets: Res2Net's units are deleted like ResidualUnit's; the
families without a single residual branch (DPN, FractalNet, Merge-and-Run) are refused with
their reason."""
from __future__ import annotations

import numpy as np
import pytest

from bench.analysis import bypass, units
from bench.errors import BenchError
from bench.models.registry import get_model

from .conftest import images, mx, randomize_bn, registry_net, run

SMALLEST_RES2NET = "res2net50_14w_8s"  # 23.1 M parameters at 3 classes, the fewest registered
X = images(n=2, size=32, seed=7)  # conv7 stem and three strided stages: 32 -> 1x1 at stage 4


@pytest.fixture(scope="module")
def res2net():
    net = registry_net(SMALLEST_RES2NET, classes=3)
    randomize_bn(net)
    net.hybridize()
    return net


def test_res2net_units_are_its_bottlenecks_in_depth_order(res2net):
    found = units(res2net)
    assert [(u.stage, u.position) for u in found] == [
        (s, p) for s, n in zip((1, 2, 3, 4), (3, 4, 6, 3)) for p in range(1, n + 1)]
    assert [u.index for u in found if u.downsampling] == [0, 3, 7, 13]
    assert all(u.removable for u in found)


def _last_bn(net, index: int):
    """The BN closing unit ``index``'s branch (the hierarchical bottleneck's expand 1x1),
    found by walking the net's stages, not through the lesion code."""
    stages = [s for s in net.features._children.values() if s.name.startswith(net.prefix + "stage")]
    unit = [u for s in stages for u in s._children.values()][index]
    return list(unit.body.expand._children.values())[-1]


@pytest.mark.parametrize("index", [1, 7, 14], ids=["identity", "projection", "stage4"])
def test_a_deleted_res2net_unit_is_the_net_whose_branch_outputs_zero(res2net, index):
    """Oracle independent of the bypass code: the unit's last BN with gamma = beta = 0 makes
    its branch exactly 0, so the unit outputs ReLU(shortcut), what deleting it must give."""
    intact = run(res2net, X)
    with bypass(res2net, []):
        np.testing.assert_array_equal(run(res2net, X), intact)
    with bypass(res2net, [index]):
        deleted = run(res2net, X)
    assert not np.allclose(deleted, intact, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(run(res2net, X), intact, rtol=1e-6, atol=1e-7)  # restored
    bn = _last_bn(res2net, index)
    saved = bn.gamma.data().copy(), bn.beta.data().copy()
    try:
        bn.gamma.set_data(mx.nd.zeros_like(saved[0]))
        bn.beta.set_data(mx.nd.zeros_like(saved[1]))
        np.testing.assert_allclose(deleted, run(res2net, X), rtol=1e-5, atol=1e-6)
    finally:
        bn.gamma.set_data(saved[0])
        bn.beta.set_data(saved[1])


@pytest.mark.parametrize("name, arch, why", [
    ("dpn68", "dpn", "extends the dense path"),
    ("cifar_fractalnet20", "fractalnet", "--set network_args.eval_columns=deepest"),
    ("cifar_dfn_mr1", "merge_and_run", "two branches are coupled"),
])
def test_families_without_residual_units_are_refused_with_the_reason(name, arch, why):
    net = get_model(name)  # not initialised: the refusal comes before any parameter is read
    with pytest.raises(BenchError) as err:
        units(net)
    message = str(err.value)
    assert "\n" not in message and why in message
    assert message.startswith(f"lesion analysis deletes residual units (Veit et al. 2016), "
                              f"and {arch} has none: ")
    assert message.endswith("; use a resnet, wide resnet, resnext or res2net network")
    with pytest.raises(BenchError, match=f"{arch} has none"):
        with bypass(net, [0]):
            pass
