"""A trained Gluon network converted for CPU inference in one precision, with MXNet 1.9.1's
own oneDNN paths, and saved / reloaded as symbol + params.

Every conversion starts from a *frozen* copy of the network: the HybridBlock is exported to
a symbol and its parameters and re-imported as a ``SymbolBlock``. That one step makes the
three paths work for any network of the suite: a stochastic-depth ResNet keeps its ancestors
imperative (``ResNet.hybridize``), so it has no cached graph for AMP to convert, but its
``export`` writes the test-time graph; and ``optimize_for`` calls ``hybridize`` with
positional arguments that our blocks' ``hybridize(active, **kwargs)`` does not take. The
original network's parameters are not shared with the result (it is left hybridized).

``float32``
    the frozen graph, optionally fused by oneDNN (``optimize_for(backend="MKLDNN")``: conv +
    BN + ReLU + residual sum into one ``_sg_mkldnn_conv``). MXNet 1.9.1 registers the backend
    as ``MKLDNN``; ``ONEDNN`` is accepted without error and does nothing, so the fusion is
    checked in the resulting graph rather than trusted.
``bfloat16``
    ``mxnet.contrib.amp.convert_hybrid_block(target_dtype="bfloat16")``: casts are inserted
    around the ops oneDNN runs in bf16 (convolutions, FC, ...); BN statistics, softmax and the
    input stay fp32. The output is fp32.
``int8``
    post-training quantization, ``mxnet.contrib.quantization.quantize_net_v2``: a fp32 pass
    over the calibration batches records each layer's output range (``naive``: min/max;
    ``entropy``: the threshold minimizing the KL divergence of the quantized histogram), then
    the graph is rewritten with fused int8/uint8 oneDNN convolutions. By default the first
    convolution and the classifier stay fp32 (:func:`default_exclusions` says why).
    ``quantize_granularity`` reaches MXNet 1.9.1's oneDNN fully-connected layer only (its fused
    convolutions scale weights per output channel either way), so with the default exclusions
    tensor-wise and channel-wise give the same ResNet (measured: identical outputs).

The caller passes calibration data (any iterable of NDArray batches, or of ``(data, label)``
pairs): ``bench speed`` uses synthetic batches (the speed of int8 kernels does not depend on the
values), ``bench eval`` will pass batches of the evaluation or training split.
"""
from __future__ import annotations

import json
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from bench._mxnet import require_mxnet
from bench.errors import BenchError, check_choice
from bench.precision import require

# Calibration modes of int8 quantization (``none`` - ranges computed at run time - is left
# out: MXNet's documentation says it is 10-20% slower, and it would hide the calibration cost).
CALIB_MODES = ("naive", "entropy")
# Scale granularity of int8 weights: one scale per tensor or one per output channel.
GRANULARITIES = ("tensor-wise", "channel-wise")
# The name MXNet 1.9.1 registers its oneDNN fp32 fusion pass under.
FUSION_BACKEND = "MKLDNN"
# Precisions this module converts to (float16 is a GPU cast, done by the caller).
CPU_PRECISIONS = ("float32", "bfloat16", "int8")


@dataclass(frozen=True)
class Calibration:
    """How an int8 net is calibrated and which layers stay fp32.

    ``exclude=None`` keeps the default (:func:`default_exclusions`); ``()`` quantizes every
    layer; otherwise the listed node names of the exported graph stay fp32."""

    mode: str = "naive"
    batches: int = 10
    granularity: str = "tensor-wise"
    exclude: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        check_choice("calibration mode", self.mode, CALIB_MODES)
        check_choice("quantization granularity", self.granularity, GRANULARITIES)
        if self.batches < 1:
            raise BenchError(f"calibration batches must be at least 1, not {self.batches}")


