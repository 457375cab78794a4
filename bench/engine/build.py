"""Turn a recipe and a plan into the objects the loop uses: network, trainer, loss, schedule."""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any

from bench._mxnet import require_mxnet
from bench.engine.cluster import Cluster
from bench.engine.schedules import ErrorGatedWarmup, Schedule, build_schedule
from bench.recipes import Plan, Recipe

# Parameters that Bag of Tricks (Sec. 3.1 "no bias decay") and GluonCV's --no-wd exempt from
# weight decay: biases and BN's gamma/beta.
NO_DECAY_SUFFIXES = ("_bias", "_gamma", "_beta")


@dataclass
class Parts:
    net: Any
    trainer: Any
    loss: Any
    schedule: Schedule
    gate: ErrorGatedWarmup | None
    dtype: str
    changes: list[str]


def data_spec(recipe: Recipe):
    """The data layer's spec of a recipe: its [data] table plus the class count it overrides
    (the recipe layer validates what users write, DataSpec is what the readers take)."""
    from bench.data.spec import DataSpec
    return DataSpec(**dataclasses.asdict(recipe.data),
                    num_classes=int(recipe.network_args.get("classes", 0)))


def effective_dtype(recipe: Recipe, on_gpu: bool) -> tuple[str, list[str]]:
    """fp16 and AMP need CUDA kernels; on CPU the run falls back to fp32 and says so (fp32 is
    the fast path there, and the change is printed and recorded in run.json). bfloat16 is a CPU
    path needing AVX512_BF16 or AMX: elsewhere (a GPU, or a CPU without them, where oneDNN would
    emulate it slower than fp32) the run is refused in one line, never run in fp32 instead."""
    if recipe.train.dtype == "bfloat16":
        from bench.precision import require
        require("bfloat16", on_gpu=on_gpu, training=True)
        return "bfloat16", []
    if recipe.train.dtype != "float32" and not on_gpu:
        return "float32", [f"train.dtype {recipe.train.dtype} needs a GPU (MXNet's CPU kernels "
                           "have no fp16 convolution): running float32"]
    return recipe.train.dtype, []


def network(recipe: Recipe, classes: int, in_channels: int):
    """The recipe's network, not yet initialised (the memory estimate profiles it as is)."""
    return network_for_data(recipe.network, recipe.network_args, classes, in_channels)


def network_for_data(name: str, args: dict[str, Any], classes: int, in_channels: int):
    """Registered network ``name`` with the recipe's ``args``, sized for the data set's
    ``classes`` and ``in_channels``: how the student and a distillation teacher are built."""
    from bench.models import get_model
    kwargs = {"classes": classes, **args}
    if in_channels != 3:
        kwargs.setdefault("in_channels", in_channels)
    return get_model(name, **kwargs)


def build_net(recipe: Recipe, classes: int, in_channels: int, ctxs: list, dtype: str):
    """The recipe's network, initialised as its source did (:mod:`bench.engine.init`: the
    ``train.init`` / ``init_fc`` / ``init_bn_gamma`` of the recipe; parameters that carry their
    own initialiser, such as a zero-initialised last BN gamma, keep it)."""
    from bench.engine.init import initialize
    net = network(recipe, classes, in_channels)
    initialize(net, recipe.train, ctxs)
    if dtype == "float16":
        net.cast("float16")
    return net


# MXNet 1.9.1's AMP lists put zeros_like and slice_axis among the fp32 operators; in a bf16 graph
# they then make fp32 zeros that Concat (dtype-neutral, not widest-type) refuses to join to bf16
# data: He 2015's option-A shortcut (ZeroPadShortcut) fails to convert. Left out of the list, they
# follow their input's dtype (zeros are exact in bf16).
_FOLLOW_INPUT_OPS = ("zeros_like", "slice_axis")


