"""After from_gluoncv, our nets compute exactly what GluonCV's compute."""
from __future__ import annotations

import numpy as np
import pytest

from bench.errors import BenchError
from bench.models import get_model, get_spec, list_models

from .conftest import small_input_size

GLUONCV = [n for n in list_models() if get_spec(n).gluoncv]
# One of each layout: v1 (biased 1x1s), v1b, v1d, v1e, v2, ResNeXt, each CIFAR family.
REPRESENTATIVE = ["resnet18_v1", "resnet50_v1", "resnet50_v1b", "resnet50_v1d", "resnet50_v1e",
                  "resnet34_v2", "resnet50_v2", "resnext50_32x4d", "cifar_resnet20_v1",
                  "cifar_resnet20_v2", "cifar_wideresnet16_10", "cifar_resnext29_32x4d"]
REST = [n for n in GLUONCV if n not in REPRESENTATIVE]


def _randomized_gluoncv(name, mx):
    """GluonCV's net with random weights and random BN statistics, so BN is not an identity."""
    from bench.models.gluoncv_import import build_gluoncv
    net = build_gluoncv(name)
    net.initialize(mx.init.Xavier())
    size = small_input_size(name)
    net(mx.nd.zeros((1, 3, size, size)))  # finish deferred shapes
    for pname, param in net.collect_params().items():
        if pname.endswith(("gamma", "running_var")):
            param.set_data(mx.nd.random.uniform(0.5, 1.5, shape=param.shape))
        elif pname.endswith(("beta", "running_mean")):
            param.set_data(mx.nd.random.uniform(-0.2, 0.2, shape=param.shape))
    return net


def _check_equal_outputs(name, mx):
    from bench.models.gluoncv_import import from_gluoncv
    theirs = _randomized_gluoncv(name, mx)
    ours = from_gluoncv(theirs, ours=get_model(name))
    size = min(get_spec(name).input_size, 64)  # 64 exercises every stage and keeps this fast
    x = mx.nd.random.normal(shape=(2, 3, size, size))
    expected = theirs(x).asnumpy()
    scale = np.abs(expected).max()
    assert np.abs(ours(x).asnumpy() - expected).max() <= 1e-5 * scale
    ours.hybridize(static_alloc=True)
    theirs.hybridize()
    assert np.abs(ours(x).asnumpy() - theirs(x).asnumpy()).max() <= 1e-5 * scale


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_outputs_equal_gluoncv(name, mx):
    _check_equal_outputs(name, mx)


@pytest.mark.slow
@pytest.mark.parametrize("name", REST)
def test_outputs_equal_gluoncv_all(name, mx):
    _check_equal_outputs(name, mx)


def test_from_gluoncv_params_file(mx, tmp_path):
    from bench.models.gluoncv_import import from_gluoncv
    theirs = _randomized_gluoncv("cifar_resnet20_v1", mx)
    path = tmp_path / "cifar_resnet20_v1.params"
    theirs.save_parameters(str(path))
    ours = from_gluoncv("cifar_resnet20_v1", path)
    x = mx.nd.random.normal(shape=(3, 3, 32, 32))
    np.testing.assert_allclose(ours(x).asnumpy(), theirs(x).asnumpy(), rtol=1e-5, atol=1e-6)


def test_from_gluoncv_keeps_a_params_files_class_count(mx, tmp_path):
    from bench.models.gluoncv_import import build_gluoncv, from_gluoncv
    theirs = build_gluoncv("cifar_resnet20_v1", classes=100)
    theirs.initialize()
    theirs(mx.nd.zeros((1, 3, 32, 32)))  # GluonCV defers shapes until the first forward
    path = tmp_path / "c100.params"
    theirs.save_parameters(str(path))
    assert from_gluoncv("cifar_resnet20_v1", path)(mx.nd.zeros((1, 3, 32, 32))).shape == (1, 100)


def test_truncated_params_file_is_a_one_line_error(mx, tmp_path):
    from bench.models.gluoncv_import import from_gluoncv
    theirs = _randomized_gluoncv("cifar_resnet20_v1", mx)
    path = tmp_path / "broken.params"
    theirs.save_parameters(str(path))
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(BenchError, match="broken.params") as err:
        from_gluoncv("cifar_resnet20_v1", path)
    assert "\n" not in str(err.value)


def test_structure_mismatch_is_reported(mx):
    from bench.models.gluoncv_import import from_gluoncv
    theirs = _randomized_gluoncv("cifar_resnet20_v1", mx)
    with pytest.raises(BenchError, match="cannot copy weights"):
        from_gluoncv(theirs, ours=get_model("cifar_resnet56_v1"))


def test_name_without_gluoncv_counterpart_is_refused():
    from bench.models.gluoncv_import import from_gluoncv
    with pytest.raises(BenchError, match="did you mean"):
        from_gluoncv("cifar_resnet20_v1_a")
