"""Fit a recipe written for its reference hardware to the hardware actually used.

A recipe states its global batch (``optim.batch_size``) over ``train.devices`` devices. The batch
rule (:func:`choose_batch`) keeps that global batch, and so the recipe's LR and schedule exactly,
whenever it fits the devices actually used: on more devices each gets fewer images than the
recipe's own; on fewer devices each gets more, which is kept when the memory estimate says it
fits (:class:`DeviceMemory`, gathered by the engine). Only when it does not fit (or cannot be
split evenly, or the memory is unknown) does each device keep the recipe's per-device batch, so
the global batch changes; the LR then follows the linear scaling rule (Goyal et al. 2017,
arXiv:1706.02677, which Bag of Tricks Sec. 3.1 uses: lr 0.1 per 256 images), and iteration-based
schedules (He 2015 CIFAR: 64k iterations at batch 128) are stretched so the run sees the same
number of epochs. Every decision is returned as a sentence, because a silently different batch
or LR is the most common reason a reproduction misses.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from bench.errors import BenchError
from bench.recipes.schema import Recipe

# Our choice: a batch fits a device when its estimate is within 90 % of the device's memory
# (the rest for the framework itself, cuDNN workspaces, the data pipeline). The estimate is an
# upper bound already: every operator's forward output is counted as kept (bench.models.profile).
HEADROOM = 0.9


@dataclass(frozen=True)
class DeviceMemory:
    """What the batch rule knows about one device's memory; plain numbers, so every branch is
    tested without a GPU. The engine gathers them (:mod:`bench.engine.memory`)."""

    capacity: int | None  # bytes one device may use; None = unknown
    per_image: int  # training bytes per image (forward activations, bench.models.profile)
    fixed: int = 0  # bytes that do not grow with the batch (weights, gradients, momentum)
    what: str = "the device's memory"  # what ``capacity`` is, for the sentence
    # A distillation teacher on the same device (predict mode: no gradients, no optimizer
    # state): its weights and its forward activations per image; "" = no teacher.
    teacher: str = ""
    teacher_per_image: int = 0
    teacher_fixed: int = 0

    def teacher_need(self, per_device: int) -> int:
        """The teacher's share of :meth:`need` (0 without one)."""
        return self.teacher_fixed + per_device * self.teacher_per_image if self.teacher else 0

    def need(self, per_device: int) -> int:
        """Estimated bytes for ``per_device`` images on one device, the teacher's included."""
        return self.fixed + per_device * self.per_image + self.teacher_need(per_device)

    def breakdown(self, per_device: int) -> str:
        """' (teacher NAME: N MiB)' when a teacher shares the device, else ''."""
        if not self.teacher:
            return ""
        return f" (teacher {self.teacher}: {_size(self.teacher_need(per_device))})"


@dataclass(frozen=True)
class BatchChoice:
    """The global batch to run and why, as one sentence ('' when nothing needs saying)."""

    global_batch: int
    kept: bool  # the recipe's own global batch
    why: str


def fit_to_check(ref_batch: int, ref_devices: int, devices: int,
                 requested: int | None = None) -> int | None:
    """The per-device batch whose fit decides the batch, or None when memory does not matter:
    ``--batch-size`` was given, the devices are the recipe's, the recipe's batch does not split
    evenly over them, or each gets no more images than on the recipe's own hardware."""
    if requested is not None or devices == ref_devices or ref_batch % devices:
        return None
    per_device = ref_batch // devices
    return per_device if per_device > ref_batch // ref_devices else None


def choose_batch(ref_batch: int, ref_devices: int, devices: int,
                 memory: DeviceMemory | None = None,
                 requested: int | None = None) -> BatchChoice:
    """The global batch for ``devices`` devices (workers x devices in a multi-worker job).

    ``requested`` (``--batch-size``) wins. Otherwise the recipe's global batch ``ref_batch`` is
    kept when it splits evenly over ``devices`` and each device's share is at most the recipe's
    own per-device batch, or fits ``memory`` (:data:`HEADROOM`); else each device keeps the
    recipe's per-device batch (unknown memory included: that batch is the most known to fit)."""
    if devices < 1:
        raise BenchError(f"cannot train on {devices} devices")
    ref_per = ref_batch // ref_devices
    if requested is not None:
        if requested <= 0 or requested % devices:
            raise BenchError(f"batch size {requested} must be a positive multiple of the "
                             f"{devices} device(s)")
        return BatchChoice(requested, requested == ref_batch,
                           f"--batch-size {requested}: {devices} device(s) x "
                           f"{requested // devices} images")
    if devices == ref_devices:
        return BatchChoice(ref_batch, True, "")
    head = f"recipe is for {ref_devices} device(s) x {ref_per} images"
    own = f"each keeps the recipe's {ref_per} images (global batch {ref_per * devices})"
    if ref_batch % devices:
        return BatchChoice(ref_per * devices, False,
                           f"{head}; its global batch {ref_batch} does not split evenly over "
                           f"{devices} device(s), so {own}")
    per = ref_batch // devices
    keep = f"{head}; running its global batch {ref_batch} as {devices} device(s) x {per}"
    if fit_to_check(ref_batch, ref_devices, devices) is None:
        return BatchChoice(ref_batch, True,
                           f"{keep}, no more images per device than the recipe's own")
    if memory is None or memory.capacity is None:
        what = memory.what if memory is not None else "the devices' memory"
        return BatchChoice(ref_per * devices, False,
                           f"{head}; its global batch {ref_batch} would put {per} images on "
                           f"each of {devices} device(s) and {what} is unknown, so {own}; "
                           f"--batch-size {ref_batch} keeps the recipe's batch")
    need, room = memory.need(per), HEADROOM * memory.capacity
    room_text = f"{HEADROOM:.0%} of {memory.what} ({_size(memory.capacity)})"
    estimate = f"an estimated {_size(need)} per device{memory.breakdown(per)}"
    if need <= room:
        return BatchChoice(ref_batch, True, f"{keep}: {estimate} fits in {room_text}")
    return BatchChoice(ref_per * devices, False,
                       f"{head}; its global batch {ref_batch} as {devices} device(s) x {per} "
                       f"would need {estimate}, more than "
                       f"{room_text}, so {own}; --batch-size sets the batch explicitly")


def _size(n: int) -> str:
    return f"{n / 2 ** 30:.1f} GiB" if n >= 2 ** 30 else f"{n / 2 ** 20:.0f} MiB"


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
    batch_kept: bool = True  # the recipe's global batch (so its LR and schedule) is run as is


def plan_for(recipe: Recipe, devices: int, global_batch: int | None = None,
             memory: DeviceMemory | None = None) -> Plan:
    """The batch, LR and schedule length for ``devices`` devices (:func:`choose_batch`;
    ``global_batch`` is ``--batch-size``; ``memory`` None = unknown)."""
    ref_batch, ref_devices = recipe.optim.batch_size, recipe.train.devices
    if ref_batch % ref_devices:
        raise BenchError(f"recipe {recipe.name}: optim.batch_size {ref_batch} is not divisible "
                         f"by train.devices {ref_devices}")
    choice = choose_batch(ref_batch, ref_devices, devices, memory, global_batch)
    global_batch = choice.global_batch
    per_device = global_batch // devices
    ratio = global_batch / ref_batch
    changes = [choice.why] if choice.why else []
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
                tuple(changes), global_batch == ref_batch)
