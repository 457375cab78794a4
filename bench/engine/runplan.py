"""What a run will do on this machine, decided before the first step (and printed by
``--dry-run``): devices, global batch, rescaled LR, kvstore, precision and schedule length."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from bench.data.spec import protocol_label
from bench.errors import BenchError
from bench.engine import build, devices
from bench.recipes import Plan, Recipe, plan_for


@dataclass
class RunOptions:
    """What the command line adds to a recipe."""

    gpus: tuple[int, ...] = ()
    cpu_devices: int = 1  # >1 runs the multi-device path on several CPU contexts (tests)
    data_dir: str | None = None
    epochs: int | None = None  # shortens/lengthens the schedule proportionally
    max_steps: int | None = None  # stop (with a checkpoint) after this many steps in total
    seed: int | None = None
    batch_size: int | None = None  # global batch; default keeps the recipe's per-device batch
    kvstore: str | None = None
    out: Path = Path("runs")
    workers: int = 2
    progress: bool = True


@dataclass
class Setup:
    """Everything decided before the first step; what ``--dry-run`` prints."""

    recipe: Recipe
    plan: Plan
    ctxs: list
    dtype: str
    kvstore: str | None
    iters_per_epoch: int
    epochs: int
    total_iters: int
    changes: list[str] = field(default_factory=list)


def apply_options(recipe: Recipe, options: RunOptions) -> tuple[Recipe, list[str]]:
    """The recipe as this run trains it (``--seed``, ``--epochs``), with what changed."""
    changes = []
    if options.seed is not None and options.seed != recipe.train.seed:
        recipe = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train,
                                                                       seed=options.seed))
    if options.epochs is not None:
        s = recipe.schedule
        old = s.epochs
        ratio = options.epochs / old
        milestones = s.milestones
        if s.unit == "epoch":
            milestones = tuple(m * ratio for m in milestones)
        elif s.iterations:
            milestones = tuple(round(m * ratio) for m in milestones)
        schedule = dataclasses.replace(
            s, epochs=options.epochs, iterations=round(s.iterations * ratio) if s.iterations else 0,
            milestones=milestones, warmup_epochs=s.warmup_epochs * ratio)
        recipe = dataclasses.replace(recipe, schedule=schedule)
        changes.append(f"--epochs {options.epochs}: schedule of {old} epochs scaled by "
                       f"{ratio:g} (milestones and warm-up included)")
    return recipe, changes


def prepare(recipe: Recipe, options: RunOptions, train_samples: int | None = None) -> Setup:
    """Devices, batch, LR and schedule length for this machine (no data read unless needed)."""
    devices.check_gpus(list(options.gpus))
    ctxs = devices.contexts(list(options.gpus), options.cpu_devices)
    recipe, changes = apply_options(recipe, options)
    plan = plan_for(recipe, len(ctxs), options.batch_size)
    changes += list(plan.changes)
    dtype, dtype_changes = build.effective_dtype(recipe, bool(options.gpus))
    changes += dtype_changes
    requested = options.kvstore or recipe.train.kvstore
    if requested.startswith("dist") or requested == "horovod":
        # Multi-machine runs need the data sharded per worker and the LR scaled to the world
        # size; the engine does neither yet, and silently training every worker on all the
        # data would be wrong.
        raise BenchError(f"kvstore {requested!r}: multi-machine training is not supported by "
                         "the engine yet; use --kvstore device (one machine, any number of "
                         "GPUs)")
    kvstore = devices.choose_kvstore(requested, len(ctxs), on_gpu=bool(options.gpus))
    if train_samples is None:
        train_samples = _known_train_size(recipe)
    iters_per_epoch = max(1, train_samples // plan.global_batch) if train_samples else 0
    if plan.iterations:
        total = plan.iterations
        epochs = math.ceil(total / iters_per_epoch) if iters_per_epoch else recipe.schedule.epochs
    else:
        epochs = recipe.schedule.epochs
        total = epochs * iters_per_epoch
    return Setup(recipe, plan, ctxs, dtype, kvstore, iters_per_epoch, epochs, total, changes)


def _known_train_size(recipe: Recipe) -> int | None:
    """Training-set sizes for ``--dry-run`` without reading the data."""
    return {"imagenet": 1281167, "cifar10": 50000, "cifar100": 50000, "digits": 1437,
            "synthetic": recipe.data.synthetic_size}.get(recipe.data.dataset)


def describe(setup: Setup) -> list[str]:
    """Human lines: the plan, what was rescaled and the schedule's milestones."""
    p, r = setup.plan, setup.recipe
    lines = [f"recipe {r.name}: network {r.network}, data {r.data.dataset} "
             f"(protocol {protocol_label(r.data)})",
             f"devices: {', '.join(str(c) for c in setup.ctxs)}; "
             f"kvstore {setup.kvstore or 'none (one device)'}; "
             f"dtype {setup.dtype}",
             f"batch {p.global_batch} ({p.devices} x {p.per_device_batch}); lr {p.lr:g} "
             f"(recipe: {r.optim.lr:g} at batch {r.optim.batch_size}); "
             f"{r.optim.optimizer} momentum {r.optim.momentum:g}, wd {r.optim.weight_decay:g}"
             + (" (not on bias/BN)" if r.optim.no_bias_decay else ""),
             f"{setup.epochs} epochs x {setup.iters_per_epoch} iterations = "
             f"{setup.total_iters} iterations"]
    if setup.iters_per_epoch:
        schedule, gate = build.build_lr(r, p, setup.iters_per_epoch, setup.epochs)
        lines += [f"schedule: {line}" for line in schedule.describe(setup.iters_per_epoch)]
        if gate:
            lines.append(f"schedule: lr {p.warmup_lr:g} until the training error of a logging "
                         f"window is below {r.schedule.warmup_until_error:.0%} (He 2015)")
    lines += [f"changed: {c}" for c in setup.changes]
    return lines