@dataclass
class Converted:
    """A converted network and what was done to it (for reports)."""

    net: object  # a hybridized mx.gluon.SymbolBlock, fp32 input, fp32 output
    dtype: str
    fused: bool
    calibration: Calibration | None = None
    excluded: list[str] = field(default_factory=list)
    calib_examples: int = 0

    def describe(self) -> dict:
        """JSON-ready settings (``calibration`` is None unless int8)."""
        calib = None
        if self.calibration is not None:
            calib = {"mode": self.calibration.mode, "batches": self.calibration.batches,
                     "examples": self.calib_examples,
                     "granularity": self.calibration.granularity, "excluded": self.excluded}
        return {"dtype": self.dtype, "fused": self.fused, "calibration": calib}


def freeze(net, example, ctx=None):
    """``net`` exported and re-imported as a ``SymbolBlock`` on ``ctx`` (see the module
    docstring for why every conversion starts here). ``example`` is one input batch."""
    mx = require_mxnet()
    ctx = ctx or mx.cpu()
    net.hybridize()
    with mx.autograd.predict_mode():
        net(example.as_in_context(ctx))
    with tempfile.TemporaryDirectory() as tmp:
        prefix = str(Path(tmp) / "net")
        net.export(prefix)
        return load(prefix, ctx=ctx, hybridize=False)


def graph_nodes(net) -> list[dict]:
    """The nodes (op, name, ...) of a SymbolBlock's current graph, in topological order."""
    if not net._cached_graph:
        raise BenchError("the network has no graph yet; freeze it first")
    return json.loads(net._cached_graph[1].tojson())["nodes"]


def default_exclusions(net) -> list[str]:
    """The names of the first convolution and the last fully-connected layer of a frozen net.

    Why these two stay fp32: the first convolution sees raw pixels with 1-3 input channels,
    where VNNI's 4-wide int8 dot products have almost nothing to accumulate (no speed to gain)
    while quantizing the input image costs accuracy; and the classifier's logits decide top-1
    directly, so their rounding turns close calls into different predictions. Both are a small
    share of the FLOPs of a ResNet. Found by op type in the graph, so any network works."""
    nodes = [n for n in graph_nodes(net) if n["op"] != "null"]
    convs = [n["name"] for n in nodes if n["op"] == "Convolution"]
    fcs = [n["name"] for n in nodes if n["op"] == "FullyConnected"]
    return ([convs[0]] if convs else []) + ([fcs[-1]] if fcs else [])


