"""One optimizer step, and the per-step targets (label smoothing, mixup) and seeding."""
from __future__ import annotations

import numpy as np

from bench._mxnet import require_mxnet
from bench.engine import devices, targets


def recipe_step(net, trainer, loss_fn, x, y, setup, classes: int, dense: bool, mixup_on: bool,
                seed: int, it: int, distiller=None):
    """Targets for this step (label smoothing, mixup keyed by (seed, it)), then one step."""
    mx = require_mxnet()
    recipe = setup.recipe
    labels = np.asarray(y.asnumpy() if hasattr(y, "asnumpy") else y)
    data = to_nd(x, setup.dtype)
    soft = None
    if dense:
        soft = targets.one_hot(labels, classes, recipe.train.label_smoothing)
        if mixup_on:
            lam = targets.mixup_lambda(recipe.train.mixup_alpha, targets.step_rng(seed, it))
            data = lam * data + (1 - lam) * mx.nd.flip(data, axis=0)
            soft = targets.mix_targets(soft, lam)
    return train_step(net, trainer, loss_fn, data, labels, setup.ctxs, setup.step_batch,
                      setup.dtype, soft, distiller)


def train_step(net, trainer, loss_fn, data, labels: np.ndarray, ctxs: list, global_batch: int,
               dtype: str = "float32", soft_targets: np.ndarray | None = None,
               distiller=None):
    """One optimizer step over ``ctxs``: split the batch, forward, backward, update.

    Returns the summed loss and the number of training errors (against the hard labels) as
    NDArrays on the CPU, so the caller can synchronise only once per logging window. With a
    ``distiller`` (:mod:`.distill`) its teacher sees each device's slice of the same (mixed)
    batch first, in predict mode, and its loss replaces ``loss_fn``."""
    mx = require_mxnet()
    from mxnet import autograd
    # Targets in the network's dtype, as GluonCV's fp16 scripts do (class ids < 2048 are exact).
    label_dtype = "float16" if dtype == "float16" else "float32"
    target = mx.nd.array(soft_targets if soft_targets is not None else labels, dtype=label_dtype)
    xs, ys = devices.split_batch(data, target, ctxs)
    truth = devices.split_batch(mx.nd.array(labels), None, ctxs)[0]
    teacher_outs = [distiller.predict(xi) for xi in xs] if distiller is not None else None
    with autograd.record():
        outs = [net(xi) for xi in xs]
        if distiller is None:
            losses = [loss_fn(o, yi) for o, yi in zip(outs, ys)]
        else:
            losses = [distiller.loss(o, yi, t) for o, yi, t in zip(outs, ys, teacher_outs)]
    if dtype == "amp":
        from mxnet.contrib import amp
        with amp.scale_loss(losses, trainer) as scaled:
            autograd.backward(scaled)
    else:
        autograd.backward(losses)
    trainer.step(global_batch)
    cpu = mx.cpu()
    loss_sum = sum(l.astype("float32").sum().as_in_context(cpu) for l in losses)
    wrong = sum((o.argmax(axis=1) != t.as_in_context(o.context).astype(o.dtype))
                .astype("float32").sum().as_in_context(cpu) for o, t in zip(outs, truth))
    return loss_sum, wrong


def step_seed(seed: int, iteration: int) -> int:
    """MXNet's seed before step ``iteration``: dropout and stochastic depth replay on resume."""
    return (seed * 1_000_003 + iteration) % (2 ** 31 - 1)


def to_nd(x, dtype: str):
    mx = require_mxnet()
    if not isinstance(x, mx.nd.NDArray):
        x = mx.nd.array(np.asarray(x), dtype="float32")
    return x.astype("float16") if dtype == "float16" else x
