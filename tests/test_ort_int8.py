"""`bench speed --dtype int8 --compare onnxruntime`: ONNX Runtime's own int8 of our fp32 net.

The oracle is MXNet's fp32 network with the same weights. int8 differs from it by design, so
the bound is a stated tolerance, not an equality: measured on cifar_resnet20_v1 with random
weights and BatchNorm statistics (three seeds, 2 calibration batches of 4, batch-4 probes):
max |ORT int8 - MXNet fp32| / max |MXNet fp32| = 0.007-0.017 over MinMax / Entropy and
per-tensor / per-channel, top-1 agreement 1.0. :data:`INT8_TOLERANCE` leaves about 3x margin."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from bench.cli import cli
from tests.cli import assert_one_line_error, runner

mx = pytest.importorskip("mxnet")
pytestmark = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime")),
    reason="the onnx extra is not installed (pip install -e '.[onnx]')")

INT8_TOLERANCE = 0.05
NET = "cifar_resnet20_v1"
EXCLUDE = ["cifar_resnet20_v1_conv0_fwd", "cifar_resnet20_v1_dense0_fwd"]


def run(*args: str):
    return runner().invoke(cli, list(args), catch_exceptions=False)


def _net_with_statistics(seed: int):
    """The net with random weights and random BatchNorm statistics (not the identity BN of a
    fresh net, which would hide the BN folding of ONNX Runtime's pre-processing)."""
    from bench.models import get_model
    net = get_model(NET)
    net.initialize(mx.init.Xavier(magnitude=2))
    net.hybridize()
    rng = np.random.default_rng(seed)
    for name, p in net.collect_params().items():
        if name.endswith(("running_mean", "beta")):
            p.set_data(mx.nd.array(rng.normal(0, 0.1, p.shape)))
        elif name.endswith(("running_var", "gamma")):
            p.set_data(mx.nd.array(rng.uniform(0.5, 1.5, p.shape)))
    return net, rng


@pytest.mark.parametrize("mode,per_channel", [("naive", False), ("entropy", True)])
def test_quantized_model_agrees_with_mxnet_fp32(mode, per_channel, capsys):
    import onnx
    from bench.export import ort_session, onnx_bytes, quantize_onnx
    net, rng = _net_with_statistics(seed=2)
    shape = (4, 3, 32, 32)
    model, _ = onnx_bytes(net, mx.nd.array(rng.standard_normal(shape)))
    calib = [rng.standard_normal(shape).astype(np.float32) for _ in range(2)]
    quantized, settings = quantize_onnx(model, calib, mode=mode, per_channel=per_channel,
                                        exclude=EXCLUDE)
    # Entropy calibration print()s its progress; stdout is kept for `-f json`.
    assert capsys.readouterr().out == ""
    graph = onnx.load_from_string(quantized).graph
    ops = [n.op_type for n in graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    # The excluded layers are still there as fp32 nodes, fed by dequantized tensors.
    kept = {n.name: n.op_type for n in graph.node if n.name in EXCLUDE}
    assert kept == {EXCLUDE[0]: "Conv", EXCLUDE[1]: "Gemm"}
    assert settings["calibration_method"] == {"naive": "MinMax", "entropy": "Entropy"}[mode]
    session = ort_session(quantized, threads=1)
    x = mx.nd.array(rng.standard_normal(shape))
    got = session.run(None, {session.get_inputs()[0].name: x.asnumpy()})[0]
    with mx.autograd.predict_mode():
        want = net(x).asnumpy()
    rel = float(np.abs(got - want).max() / np.abs(want).max())
    assert 0 < rel <= INT8_TOLERANCE  # 0 would mean nothing was quantized


def test_exported_model_runs_quantize_linear():
    """The cause of the old refusal: MXNet's exporter stamped opset 23, for which ONNX Runtime
    1.23.2 has no QuantizeLinear kernel; the export now says 13 and names every node."""
    import onnx
    from bench.export import EXPORTER_OPSET, onnx_bytes
    net, rng = _net_with_statistics(seed=1)
    model = onnx.load_from_string(onnx_bytes(net, mx.nd.array(rng.standard_normal((1, 3, 32, 32))))[0])
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [EXPORTER_OPSET]
    assert all(n.name for n in model.graph.node)


def test_speed_int8_against_onnxruntime_int8():
    result = run("speed", NET, "--dtype", "int8", "--compare", "onnxruntime", "--calib-batches",
                 "2", "--granularity", "channel-wise",
                 "--iterations", "1", "--rounds", "1", "--warmup", "1", "-b", "4", "-f", "json")
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    ort = out["onnxruntime_run"]
    assert out["dtype"] == "int8" and ort["dtype"] == "int8" and ort["format"] == "QDQ"
    assert ort["calibration_method"] == "MinMax" and ort["calibration_batches"] == 2
    assert ort["per_channel"] is True and ort["opset"] == 13 and ort["threads"] >= 1
    assert ort["excluded"] == out["calibration"]["excluded"] == EXCLUDE  # kept fp32 like ours
    check = ort["check"]
    assert 0 < check["max_rel_diff"] <= INT8_TOLERANCE and 0 <= check["top1_agreement"] <= 1
    assert 0 < check["ours_max_rel_diff"] < 1
    assert "int8" in out["theirs"]["name"] and out["ratio"] > 0


def test_speed_float32_records_what_onnxruntime_ran():
    result = run("speed", NET, "--compare", "onnxruntime", "--iterations", "1", "--rounds", "1",
                 "--warmup", "1", "-b", "4", "-f", "json")
    assert result.exit_code == 0, result.stderr
    ort = json.loads(result.stdout)["onnxruntime_run"]
    assert ort["dtype"] == "float32" and ort["check"]["max_rel_diff"] <= 1e-4


def test_bfloat16_against_onnxruntime_is_refused():
    assert_one_line_error(run("speed", NET, "--dtype", "bfloat16", "--compare", "onnxruntime"),
                          "float32 or int8", quiet=True)
