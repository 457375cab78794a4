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
* it stamps the model with the newest opset the installed onnx knows (23 for onnx 1.18) while
  its translations are written for opsets 12 and 13: ONNX Runtime then reads an equal-parts
  ``Split`` (Res2Net) under opset 18's schema, which needs ``num_outputs``, and refuses the
  model. The model is stamped :data:`OPSET`, the opset its nodes were written for.

Every export ends with an output check: the written model is loaded back (ONNX Runtime's CPU
provider, or ``SymbolBlock.imports``) and run on a random batch next to MXNet's own network, and
a relative mismatch (max |diff| / max |MXNet output|) above :data:`TOLERANCE` fails.

Files are written atomically: to a temporary name in the destination folder, then renamed.
"""
from __future__ import annotations

import json
import os
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
INSTALL_HINT = "pip install -e '.[onnx]'"
# The newest opset MXNet 1.9.1's translations are written for (mx2onnx/_op_translations_opset13).
OPSET = 13
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


def _mxnet_output(net, x) -> np.ndarray:
    mx = require_mxnet()
    with mx.autograd.predict_mode():
        return net(x).asnumpy()


def rel_diff(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max |want|: one number, insensitive to near-zero single logits."""
    return float(np.abs(got - want).max() / max(float(np.abs(want).max()), 1e-12))


def _symbol_files(net, x, folder: Path, name: str) -> tuple[Path, Path]:
    """``net.export`` into ``folder`` (a forward pass first: the graph is built by one)."""
    _mxnet_output(net, x)
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
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = min(opset.version, OPSET)
    weights = {init.name for init in model.graph.initializer}
    kept = [inp for inp in model.graph.input if inp.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(kept)
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
    return rel_diff(_mxnet_output(block, x), want)


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
    want = _mxnet_output(net, x)
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


def check_ort_request(mode: str, dtype: str) -> None:
    """What ``bench speed --compare onnxruntime`` cannot do, in one line, before anything runs:
    ONNX Runtime is timed for inference in float32 only, and the extra must be installed."""
    if mode != "infer":
        raise BenchError("--compare onnxruntime times inference only (ONNX Runtime does not "
                         "train here): drop --mode train")
    if dtype != "float32":
        raise BenchError(f"--compare onnxruntime runs float32 only, not {dtype}")
    require_onnx()


class OrtRunner:
    """ONNX Runtime's side of ``bench speed --compare onnxruntime``: the same interface as the
    speed module's runners (``warm_up``, ``run``, ``results``), on the same input."""

    def __init__(self, net, x, name: str, threads: int | None = None):
        _, ort = require_onnx()
        if x.context.device_type != "cpu":
            raise BenchError("--compare onnxruntime runs on the CPU: drop --gpus")
        model, _ = onnx_bytes(net, x)
        self.threads = threads or default_threads()
        self.session = ort_session(model, self.threads)
        self.feed = {self.session.get_inputs()[0].name: x.asnumpy()}
        self.batch_size = int(x.shape[0])
        self.version = ort.__version__
        self.name = (f"{name} (onnxruntime, {self.threads} thread"
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