def convert(net, dtype: str, example, *, fuse: bool = False,
            calib_data: Iterable | None = None, calibration: Calibration | None = None,
            ctx=None) -> Converted:
    """``net`` (initialized or loaded, fp32) converted for inference in ``dtype`` on the CPU.

    ``example`` is an input batch of the shape inference will use (graphs are built for it).
    int8 needs ``calib_data``: an iterable of batches (NDArray, or ``(data, label)``), of which
    the first ``calibration.batches`` are used."""
    mx = require_mxnet()
    check_choice("dtype", dtype, CPU_PRECISIONS)
    require(dtype, on_gpu=False)
    if fuse and dtype != "float32":
        # int8's conversion fuses by itself; bf16 followed by fusion was measured slower than
        # bf16 alone (issue 13: 1.57x against 2.07x fp32 on ResNet-50-D), so it is not offered.
        raise BenchError(f"--fuse is the fp32 oneDNN fusion, for float32 only, not {dtype}")
    ctx = ctx or mx.cpu()
    example = example.astype("float32", copy=False).as_in_context(ctx)
    frozen = freeze(net, example, ctx)
    if dtype == "float32":
        if fuse:
            frozen.optimize_for(example, backend=FUSION_BACKEND, static_alloc=True,
                                static_shape=True)
            ops = {n["op"] for n in graph_nodes(frozen)}
            if not any(op.startswith("_sg_mkldnn") for op in ops):
                raise BenchError(f"oneDNN fusion ({FUSION_BACKEND}) fused nothing: this MXNet "
                                 "build may lack oneDNN; run without --fuse")
        else:
            frozen.hybridize(static_alloc=True, static_shape=True)
        return Converted(frozen, dtype, fuse)
    if dtype == "bfloat16":
        from mxnet.contrib import amp
        from mxnet.contrib.amp.lists import symbol_bf16
        frozen.hybridize()
        with mx.autograd.predict_mode():
            frozen(example)
        # AMP lists zeros_like as fp32 but Concat as "either, uniform": the option-A shortcut
        # (bench.models.resnet.ZeroPadShortcut) concatenates bf16 activations with fp32 zeros
        # and MXNet refuses the graph. Left unlisted, zeros_like takes its input's dtype.
        fp32_ops = [op for op in symbol_bf16.FP32_FUNCS if op != "zeros_like"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Cannot decide type for ... data"
            converted = amp.convert_hybrid_block(frozen, target_dtype="bfloat16",
                                                 fp32_ops=fp32_ops, ctx=ctx)
        converted.hybridize(static_alloc=True, static_shape=True)
        return Converted(converted, dtype, False)
    return _quantize(frozen, example, calib_data, calibration or Calibration(), ctx)


def _quantize(frozen, example, calib_data, calibration: Calibration, ctx) -> Converted:
    mx = require_mxnet()
    from mxnet.contrib import quantization
    if calib_data is None:
        raise BenchError("int8 needs calibration data (batches of input images)")
    batches = []
    for batch in calib_data:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        if not isinstance(x, mx.nd.NDArray):
            x = mx.nd.array(x)
        batches.append((x.astype("float32", copy=False).as_in_context(ctx),))
        if len(batches) == calibration.batches:
            break
    if not batches:
        raise BenchError("int8 calibration got no batches")
    frozen.hybridize()
    with mx.autograd.predict_mode():
        frozen(example)
    excluded = (default_exclusions(frozen) if calibration.exclude is None
                else list(calibration.exclude))
    unknown = sorted(set(excluded) - {n["name"] for n in graph_nodes(frozen)})
    if unknown:
        raise BenchError(f"cannot exclude {', '.join(unknown)} from quantization: no such "
                         "layer in the graph")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # quantize_net_v2 reads the list it is given and appends to it: pass a copy.
        qnet = quantization.quantize_net_v2(
            frozen, quantized_dtype="auto", quantize_mode="full",
            quantize_granularity=calibration.granularity, exclude_layers=list(excluded),
            calib_data=batches, calib_mode=calibration.mode, ctx=ctx)
    qnet.hybridize(static_alloc=True, static_shape=True)
    return Converted(qnet, "int8", False, calibration, excluded,
                     sum(b[0].shape[0] for b in batches))


def export(converted, prefix: str | Path) -> tuple[Path, Path]:
    """Write ``prefix-symbol.json`` and ``prefix-0000.params`` of a converted net (run it
    once first); AMP's casts are kept, so a bf16 net reloads as bf16. Returns both paths."""
    net = converted.net if isinstance(converted, Converted) else converted
    if not net._cached_graph:
        raise BenchError("run the converted network on one batch before exporting it")
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    net.export(str(prefix), remove_amp_cast=False)
    return Path(f"{prefix}-symbol.json"), Path(f"{prefix}-0000.params")


def load(prefix: str | Path, ctx=None, hybridize: bool = True):
    """A network written by :func:`export` (or Gluon's ``export``), as a ``SymbolBlock``."""
    mx = require_mxnet()
    symbol, params = Path(f"{prefix}-symbol.json"), Path(f"{prefix}-0000.params")
    for path in (symbol, params):
        if not path.is_file():
            raise BenchError(f"no exported network file {path}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Cannot decide type for the following arguments"
        net = mx.gluon.SymbolBlock.imports(str(symbol), ["data"], str(params),
                                           ctx=ctx or mx.cpu())
    if hybridize:
        net.hybridize(static_alloc=True, static_shape=True)
    return net
