"""`bench export` and `bench speed --compare onnxruntime`.

The oracle for every export is MXNet's own network with the same weights: the test reloads the
written files itself (ONNX Runtime, or ``SymbolBlock.imports``) and compares outputs on a batch
of its own. Measured (this CPU, fresh or saved weights): ONNX within about 3e-7 relative of
MXNet for cifar_resnet20_v1 / v2, the symbol format exactly equal."""
from __future__ import annotations

import importlib.util
import json
import sys
import types
import warnings

import numpy as np
import pytest

from bench.cli import cli
from tests.cli import assert_one_line_error, runner

mx = pytest.importorskip("mxnet")

HAVE_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason="the onnx extra is not installed "
                                "(pip install -e '.[onnx]')")
TOLERANCE = 1e-4


def run(*args: str):
    return runner().invoke(cli, list(args), catch_exceptions=False)


def _saved_net(tmp_path, name: str, input_gamma: float | None = None):
    """A registered net with random weights (BN statistics too), saved to a .params file."""
    from bench.models import get_model
    net = get_model(name)
    net.initialize(mx.init.Xavier(magnitude=2))
    net.hybridize()
    rng = np.random.default_rng(1)
    for pname, p in net.collect_params().items():
        if pname.endswith(("running_mean", "beta")):
            p.set_data(mx.nd.array(rng.normal(0, 0.1, p.shape)))
        elif pname.endswith(("running_var", "gamma")):
            p.set_data(mx.nd.array(rng.uniform(0.5, 1.5, p.shape)))
    if input_gamma is not None:  # the v2 nets' input BatchNorm(scale=False): fix_gamma
        bn = net.features[0]
        assert isinstance(bn, mx.gluon.nn.BatchNorm) and bn._kwargs["fix_gamma"]
        bn.gamma.set_data(mx.nd.full(bn.gamma.shape, input_gamma))
    path = tmp_path / f"{name}.params"
    net.save_parameters(str(path))
    return net, path


def _reference(net, batch: int = 3):
    x = mx.nd.array(np.random.default_rng(7).standard_normal((batch, 3, 32, 32)))
    with mx.autograd.predict_mode():
        return x, net(x).asnumpy()


def _rel(got, want) -> float:
    return float(np.abs(got - want).max() / np.abs(want).max())


def _export_json(*args: str) -> dict:
    result = run("export", *args, "-f", "json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


@needs_onnx
@pytest.mark.parametrize("name, gamma", [("cifar_resnet20_v1", None),
                                         ("cifar_resnet20_v2", 2.5)])
def test_onnx_export_matches_mxnet(tmp_path, name, gamma):
    import onnxruntime as ort
    net, params = _saved_net(tmp_path, name, input_gamma=gamma)
    out = tmp_path / "net.onnx"
    report = _export_json(name, "--params", str(params), "--format", "onnx", "--out", str(out),
                          "--batch-size", "3")
    assert report["files"] == [str(out)] and report["weights"] == str(params)
    assert report["max_rel_diff"] <= TOLERANCE
    assert len(report["fixed_gammas"]) == (1 if gamma else 0)
    for batch in (1, 5):  # not the check's 3: the ONNX graph takes any batch size
        x, want = _reference(net, batch)
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: x.asnumpy()})[0]
        assert _rel(got, want) <= TOLERANCE  # measured about 3e-7
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left beside it


@needs_onnx
def test_res2net_exports_to_onnx(tmp_path):
    """Res2Net's channel fold (reshape_like, not reshape's -3) and its equal-parts Split, read
    under the opset the exporter's translations were written for (bench.export.EXPORTER_OPSET), not the
    newest one onnx knows, under which ONNX Runtime refuses the Split."""
    import onnx
    from bench.export import EXPORTER_OPSET
    net, params = _saved_net(tmp_path, "res2net50_14w_8s")
    out = tmp_path / "net.onnx"
    report = _export_json("res2net50_14w_8s", "--params", str(params), "--format", "onnx",
                          "--out", str(out), "--input-size", "32", "--batch-size", "2")
    assert report["max_rel_diff"] <= TOLERANCE  # measured 6e-7
    opsets = {o.domain or "ai.onnx": o.version for o in onnx.load(str(out)).opset_import}
    assert opsets["ai.onnx"] == EXPORTER_OPSET == 13
    x, want = _reference(net, 2)
    import onnxruntime as ort
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert _rel(session.run(None, {session.get_inputs()[0].name: x.asnumpy()})[0],
                want) <= TOLERANCE


@needs_onnx
def test_raw_exporter_gets_fix_gamma_wrong(tmp_path):
    """Why the correction exists: the exporter writes the stored gamma where MXNet uses 1."""
    import onnxruntime as ort
    from bench.export import onnx_bytes
    net, _ = _saved_net(tmp_path, "cifar_resnet20_v2", input_gamma=2.5)
    x, want = _reference(net)
    model, fixed = onnx_bytes(net, x, fix_gamma=False)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.asnumpy()})[0]
    assert fixed == [] and _rel(got, want) > 1e-2