def low_precision_forward(net, dtype: str, sample):
    """The forward pass of ``net`` in ``dtype`` (bfloat16) on the same fp32 Parameters.

    MXNet's AMP graph pass (``amp.convert_symbol``) inserts casts around ``net``'s hybridized
    graph: convolutions and the classifier in bf16, BN with fp32 gamma/beta/statistics (AMP's
    BF16_USE_FP32_PARAMS), softmax-like and reductions in fp32. The weights stay fp32 (the
    master weights, what the trainer updates and checkpoints save) and are cast in the graph at
    every forward, so their gradients arrive in fp32. The output is cast to fp32, so the loss is
    computed in fp32. Unlike ``amp.init``, which patches every MXNet operator of the process and
    cannot be undone, this touches only the returned block. ``sample`` (one batch, any size)
    runs ``net`` once to build its graph."""
    mx = require_mxnet()
    from mxnet.contrib import amp
    from mxnet.contrib.amp.lists import symbol_bf16
    if dtype != "bfloat16":
        raise ValueError(f"no low-precision forward for {dtype}")
    if not net._cached_graph:
        net(sample)
    inputs, sym = net._cached_graph
    fp32_ops = [op for op in symbol_bf16.FP32_FUNCS if op not in _FOLLOW_INPUT_OPS]
    converted = amp.convert_symbol(sym, target_dtype="bfloat16", fp32_ops=fp32_ops,
                                   data_names=[i.name for i in inputs],
                                   cast_optional_params=False)
    outputs = [mx.sym.amp_cast(converted[i], dtype="float32")
               for i in range(len(converted.list_outputs()))]
    with warnings.catch_warnings():  # the input's dtype is only known at the first call
        warnings.filterwarnings("ignore", message="Cannot decide type")
        block = mx.gluon.SymbolBlock(outputs[0] if len(outputs) == 1 else mx.sym.Group(outputs),
                                     inputs, params=net.collect_params())
    block.hybridize(static_alloc=True, static_shape=True)
    return block


def build_trainer(recipe: Recipe, net, lr: float, kvstore: str | None, dtype: str,
                  cluster: Cluster | None = None):
    """``gluon.Trainer`` for the recipe's optimizer. In a multi-worker job: the job's dist
    kvstore with the update on the workers (so its state can be checkpointed), or Horovod's
    ``DistributedTrainer`` after broadcasting rank 0's weights."""
    mx = require_mxnet()
    params = net.collect_params()
    if recipe.optim.no_bias_decay:
        for name, param in params.items():
            if name.endswith(NO_DECAY_SUFFIXES):
                param.wd_mult = 0.0
    options = {"learning_rate": lr, "momentum": recipe.optim.momentum,
               "wd": recipe.optim.weight_decay}
    if dtype != "float32":
        options["multi_precision"] = True  # fp32 master weights (Micikevicius et al. 2018)
    backend = cluster.backend if cluster is not None else "local"
    if backend == "horovod":
        import horovod.mxnet as hvd
        hvd.broadcast_parameters(params, root_rank=0)  # before the first hybridized forward
        trainer = hvd.DistributedTrainer(params, recipe.optim.optimizer, options)
    elif backend == "dist":
        trainer = mx.gluon.Trainer(params, recipe.optim.optimizer, options,
                                   kvstore=cluster.kvstore, update_on_kvstore=False)
        # Register every parameter with the servers now, from rank 0's weights, rather than
        # lazily at the first step (after each worker's first forward) or inside load_states
        # on resume (where MXNet 1.9.1's server failed with "init 4 first").
        trainer._init_kvstore()
        trainer._init_params()
    else:
        kwargs = {} if kvstore is None else {"kvstore": kvstore}
        trainer = mx.gluon.Trainer(params, recipe.optim.optimizer, options, **kwargs)
    if dtype == "amp":
        from mxnet.contrib import amp
        amp.init_trainer(trainer)  # dynamic loss scaling
    return trainer


def build_loss(recipe: Recipe):
    """Dense (soft) labels when label smoothing or mixup make targets non-one-hot."""
    mx = require_mxnet()
    dense = recipe.train.label_smoothing > 0 or recipe.train.mixup_alpha > 0
    return mx.gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=not dense), dense


def build_lr(recipe: Recipe, plan: Plan, iters_per_epoch: int, epochs: int) -> tuple[Schedule, ErrorGatedWarmup | None]:
    s = recipe.schedule
    schedule = build_schedule(
        kind=s.kind, base_lr=plan.lr, epochs=epochs, iters_per_epoch=iters_per_epoch,
        milestones=plan.milestones, unit=s.unit, factor=s.factor, power=s.power,
        final_lr=s.final_lr, warmup_epochs=s.warmup_epochs, warmup_start_lr=s.warmup_start_lr,
        total_iters=plan.iterations or None, reset_momentum=s.reset_momentum)
    gate = ErrorGatedWarmup(plan.warmup_lr, s.warmup_until_error) if s.warmup_until_error else None
    return schedule, gate
