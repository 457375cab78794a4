"""Evaluate saved weights (ours or GluonCV's ``.params``) under a protocol, without training;
with ``dtype`` int8 / bfloat16 (or fused fp32), the converted net too, next to the fp32 one on
the same batches (:mod:`bench.inference`)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench._mxnet import require_mxnet
from bench.engine import devices
from bench.errors import BenchError


@dataclass(frozen=True)
class EvalRequest:
    network: str
    params: Path
    dataset: str = "imagenet"
    protocol: str = "center"
    data_dir: str | None = None
    gpus: tuple[int, ...] = ()
    batch_size: int = 64
    input_size: int | None = None  # default: the network's (224 ImageNet, 32 CIFAR)
    resize: int | None = None  # default: input_size / 0.875 (256 for 224)
    loader_workers: int = 2  # data-loading threads (not the processes of a job)
    dtype: str = "float32"  # also evaluate the net converted to this precision (CPU)
    fuse: bool = False  # float32: oneDNN graph fusion
    calibration: Any = None  # int8: a bench.inference.Calibration (default: its defaults)


def load_weights(network: str, params: Path, classes: int, in_channels: int, ctxs: list):
    """Our network with ``params`` loaded: a file saved by this suite loads directly; anything
    else is read as a GluonCV ``.params`` file and copied by structure."""
    mx = require_mxnet()
    from bench.models import get_model
    params = Path(params)
    if not params.is_file():
        raise BenchError(f"no parameter file {params}")
    overrides: dict[str, Any] = {"classes": classes}
    if in_channels != 3:
        overrides["in_channels"] = in_channels
    net = get_model(network, **overrides)
    try:
        net.load_parameters(str(params), ctx=ctxs)
        return net
    except (AssertionError, mx.base.MXNetError, ValueError, KeyError):
        pass
    from bench.models import from_gluoncv
    net = from_gluoncv(network, params, ours=get_model(network, **overrides))
    net.collect_params().reset_ctx(ctxs)
    return net


def evaluate_params(request: EvalRequest) -> dict[str, Any]:
    """Top-1/top-5 error of the weights in ``request.params`` under ``request.protocol``.

    An unsupported precision is refused before MXNet is imported or any data is read."""
    if request.dtype != "float32" or request.fuse:
        from bench.precision import require
        require(request.dtype, on_gpu=bool(request.gpus))
        if request.gpus:
            raise BenchError("--fuse is a CPU path (oneDNN): run without --gpus")
    mx = require_mxnet()
    from bench.data import (DataSpec, build_eval, evaluate, in_channels, num_classes,
                            protocol_label)
    from bench.models import get_spec
    devices.check_gpus(list(request.gpus))
    ctxs = devices.contexts(list(request.gpus))
    from bench.data.spec import EMBEDDED_SIDES
    # the embedded sets are evaluated at their own side (a CIFAR net reads 8x8 digits, 28x28
    # MNIST); the network's input size is for the image data sets
    size = (request.input_size or EMBEDDED_SIDES.get(request.dataset)
            or get_spec(request.network).input_size)
    resize = request.resize or round(size / 0.875)
    spec = DataSpec(dataset=request.dataset, train_augment="none", input_size=size,
                    resize=resize, protocol=request.protocol)
    data = build_eval(spec, request.data_dir, request.batch_size, request.loader_workers)
    net = load_weights(request.network, request.params, num_classes(spec), in_channels(spec),
                       ctxs)
    net.hybridize(static_alloc=True)

    def predict(batch) -> np.ndarray:
        x = batch if isinstance(batch, mx.nd.NDArray) else mx.nd.array(np.asarray(batch))
        parts = devices.split_batch(x, None, ctxs)[0] if len(ctxs) > 1 else [x.as_in_context(ctxs[0])]
        return np.concatenate([net(p).softmax().asnumpy() for p in parts])

    out = {"network": request.network, "params": str(request.params),
           "dataset": request.dataset, "protocol": protocol_label(spec), "input_size": size,
           "resize": resize}
    if request.dtype == "float32" and not request.fuse:
        return {**out, **evaluate(predict, data)}
    return {**out, **_evaluate_converted(request, spec, net, predict, data)}


def _evaluate_converted(request: EvalRequest, spec, net, predict, data) -> dict[str, Any]:
    """The fp32 net and its conversion on the same batches: both results, the change in
    points, the agreement of their top-1 predictions, and how the conversion was made."""
    mx = require_mxnet()
    from bench import inference
    from bench.data import build_calibration, evaluate_together
    from bench.precision import cpu_flags, present
    from bench.provenance import cpu_model
    x, _ = next(iter(data.batches()))
    example = x if isinstance(x, mx.nd.NDArray) else mx.nd.array(np.asarray(x))
    if data.crops > 1:
        example = example.reshape((-1,) + tuple(example.shape[2:]))
    calib_data, split, note = None, None, None
    calibration = None
    if request.dtype == "int8":
        calibration = request.calibration or inference.Calibration()
        source, split, note = build_calibration(spec, request.data_dir, request.batch_size,
                                                request.loader_workers)
        calib_data = _first_batches(source, calibration.batches)
    converted = inference.convert(net, request.dtype, example, fuse=request.fuse,
                                  calib_data=calib_data, calibration=calibration)

    def predict_converted(batch) -> np.ndarray:
        x = batch if isinstance(batch, mx.nd.NDArray) else mx.nd.array(np.asarray(batch))
        return converted.net(x.astype("float32", copy=False)).softmax().asnumpy()

    (fp32, ours), agreement = evaluate_together([predict, predict_converted], data)
    described = converted.describe()
    if described["calibration"] is not None:
        described["calibration"].update(
            split=split, note=note, default_exclusions=calibration.exclude is None)
    return {**fp32, "converted": {**described, **ours},
            "change": {"top1_err": ours["top1_err"] - fp32["top1_err"],
                       "top5_err": ours["top5_err"] - fp32["top5_err"]},
            "agreement": agreement[1], "cpu": cpu_model(), "cpu_flags": present(cpu_flags()),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}


def _first_batches(data, n: int) -> list:
    """The images of the first ``n`` batches of ``data`` (a ten-crop batch: all its crops)."""
    out = []
    for x, _ in data.batches():
        if data.crops > 1:
            x = x.reshape((-1,) + tuple(x.shape[2:]))
        out.append(x)
        if len(out) == n:
            break
    return out
