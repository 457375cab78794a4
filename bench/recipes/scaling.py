"""Fit a recipe written for its reference hardware to the hardware actually used.

A recipe states its global batch (``optim.batch_size``) over ``train.devices`` devices. On other
hardware the engine keeps the per-device batch (what fits in one device's memory), so the global
batch changes; the LR follows the linear scaling rule (Goyal et al. 2017, arXiv:1706.02677, which
Bag of Tricks Sec. 3.1 uses: lr 0.1 per 256 images), and iteration-based schedules (He 2015 CIFAR:
64k iterations at batch 128) are stretched so the run sees the same number of epochs. Every change
is returned as a sentence, because a silently different LR is the most common reason a
reproduction misses.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from bench.errors import BenchError
from bench.recipes.schema import Recipe


@dataclass(frozen=True)
class Plan:
    """What the engine will actually run."""

    devices: int
    per_device_batch: int
    global_batch: int
    lr: float
    warmup_lr: float
    iterations: int  # 0 = epoch-based
    milestones: tuple[float, ...]
    changes: tuple[str, ...] = field(default=())


def plan_for(recipe: Recipe, devices: int, global_batch: int | None = None) -> Plan:
    """The batch, LR and schedule length for ``devices`` devices (``global_batch`` overrides)."""
    ref_batch, ref_devices = recipe.optim.batch_size, recipe.train.devices
    if ref_batch % ref_devices:
        raise BenchError(f"recipe {recipe.name}: optim.batch_size {ref_batch} is not divisible "
                         f"by train.devices {ref_devices}")
    if global_batch is None:
        per_device = ref_batch // ref_devices
        global_batch = per_device * devices
    else:
        if global_batch <= 0 or global_batch % devices:
            raise BenchError(f"batch size {global_batch} must be a positive multiple of the "
                             f"{devices} device(s)")
        per_device = global_batch // devices
    ratio = global_batch / ref_batch
    changes = []
    if devices != ref_devices:
        changes.append(f"recipe is for {ref_devices} device(s) x {ref_batch // ref_devices} "
                       f"images; running on {devices} device(s) x {per_device}")
    lr, warmup_lr = recipe.optim.lr, recipe.schedule.warmup_lr
    iterations, milestones = recipe.schedule.iterations, recipe.schedule.milestones
    if global_batch != ref_batch:
        lr, warmup_lr = lr * ratio, warmup_lr * ratio
        changes.append(f"global batch {ref_batch} -> {global_batch}: lr {recipe.optim.lr:g} -> "
                       f"{lr:g} (linear scaling rule)")
        if iterations:
            iterations = round(iterations / ratio)
            changes.append(f"iteration budget {recipe.schedule.iterations} -> {iterations} so "
                           "the run covers the same number of epochs")
            if recipe.schedule.unit == "iteration":
                milestones = tuple(round(m / ratio) for m in milestones)
                changes.append("milestones (iterations) -> "
                               + ", ".join(str(int(m)) for m in milestones))
        elif recipe.schedule.unit == "iteration" and milestones:
            milestones = tuple(round(m / ratio) for m in milestones)
            changes.append("milestones (iterations) -> " + ", ".join(str(int(m)) for m in milestones))
    return Plan(devices, per_device, global_batch, lr, warmup_lr, iterations, milestones,
                tuple(changes))