def test_symbol_export_matches_mxnet(tmp_path):
    net, params = _saved_net(tmp_path, "cifar_resnet20_v2", input_gamma=2.5)
    report = _export_json("cifar_resnet20_v2", "--params", str(params), "--format", "symbol",
                          "--out", str(tmp_path / "exported"))
    sym, weights = (tmp_path / "exported-symbol.json", tmp_path / "exported-0000.params")
    assert report["files"] == [str(sym), str(weights)] and report["max_rel_diff"] <= TOLERANCE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        block = mx.gluon.SymbolBlock.imports(str(sym), ["data"], str(weights))
    x, want = _reference(net)
    with mx.autograd.predict_mode():
        assert _rel(block(x).asnumpy(), want) <= TOLERANCE  # measured 0: the same graph
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cifar_resnet20_v2.params", "exported-0000.params", "exported-symbol.json"]


def test_fresh_weights_are_said(tmp_path):
    result = run("export", "cifar_resnet20_v1", "--format", "symbol", "--out",
                 str(tmp_path / "m"))
    assert result.exit_code == 0, result.stderr
    assert "freshly initialised" in result.stdout and "max relative difference" in result.stdout


@pytest.mark.parametrize("args, needles", [
    (("cifar_resnet20_v2x", "--format", "symbol"), ("did you mean", "cifar_resnet20_v2")),
    (("cifar_resnet20_v1", "--format", "tflite"), ("--format", "tflite")),
    (("cifar_resnet20_v1", "--format", "symbol", "--dtype", "int8"), ("not yet exportable",)),
    (("cifar_resnet20_v1", "--format", "symbol", "--params", "/nonexistent.params"),
     ("--params", "does not exist")),
])
def test_bad_requests_fail_in_one_line(tmp_path, args, needles):
    assert_one_line_error(run("export", *args, "--out", str(tmp_path / "m")), *needles)
    assert list(tmp_path.iterdir()) == []


@needs_onnx
def test_onnx_out_must_end_in_onnx(tmp_path):
    assert_one_line_error(run("export", "cifar_resnet20_v1", "--format", "onnx", "--out",
                              str(tmp_path / "m.json")), ".onnx")


@pytest.mark.parametrize("module", [None, types.ModuleType("onnx")],
                         ids=["missing", "onnx-1.19-without-mapping"])
def test_missing_extra_says_what_to_install(tmp_path, monkeypatch, module):
    monkeypatch.setitem(sys.modules, "onnx", module)  # None: `import onnx` raises ImportError
    if module is not None:
        module.__version__ = "1.19.0"
    for args in (("export", "cifar_resnet20_v1", "--format", "onnx", "--out",
                  str(tmp_path / "m.onnx")),
                 ("speed", "cifar_resnet20_v1", "--compare", "onnxruntime")):
        assert_one_line_error(run(*args), "pip install -e '.[onnx]'", quiet=True)


@needs_onnx
def test_speed_compare_onnxruntime():
    result = run("speed", "cifar_resnet20_v1", "--compare", "onnxruntime", "--iterations", "1",
                 "--rounds", "1", "--warmup", "1", "-b", "4", "-f", "json")
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["compare"] == "onnxruntime" and out["onnxruntime"] and out["gluoncv"] is None
    assert "onnxruntime" in out["theirs"]["name"] and len(out["theirs"]["rounds"]) == 1
    assert out["ratio"] > 0  # its value is a benchmark's business, not a test's


def test_speed_compare_onnxruntime_refuses_training():
    assert_one_line_error(run("speed", "cifar_resnet20_v1", "--compare", "onnxruntime",
                              "--mode", "train"), "inference only", quiet=True)


@needs_onnx
def test_params_of_a_one_channel_ten_class_net(tmp_path):
    """Weights trained on digits (1 channel, 10 classes): the shapes are read from the file."""
    import onnxruntime as ort
    from bench.models import get_model
    net = get_model("cifar_resnet20_v1", classes=10, in_channels=1)
    net.initialize(mx.init.Xavier(magnitude=2))
    net.hybridize()
    params = tmp_path / "digits.params"
    net.save_parameters(str(params))
    out = tmp_path / "digits.onnx"
    report = _export_json("cifar_resnet20_v1", "--params", str(params), "--format", "onnx",
                          "--out", str(out), "--input-size", "8", "--batch-size", "2")
    assert report["input_shape"] == [2, 1, 8, 8]
    x = mx.nd.array(np.random.default_rng(3).standard_normal((2, 1, 8, 8)))
    with mx.autograd.predict_mode():
        want = net(x).asnumpy()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.asnumpy()})[0]
    assert got.shape == (2, 10) and _rel(got, want) <= TOLERANCE
