"""`bench eval --record`: a re-evaluation of published (GluonCV-format) weights becomes a row."""
from __future__ import annotations

import pytest

from bench.results.records import load_records
from tests.cli import invoke
from tests.data.helpers import write_cifar


@pytest.fixture
def gluoncv_params(tmp_path):
    import mxnet as mx
    from bench.models.gluoncv_import import build_gluoncv
    net = build_gluoncv("cifar_resnet20_v1")
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 32, 32)))
    path = tmp_path / "cifar_resnet20_v1-gluoncv.params"
    net.save_parameters(str(path))
    return path


def test_eval_record_writes_a_weights_protocol_row(tmp_path, gluoncv_params):
    write_cifar(tmp_path / "cifar", "cifar10", "bin", per_batch=3, test=7)
    results = tmp_path / "results"
    args = ["eval", "cifar_resnet20_v1", "--params", str(gluoncv_params), "--dataset", "cifar10",
            "--data-dir", str(tmp_path / "cifar"), "--loader-workers", "0", "--results-dir", str(results)]
    result = invoke(*args, "--record", "gluoncv_cifar_resnet20_v1")
    assert result.exit_code == 0, result.stderr
    (record,) = load_records(results)
    assert record.protocol == "full (published weights)" and record.seed is None
    assert record.num_eval_samples == 7 and record.params_file == gluoncv_params.name
    assert record.recipe == "gluoncv_cifar_resnet20_v1" and record.kind == "weights"


def test_eval_record_refuses_a_recipe_for_other_weights(tmp_path, gluoncv_params):
    result = invoke("eval", "cifar_resnet20_v1", "--params", str(gluoncv_params), "--dataset",
                    "cifar10", "--record", "he2015_cifar10_resnet20",
                    "--results-dir", str(tmp_path / "results"))
    assert result.exit_code == 2 and "trains cifar_resnet20_v1_a on cifar10" in result.stderr
    assert not (tmp_path / "results").exists()
