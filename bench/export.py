"""Export a registered network for use outside this suite, and run it in ONNX Runtime.

Two formats:

``symbol``
    MXNet's own ``net.export``: ``PREFIX-symbol.json`` + ``PREFIX-0000.params``, reloadable with
    ``gluon.SymbolBlock.imports`` (no extra package needed).
``onnx``
    ``mx.onnx.export_model`` to one ``.onnx`` file. MXNet 1.9.1's exporter needs
    ``onnx==1.18.0``: onnx 1.19 removed ``onnx.mapping``, after which the exporter says, wrongly,
    "Onnx and protobuf need to be installed". Both onnx and onnxruntime come with the ``onnx``
    extra (``pip install -e '.[onnx]'``).

Three things the exporter gets wrong are corrected here:

* it ignores ``fix_gamma``: a ``BatchNorm(scale=False)`` (the v2 nets' input BN) computes with
  gamma = 1 in MXNet whatever gamma is stored, but the exporter writes the stored gamma. The
  exported parameters get gamma = 1 at exactly those BatchNorms (the net itself is untouched);
* it lists every weight as a graph input too, which stops ONNX Runtime from constant-folding
  them (it warns once per weight); those inputs are dropped from the model;
* it stamps the model with the newest opset the installed onnx knows (23 for onnx 1.18.0),
  although its translations are written for opsets 12 and 13 (it picks, per operator, the
  newest translation up to 13). ONNX Runtime 1.23.2 runs such an fp32 graph, but its CPU
  provider has no ``QuantizeLinear`` kernel for opset 23 (kernels up to 21-22), so a quantized
  model is refused ("Could not find an implementation for QuantizeLinear(23)"), and it reads
  an equal-parts ``Split`` (Res2Net) under opset 18's schema, which needs ``num_outputs``, and
  refuses even the fp32 model. The model is
  stamped :data:`EXPORTER_OPSET`, the opset its nodes are written for;
* it leaves Conv nodes unnamed; every unnamed node is named after its first output (MXNet's
  layer name, e.g. ``resnet50_v1d_conv0_fwd``), so that layers can be named, e.g. kept fp32
  by ONNX Runtime's quantizer.

Every export ends with an output check: the written model is loaded back (ONNX Runtime's CPU
provider, or ``SymbolBlock.imports``) and run on a random batch next to MXNet's own network, and
a relative mismatch (max |diff| / max |MXNet output|) above :data:`TOLERANCE` fails.

Files are written atomically: to a temporary name in the destination folder, then renamed.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench._mxnet import require_mxnet
from bench.errors import BenchError, check_choice
from bench.precision import PRECISIONS

FORMATS = ("onnx", "symbol")
# Relative mismatch (max |exported - mxnet| / max |mxnet|) above which an export fails.
TOLERANCE = 1e-4
ONNX_PIN = "onnx==1.18.0"
# The newest opset MXNet 1.9.1's ONNX translations are written for (mx2onnx/_op_translations_
# opset12.py and _opset13.py); the exporter stamps a newer one (see the module docstring).
EXPORTER_OPSET = 13
INSTALL_HINT = "pip install -e '.[onnx]'"
_TRUE = ("true", "1")


def require_onnx(runtime: bool = True) -> tuple[Any, Any]:
    """``(onnx, onnxruntime)`` (the second None unless ``runtime``), or a one-line
    :class:`BenchError` naming what to install."""
    try:
        import onnx
    except ImportError:
        raise BenchError(f"ONNX export needs the onnx extra: {INSTALL_HINT}") from None
    if not hasattr(onnx, "mapping"):
        raise BenchError(f"onnx {onnx.__version__} lacks onnx.mapping, which MXNet 1.9.1's "
                         f"exporter needs: {INSTALL_HINT} (it pins {ONNX_PIN})")
    if not runtime:
        return onnx, None
    try:
        import onnxruntime
    except ImportError:
        raise BenchError(f"running ONNX models needs onnxruntime: {INSTALL_HINT}") from None
    return onnx, onnxruntime


def _convert(net, dtype: str):
    """The network in ``dtype``, ready to export.

    Only float32 today. bfloat16 / int8 conversion (AMP's ``convert_hybrid_block``,
    ``quantize_net_v2``) plugs in here once the precision work provides it; until then every
    other precision is refused in one line."""
    check_choice("dtype", dtype, PRECISIONS)
    if dtype != "float32":
        raise BenchError(f"--dtype {dtype}: not yet exportable (only float32 for now)")
    return net


@dataclass
class ExportResult:
    network: str
    format: str
    dtype: str
    files: list[str]
    weights: str  # the --params file, or "fresh" (initialised here, untrained)
    input_shape: tuple[int, ...]
    max_rel_diff: float
    checked_with: str
    fixed_gammas: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["input_shape"] = list(self.input_shape)
        out["tolerance"] = TOLERANCE
        return out


def build_net(network: str, params: Path | None, ctx=None):
    """The registered network with ``params`` loaded (through ``bench eval``'s loader, so a
    GluonCV ``.params`` file works too), or freshly initialised weights without ``params``;
    hybridized."""
    mx = require_mxnet()
    from bench.models import get_model, get_spec
    spec = get_spec(network)
    ctx = ctx or mx.cpu()
    if params is None:
        net = get_model(spec.name)
        net.initialize(mx.init.Xavier(magnitude=2), ctx=ctx)
    else:
        from bench.engine.evaluate import load_weights
        classes, in_channels = _shape_of_params(Path(params), spec.classes)
        net = load_weights(spec.name, Path(params), classes, in_channels, [ctx])
    net.hybridize()
    return net


def _shape_of_params(params: Path, default_classes: int) -> tuple[int, int]:
    """Classes and input channels of a weights file this suite saved (a net trained on digits
    has 10 classes and 1 channel, not the registry's defaults), read from its first conv and
    last dense weight; the registry's defaults where the file says nothing clear."""
    mx = require_mxnet()
    if not params.is_file():
        raise BenchError(f"no parameter file {params}")
    try:
        arrays = mx.nd.load(str(params))
    except mx.base.MXNetError:
        raise BenchError(f"--params {params}: not an MXNet parameter file") from None
    shapes = [v.shape for v in arrays.values()] if isinstance(arrays, dict) else []
    convs = [s for s in shapes if len(s) == 4]
    dense = [s for s in shapes if len(s) == 2]
    in_channels = convs[0][1] if convs else 3
    classes = dense[-1][0] if dense else default_classes
    return classes, in_channels


def random_input(net, batch_size: int, input_size: int, seed: int = 0):
    """A random batch shaped for ``net`` (its input channels read from its first conv)."""
    mx = require_mxnet()
    channels = next((p.shape[1] for p in net.collect_params().values()
                     if len(p.shape) == 4 and p.shape[1] > 0), 3)
    rng = np.random.default_rng(seed)
    return mx.nd.array(rng.standard_normal((batch_size, channels, input_size, input_size)),
                       dtype="float32")


def mxnet_output(net, x) -> np.ndarray:
    mx = require_mxnet()
    with mx.autograd.predict_mode():
        return net(x).asnumpy()


def rel_diff(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max |want|: one number, insensitive to near-zero single logits."""
    return float(np.abs(got - want).max() / max(float(np.abs(want).max()), 1e-12))


def _symbol_files(net, x, folder: Path, name: str) -> tuple[Path, Path]:
    """``net.export`` into ``folder`` (a forward pass first: the graph is built by one)."""
    mxnet_output(net, x)
    prefix = folder / name
    net.export(str(prefix), epoch=0)
    return Path(f"{prefix}-symbol.json"), Path(f"{prefix}-0000.params")


def fix_gamma_names(symbol_json: Path) -> list[str]:
    """Gamma inputs of the BatchNorms that compute with gamma = 1 (``fix_gamma``, which is the
    operator's default when the attribute is absent)."""
    graph = json.loads(symbol_json.read_text())
    nodes = graph["nodes"]
    names = []
    for node in nodes:
        if node["op"] != "BatchNorm":
            continue
        attrs = node.get("attrs", node.get("param", {})) or {}
        if str(attrs.get("fix_gamma", "True")).lower() in _TRUE:
            names.append(nodes[node["inputs"][1][0]]["name"])
    return names


def onnx_bytes(net, x, *, fix_gamma: bool = True,
               dynamic_batch: bool = False) -> tuple[bytes, list[str]]:
    """``net`` (hybridized, float32) as a serialized ONNX model for ``x``'s shape (any batch
    size with ``dynamic_batch``), and the gammas set to 1 (see the module docstring).
    ``fix_gamma=False`` is the exporter's raw behaviour, kept for the test that shows why the
    correction exists."""
    mx = require_mxnet()
    onnx, _ = require_onnx(runtime=False)
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        sym_file, params_file = _symbol_files(net, x, Path(tmp), "net")
        params = {key.split(":", 1)[1]: value for key, value in mx.nd.load(str(params_file)).items()}
        fixed = fix_gamma_names(sym_file) if fix_gamma else []
        fixed = [name for name in fixed
                 if name in params and not np.all(params[name].asnumpy() == 1)]
        for name in fixed:
            params[name] = mx.nd.ones_like(params[name])
        out = Path(tmp) / "net.onnx"
        try:
            shape = tuple(x.shape)
            mx.onnx.export_model(mx.sym.load(str(sym_file)), params, [shape], [np.float32],
                                 str(out), dynamic=dynamic_batch,
                                 dynamic_input_shapes=([(None, *shape[1:])] if dynamic_batch
                                                       else None))
        except (AssertionError, AttributeError, NotImplementedError, ValueError,
                mx.base.MXNetError) as exc:
            # An operator the exporter does not know: one line, naming it.
            from bench.errors import summary
            raise BenchError(f"MXNet's ONNX exporter cannot export this network: "
                             f"{summary(exc)}") from None
        model = onnx.load(str(out))
    weights = {init.name for init in model.graph.initializer}
    kept = [inp for inp in model.graph.input if inp.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = min(opset.version, EXPORTER_OPSET)
    for node in model.graph.node:
        if not node.name:
            node.name = node.output[0]
    return model.SerializeToString(), fixed


def ort_session(model: bytes | str, threads: int | None = None):
    """An ONNX Runtime CPU session with ``threads`` intra-op threads (default: as MXNet uses,
    OMP_NUM_THREADS or every core this process may run on), run sequentially."""
    _, ort = require_onnx()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(model, sess_options=options,
                                providers=["CPUExecutionProvider"])


def default_threads() -> int:
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else len(os.sched_getaffinity(0))


def _check_onnx(model: bytes, x, want: np.ndarray) -> float:
    session = ort_session(model)
    got = session.run(None, {session.get_inputs()[0].name: x.asnumpy()})[0]
    return rel_diff(got, want)


def _check_symbol(sym_file: Path, params_file: Path, x, want: np.ndarray) -> float:
    mx = require_mxnet()
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        block = mx.gluon.SymbolBlock.imports(str(sym_file), ["data"], str(params_file))
    return rel_diff(mxnet_output(block, x), want)


def export(network: str, *, fmt: str, out: Path, params: Path | None = None,
           dtype: str = "float32", input_size: int | None = None,
           batch_size: int = 1) -> ExportResult:
    """Export ``network`` to ``out`` (a ``.onnx`` file, or a prefix for the symbol format's two
    files) and check the written model's output against MXNet's; see the module docstring."""
    from bench.models import get_spec
    check_choice("format", fmt, FORMATS)
    spec = get_spec(network)
    _convert(None, dtype)  # refuse a precision before building anything
    if fmt == "onnx":
        require_onnx()
    out = Path(out)
    if fmt == "onnx" and out.suffix.lower() != ".onnx":
        raise BenchError(f"--out {out}: an ONNX file's name must end in .onnx "
                         f"(e.g. {out.with_suffix('.onnx').name})")
    net = _convert(build_net(spec.name, params), dtype)
    size = input_size or spec.input_size
    x = random_input(net, batch_size, size)
    want = mxnet_output(net, x)
    out.parent.mkdir(parents=True, exist_ok=True)
    weights = str(params) if params is not None else "fresh"
    if fmt == "onnx":
        model, fixed = onnx_bytes(net, x, dynamic_batch=True)
        diff = _check_onnx(model, x, want)
        _fail_if_mismatch(diff, spec.name, "onnxruntime")
        from bench.files import atomic_write_bytes
        atomic_write_bytes(out, model)
        return ExportResult(spec.name, fmt, dtype, [str(out)], weights, tuple(x.shape), diff,
                            "onnxruntime", fixed)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.tmp-", dir=out.parent) as tmp:
        sym_file, params_file = _symbol_files(net, x, Path(tmp), out.name)
        diff = _check_symbol(sym_file, params_file, x, want)
        _fail_if_mismatch(diff, spec.name, "SymbolBlock.imports")
        files = []
        for written in (sym_file, params_file):
            target = out.parent / written.name
            os.replace(written, target)  # same folder: atomic
            files.append(str(target))
    return ExportResult(spec.name, fmt, dtype, files, weights, tuple(x.shape), diff,
                        "SymbolBlock.imports")


def _fail_if_mismatch(diff: float, name: str, runner: str) -> None:
    if not diff <= TOLERANCE:  # NaN fails too
        raise BenchError(f"{name}: the exported model's output differs from MXNet's by "
                         f"{diff:.2e} relative ({runner}, limit {TOLERANCE:g}); nothing written")


# ONNX Runtime's precisions in `bench speed --compare onnxruntime`: fp32, or its own static
# int8 quantization of our exported fp32 net (bfloat16: its CPU provider has no bf16 conv).
ORT_PRECISIONS = ("float32", "int8")
# Our --calib-mode names -> onnxruntime.quantization.CalibrationMethod's.
ORT_CALIB_METHODS = {"naive": "MinMax", "entropy": "Entropy"}
# QDQ (QuantizeLinear/DequantizeLinear pairs, fused into QLinearConv etc. by the session) with
# uint8 activations and int8 weights (U8S8): the combination ONNX Runtime's documentation
# recommends on x86-64, and the fastest measured on this project's Xeon (cifar_resnet20_v1
# batch 16, 2 threads: QDQ U8S8 700 img/s, QDQ S8S8 190, QOperator U8S8 800, fp32 520;
# resnet50_v1d: 11, 12, 11 and 7 img/s, a loaded machine). QOperator was as fast but ONNX
# Runtime warns it is the legacy format.
ORT_QUANT_FORMAT = "QDQ"
ORT_ACTIVATION_TYPE, ORT_WEIGHT_TYPE = "QUInt8", "QInt8"


def check_ort_request(mode: str, dtype: str) -> None:
    """What ``bench speed --compare onnxruntime`` cannot do, in one line, before anything runs:
    ONNX Runtime is timed for inference in float32 or int8 only, and the extra must be
    installed."""
    if mode != "infer":
        raise BenchError("--compare onnxruntime times inference only (ONNX Runtime does not "
                         "train here): drop --mode train")
    if dtype not in ORT_PRECISIONS:
        raise BenchError(f"--compare onnxruntime runs float32 or int8, not {dtype} (ONNX "
                         "Runtime's CPU provider has no bf16/fp16 convolution); time "
                         f"{dtype} with --compare float32")
    require_onnx()


class _CalibrationReader:
    """The calibration batches as ``onnxruntime.quantization.CalibrationDataReader`` reads
    them (``get_next`` until None)."""

    def __init__(self, input_name: str, batches: list[np.ndarray]):
        self._feeds = iter([{input_name: b} for b in batches])

    def get_next(self):
        return next(self._feeds, None)

    def rewind(self) -> None:  # pragma: no cover - the quantizer reads the batches once
        raise BenchError("ONNX Runtime's calibration asked for its batches twice")


def quantize_onnx(model: bytes, batches: list[np.ndarray], *, mode: str = "naive",
                  per_channel: bool = False,
                  exclude: list[str] | tuple[str, ...] = ()) -> tuple[bytes, dict]:
    """``model`` (fp32, from :func:`onnx_bytes`) statically quantized to int8 by
    ``onnxruntime.quantization`` on ``batches``; returns the model and what was done (JSON).

    The fp32 model is first pre-processed (``quant_pre_process``: ONNX Runtime's basic graph
    optimizations, which fold BatchNorm into Conv, and shape inference), as its quantizer
    asks; ``exclude`` names nodes kept fp32 (our int8 net's first conv and classifier)."""
    import contextlib
    import logging
    onnx, ort = require_onnx()
    from onnxruntime import quantization as q
    from onnxruntime.quantization.shape_inference import quant_pre_process
    check_choice("calibration mode", mode, tuple(ORT_CALIB_METHODS))
    if not batches:
        raise BenchError("ONNX Runtime's int8 calibration got no batches")
    with tempfile.TemporaryDirectory(prefix="bench-ortq-") as tmp, \
            contextlib.ExitStack() as stack:
        # The quantizer logs "consider pre-processing" and the like at WARNING on the root
        # logger even when it was done; keep them off the user's terminal.
        logging.disable(logging.WARNING)
        stack.callback(logging.disable, logging.NOTSET)
        # Its entropy calibration print()s its progress: keep stdout for our result (JSON).
        stack.enter_context(contextlib.redirect_stdout(sys.stderr))
        fp32, pre, out = (str(Path(tmp) / name) for name in ("fp32.onnx", "pre.onnx", "q.onnx"))
        Path(fp32).write_bytes(model)
        # MXNet's graph has static shapes: no symbolic shape inference needed.
        quant_pre_process(fp32, pre, skip_symbolic_shape=True)
        graph = onnx.load(pre).graph
        names = {node.name for node in graph.node}
        unknown = sorted(set(exclude) - names)
        if unknown:
            raise BenchError(f"ONNX Runtime's int8: no node {', '.join(unknown)} in the exported "
                             "graph to keep fp32")
        try:
            q.quantize_static(
                pre, out, _CalibrationReader(graph.input[0].name, list(batches)),
                quant_format=getattr(q.QuantFormat, ORT_QUANT_FORMAT),
                activation_type=getattr(q.QuantType, ORT_ACTIVATION_TYPE),
                weight_type=getattr(q.QuantType, ORT_WEIGHT_TYPE),
                per_channel=per_channel, nodes_to_exclude=list(exclude),
                calibrate_method=getattr(q.CalibrationMethod, ORT_CALIB_METHODS[mode]))
        except (ValueError, RuntimeError, NotImplementedError) as exc:
            from bench.errors import summary
            raise BenchError(f"ONNX Runtime's quantizer failed: {summary(exc)}") from None
        quantized = Path(out).read_bytes()
    settings = {
        "dtype": "int8", "format": ORT_QUANT_FORMAT,
        "activation_type": ORT_ACTIVATION_TYPE, "weight_type": ORT_WEIGHT_TYPE,
        "calibration_method": ORT_CALIB_METHODS[mode], "calibration_batches": len(batches),
        "per_channel": per_channel, "excluded": list(exclude), "pre_processed": True,
    }
    return quantized, settings


def top1_agreement(got: np.ndarray, want: np.ndarray) -> float:
    """Share of the batch on which both outputs pick the same class."""
    return float(np.mean(got.argmax(axis=1) == want.argmax(axis=1)))


class OrtRunner:
    """ONNX Runtime's side of ``bench speed --compare onnxruntime``: the same interface as the
    speed module's runners (``warm_up``, ``run``, ``results``), on the same input.

    ``net`` is our fp32 net; with ``calib_data`` (a list of fp32 batches) it is run as ONNX
    Runtime's int8 quantization of it (:func:`quantize_onnx`, ``calibration`` as for ours,
    ``exclude`` kept fp32). Either way ``settings`` records what ran, with an output check:
    ONNX Runtime's outputs against MXNet's fp32 net on a separate random batch (relative
    mismatch as :func:`rel_diff`, top-1 agreement)."""

    def __init__(self, net, x, name: str, threads: int | None = None, *,
                 calib_data: list | None = None, calibration=None,
                 exclude: list[str] | tuple[str, ...] = ()):
        onnx, ort = require_onnx()
        if x.context.device_type != "cpu":
            raise BenchError("--compare onnxruntime runs on the CPU: drop --gpus")
        model, _ = onnx_bytes(net, x)
        self.settings: dict[str, Any] = {"dtype": "float32"}
        if calib_data is not None:
            model, self.settings = quantize_onnx(
                model, [b.asnumpy() if hasattr(b, "asnumpy") else np.asarray(b, np.float32)
                        for b in calib_data],
                mode=calibration.mode if calibration else "naive",
                per_channel=bool(calibration) and calibration.granularity == "channel-wise",
                exclude=exclude)
        self.settings["opset"] = next(o.version for o in onnx.load_from_string(model).opset_import
                                      if o.domain in ("", "ai.onnx"))
        self.threads = threads or default_threads()
        self.settings["threads"] = self.threads
        self.session = ort_session(model, self.threads)
        input_name = self.session.get_inputs()[0].name
        self.feed = {input_name: x.asnumpy()}
        self.batch_size = int(x.shape[0])
        self.version = ort.__version__
        probe = random_input(net, self.batch_size, int(x.shape[-1]), seed=1)
        got = self.session.run(None, {input_name: probe.asnumpy()})[0]
        want = mxnet_output(net, probe)
        self.settings["check"] = {"against": "mxnet float32", "input": "random normal",
                                  "batch": self.batch_size,
                                  "max_rel_diff": rel_diff(got, want),
                                  "top1_agreement": top1_agreement(got, want)}
        # The check batch and MXNet fp32's outputs on it, to put another net next to them.
        self.probe, self.reference = probe, want
        precision = "int8, " if calib_data is not None else ""
        self.name = (f"{name} (onnxruntime, {precision}{self.threads} thread"
                     f"{'s' if self.threads != 1 else ''})")
        self.results: list = []

    def step(self) -> None:
        self.session.run(None, self.feed)

    def warm_up(self, iterations: int) -> None:
        for _ in range(max(1, iterations)):
            self.step()

    def run(self, iterations: int):
        from bench.speed import SpeedResult
        start = time.perf_counter()
        for _ in range(iterations):
            self.step()  # synchronous: the outputs are in host memory when it returns
        return SpeedResult(iterations, self.batch_size, time.perf_counter() - start)
