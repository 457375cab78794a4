"""Evaluate saved weights (ours or GluonCV's ``.params``) under a protocol, without training."""
from __future__ import annotations

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
    """Top-1/top-5 error of the weights in ``request.params`` under ``request.protocol``."""
    mx = require_mxnet()
    from bench.data import (DataSpec, build_eval, evaluate, in_channels, num_classes,
                            protocol_label)
    from bench.models import get_spec
    devices.check_gpus(list(request.gpus))
    ctxs = devices.contexts(list(request.gpus))
    size = request.input_size or get_spec(request.network).input_size
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

    result = evaluate(predict, data)
    return {"network": request.network, "params": str(request.params),
            "dataset": request.dataset, "protocol": protocol_label(spec), "input_size": size,
            "resize": resize, **result}
