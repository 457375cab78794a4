"""Learning-rate schedules as closed-form functions of the global iteration.

A schedule is a pure function ``lr(iteration)`` (0-based, counted in optimizer steps) rather than
an object that counts calls: a resumed run then gets the same LR at the same step as a straight
run without any schedule state in the checkpoint, and ``--dry-run`` can print it.

Conventions (GluonCV's ``LRSequential`` of a linear warm-up and a main ``LRScheduler``, as in its
``train_imagenet.py``):

* warm-up is linear from ``warmup_start_lr`` at iteration 0 to ``base_lr`` at ``warmup_iters``;
* cosine and poly decay run over the *remaining* ``total_iters - warmup_iters`` iterations, so
  they reach ``final_lr`` exactly at ``total_iters``;
* step milestones are absolute iterations counted from the start of training (GluonCV subtracts
  the warm-up epochs from ``lr_decay_epoch`` before handing them to the sequenced scheduler, which
  adds them back), and the LR is multiplied by ``factor`` from the milestone iteration on;
* ``reset_momentum`` (WRN's ``train.lua``, which gives the optimizer a fresh state at every LR
  drop) zeroes the momentum right before the step at each milestone iteration. Being a function
  of the iteration too, a run resumed after a milestone does not reset again and one resumed
  before it does.

No MXNet here: the trainer calls ``trainer.set_learning_rate(schedule(it))`` before every step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from bench.errors import BenchError, check_choice
from bench.recipes.schema import SCHEDULE_UNITS, SCHEDULES



@dataclass(frozen=True)
class Schedule:
    """LR as a closed-form function of the global iteration (0-based, counted in optimizer steps).

    ``base_lr`` is already rescaled to the global batch actually run (:func:`scale_lr`)."""

    base_lr: float
    total_iters: int
    kind: str = "step"  # "step" | "cosine" | "poly" | "constant"
    milestones: tuple[int, ...] = ()  # absolute iterations where lr *= factor (step)
    factor: float = 0.1
    power: float = 2.0  # poly: lr = final + (base - final) * (1 - t/T)^power
    final_lr: float = 0.0  # cosine/poly end value
    warmup_iters: int = 0  # linear warm-up; cosine/poly decay over total - warmup (GluonCV)
    warmup_start_lr: float = 0.0
    reset_momentum: bool = False  # zero the momentum before the step at each milestone

    def resets_momentum(self, it: int) -> bool:
        """Whether the momentum is zeroed right before step ``it`` (a milestone)."""
        return self.reset_momentum and it in self.milestones

    def __call__(self, it: int) -> float:
        if it < 0:
            raise ValueError(f"iteration must be >= 0, got {it}")
        w = self.warmup_iters
        if it < w:
            return self.warmup_start_lr + (self.base_lr - self.warmup_start_lr) * it / w
        if self.kind == "constant":
            return self.base_lr
        if self.kind == "step":
            passed = sum(1 for m in self.milestones if m <= it)
            return self.base_lr * self.factor ** passed
        span = max(self.total_iters - w, 1)
        progress = min((it - w) / span, 1.0)
        if self.kind == "cosine":
            shape = (1.0 + math.cos(math.pi * progress)) / 2.0
        elif self.kind == "poly":
            shape = (1.0 - progress) ** self.power
        else:
            raise ValueError(f"unknown schedule kind {self.kind!r}")
        return self.final_lr + (self.base_lr - self.final_lr) * shape

    def describe(self, iters_per_epoch: int) -> list[str]:
        """Human lines for ``--dry-run`` and run.json: warm-up, decay and every LR change, with
        both epochs and iterations (papers state one or the other)."""

        def when(it: int) -> str:
            if iters_per_epoch > 0:
                return f"epoch {it / iters_per_epoch:g} (iteration {it})"
            return f"iteration {it}"

        def span(n: int) -> str:
            if iters_per_epoch > 0:
                return f"{n / iters_per_epoch:g} epochs ({n} iterations)"
            return f"{n} iterations"

        lines = []
        if self.warmup_iters:
            lines.append(f"warm-up {self.warmup_start_lr:g} -> {self.base_lr:g} over "
                         f"{span(self.warmup_iters)}")
        if self.kind == "constant":
            lines.append(f"constant {self.base_lr:g} until {when(self.total_iters)}")
        elif self.kind == "step":
            lines.append(f"lr {self.base_lr:g} from {when(self.warmup_iters)}")
            reset = ", momentum reset to 0" if self.reset_momentum else ""
            for m in self.milestones:
                lines.append(f"x{self.factor:g} at {when(m)}: lr {self(m):g}{reset}")
            lines.append(f"end at {when(self.total_iters)}")
        else:
            what = "cosine" if self.kind == "cosine" else f"poly (power {self.power:g})"
            lines.append(f"{what} {self.base_lr:g} -> {self.final_lr:g} from "
                         f"{when(self.warmup_iters)} to {when(self.total_iters)}")
        return lines


def build_schedule(*, kind: str, base_lr: float, epochs: float, iters_per_epoch: int,
                   milestones: Sequence[float] = (), unit: str = "epoch", factor: float = 0.1,
                   power: float = 2.0, final_lr: float = 0.0, warmup_epochs: float = 0.0,
                   warmup_start_lr: float = 0.0, total_iters: int | None = None,
                   reset_momentum: bool = False) -> Schedule:
    """A :class:`Schedule` in iterations from a recipe's epochs (or iteration budget).

    ``total_iters`` (an iteration budget, He 2015 CIFAR) overrides ``epochs * iters_per_epoch``.
    Milestones given in epochs are rounded to the nearest iteration, so fractional epochs (from
    ``--epochs`` rescaling) are fine. Every inconsistency is a :class:`BenchError` naming the
    offending value, since a silently different schedule is a failed reproduction."""
    check_choice("schedule kind", kind, SCHEDULES)
    check_choice("schedule unit", unit, SCHEDULE_UNITS)
    _check_finite("base lr", base_lr, low=0.0, strict=True)
    _check_finite("final lr", final_lr, low=0.0)
    _check_finite("warm-up start lr", warmup_start_lr, low=0.0)
    _check_finite("warm-up epochs", warmup_epochs, low=0.0)
    if iters_per_epoch < 1:
        raise BenchError(f"schedule: iterations per epoch must be >= 1, got {iters_per_epoch} "
                         "(is the training set smaller than one batch?)")
    if total_iters is None:
        _check_finite("epochs", epochs, low=0.0, strict=True)
        total = round(epochs * iters_per_epoch)
    else:
        total = int(total_iters)
    if total < 1:
        raise BenchError(f"schedule has no iterations ({epochs} epochs x {iters_per_epoch} "
                         "iterations per epoch)")
    if kind == "step":
        _check_finite("step factor", factor, low=0.0, strict=True)
    if kind == "poly":
        _check_finite("poly power", power, low=0.0, strict=True)
    warmup = round(warmup_epochs * iters_per_epoch)
    if warmup >= total:
        raise BenchError(f"schedule: warm-up of {warmup_epochs:g} epochs ({warmup} iterations) "
                         f"is not shorter than the whole schedule ({total} iterations)")
    its = _milestone_iterations(kind, milestones, unit, iters_per_epoch, total, warmup)
    if reset_momentum and not its:
        raise BenchError("schedule: reset_momentum zeroes the momentum at each LR drop, and "
                         f"this {kind!r} schedule has no milestones: add them or drop it")
    return Schedule(base_lr=float(base_lr), total_iters=total, kind=kind, milestones=its,
                    factor=float(factor), power=float(power), final_lr=float(final_lr),
                    warmup_iters=warmup, warmup_start_lr=float(warmup_start_lr),
                    reset_momentum=bool(reset_momentum))


def _milestone_iterations(kind: str, milestones: Sequence[float], unit: str,
                          iters_per_epoch: int, total: int, warmup: int) -> tuple[int, ...]:
    if not milestones:
        return ()
    shown = ", ".join(f"{m:g}" for m in milestones)
    if kind != "step":
        raise BenchError(f"schedule milestones [{shown}] only apply to kind 'step', not "
                         f"{kind!r}: remove them")
    scale = iters_per_epoch if unit == "epoch" else 1
    its = tuple(round(m * scale) for m in milestones)
    for m, it in zip(milestones, its):
        if not math.isfinite(m) or it <= 0 or it >= total:
            raise BenchError(f"schedule milestone {m:g} ({unit}s) is iteration {it}, outside "
                             f"the schedule's 1..{total - 1} iterations")
        if it < warmup:
            raise BenchError(f"schedule milestone {m:g} ({unit}s) falls inside the warm-up "
                             f"(first {warmup} iterations)")
    if any(b <= a for a, b in zip(its, its[1:])):
        raise BenchError(f"schedule milestones [{shown}] ({unit}s) must be strictly increasing"
                         + (f" after rounding to iterations ({', '.join(map(str, its))})"
                            if unit == "epoch" else ""))
    return its


def _check_finite(what: str, value: float, low: float, strict: bool = False) -> None:
    ok = isinstance(value, (int, float)) and math.isfinite(value) and (
        value > low if strict else value >= low)
    if not ok:
        raise BenchError(f"schedule: {what} must be {'>' if strict else '>='} {low:g}, "
                         f"got {value!r}")


def scale_lr(lr: float, reference_batch: int, actual_batch: int) -> float:
    """The linear scaling rule (Goyal et al. 2017, arXiv:1706.02677): the LR is proportional to
    the global batch, so a recipe's LR carries over to other hardware. Returns
    ``lr * actual_batch / reference_batch``."""
    if reference_batch <= 0 or actual_batch <= 0:
        raise BenchError(f"batch sizes must be positive to rescale the LR "
                         f"(reference {reference_batch}, actual {actual_batch})")
    return lr * actual_batch / reference_batch


class ErrorGatedWarmup:
    """He et al. 2015 (Sec. 4.2, ResNet-110): train at a small `lr` until the training error of a
    logging window falls below `threshold` (0.8 = 80 %), then switch to the schedule for good.

    Unlike a fixed warm-up this depends on how training went, so its state (`done`) must be saved
    in checkpoints for a resumed run to take the same path."""

    def __init__(self, lr: float, threshold: float):
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise BenchError(f"error-gated warm-up lr must be > 0, got {lr!r}")
        if not (isinstance(threshold, (int, float)) and 0 < threshold <= 1):
            raise BenchError(f"error-gated warm-up threshold is a fraction in (0, 1] "
                             f"(0.8 = 80 %), got {threshold!r}")
        self.warm_lr = float(lr)
        self.threshold = float(threshold)
        self.done = False

    def update(self, train_error: float) -> bool:
        """Feed one logging window's training error; True exactly once, at the switch."""
        if self.done or not train_error < self.threshold:  # NaN never switches
            return False
        self.done = True
        return True

    def lr(self, schedule: Schedule, it: int) -> float:
        """The warm LR while the gate is closed, else the schedule's LR at ``it``."""
        return schedule(it) if self.done else self.warm_lr

    def state_dict(self) -> dict[str, Any]:
        return {"done": self.done}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.done = bool(d["done"])
