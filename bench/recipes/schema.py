"""The typed recipe: what one published result was trained and evaluated with.

A recipe file (``recipes/NAME.toml``) has top-level keys (``description``, ``base``, ``network``,
``notes``, ``tags``) and the tables below. Every table is a frozen dataclass; :mod:`.loader`
rejects unknown keys and wrong types with the key's path and the closest valid key, so a typo
never silently falls back to a default.

Batch size and LR are the *reference* values, for the recipe's own hardware (``train.devices``
devices of ``optim.batch_size / train.devices`` images each). :mod:`.scaling` rescales them to the
hardware actually used.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

# The data vocabulary is the data layer's (one definition; the readers validate the same names).
from bench.data.spec import (AUGMENTS, DATASETS, FORMATS, MAX_SIDE, NORMALIZATIONS, PADS,
                             PROTOCOLS)
# The precision vocabulary is bench.precision's (train.dtype takes TRAIN_DTYPES).
from bench.precision import TRAIN_DTYPES

OPTIMIZERS = ("sgd", "nag")
SCHEDULES = ("step", "cosine", "poly", "constant")
SCHEDULE_UNITS = ("epoch", "iteration")  # what schedule.milestones count
# kvstores: one device (none), MXNet's local ones, NCCL, the parameter server, Horovod.
KVSTORES = ("device", "local", "nccl", "dist_sync", "dist_device_sync", "horovod")
SEED_LIMIT = 2 ** 32  # seeds are in [0, 2^32): what MXNet's and NumPy's generators take


@dataclass(frozen=True)
class DataSection:
    """Data set, training augmentation and evaluation protocol."""

    dataset: str = "imagenet"
    train_augment: str = "inception"
    input_size: int = 224
    resize: int = 256
    protocol: str = "center"
    data_format: str = "auto"
    jitter: float = 0.4
    lighting: float = 0.1
    min_area: float = 0.08
    synthetic_size: int = 256
    eval_size: int = 0  # evaluation crop; 0 = input_size
    eval_resize: int = 0  # evaluation shorter side; 0 = resize
    normalize: str = NORMALIZATIONS[0]  # CIFAR input normalisation (bench/data/README.md)
    pad: str = PADS[0]  # CIFAR: what the 'cifar' augmentation's border is filled with

    def __post_init__(self) -> None:
        _one_of("data.dataset", self.dataset, DATASETS)
        _one_of("data.train_augment", self.train_augment, AUGMENTS)
        _one_of("data.protocol", self.protocol, PROTOCOLS)
        _one_of("data.data_format", self.data_format, FORMATS)
        _one_of("data.normalize", self.normalize, NORMALIZATIONS)
        _one_of("data.pad", self.pad, PADS)
        _in_range("data.input_size", self.input_size, 1, MAX_SIDE)
        _in_range("data.resize", self.resize, 1, MAX_SIDE)
        _in_range("data.jitter", self.jitter, 0.0, 1.0)
        _at_least("data.lighting", self.lighting, 0.0)
        if not 0.0 < self.min_area <= 1.0:
            raise ValueError(f"data.min_area = {self.min_area!r} must be in (0, 1] (the "
                             "smallest fraction of the image a random crop covers)")
        _positive("data.synthetic_size", self.synthetic_size)
        for key in ("eval_size", "eval_resize"):
            if not 0 <= getattr(self, key) <= MAX_SIDE:
                raise ValueError(f"data.{key} = {getattr(self, key)!r} must be between 1 and "
                                 f"{MAX_SIDE}, or 0 for the training size")


@dataclass(frozen=True)
class OptimSection:
    """Optimizer at the reference global batch ``batch_size``."""

    optimizer: str = "sgd"
    lr: float = 0.1
    batch_size: int = 256
    momentum: float = 0.9
    weight_decay: float = 1e-4
    no_bias_decay: bool = False  # Bag of Tricks: no weight decay on biases and BN gamma/beta

    def __post_init__(self) -> None:
        _one_of("optim.optimizer", self.optimizer, OPTIMIZERS)
        _positive("optim.lr", self.lr)
        _positive("optim.batch_size", self.batch_size)
        _in_range("optim.momentum", self.momentum, 0.0, 1.0)
        _in_range("optim.weight_decay", self.weight_decay, 0.0, 1.0)


@dataclass(frozen=True)
class ScheduleSection:
    """LR schedule. ``milestones`` are in ``unit`` (epochs or iterations); ``iterations`` > 0
    makes the run length iteration-based (He 2015 CIFAR: 64k iterations). ``reset_momentum``
    zeroes the optimizer's momentum at every step milestone, as WRN's ``train.lua`` does by
    starting a fresh optimizer state at each LR drop."""

    kind: str = "step"
    epochs: int = 90
    iterations: int = 0
    milestones: tuple[float, ...] = ()
    unit: str = "epoch"
    factor: float = 0.1
    power: float = 2.0
    final_lr: float = 0.0
    warmup_epochs: float = 0.0
    warmup_start_lr: float = 0.0
    warmup_until_error: float = 0.0  # He 2015 ResNet-110: lr warmup_lr until train error < this
    warmup_lr: float = 0.0
    reset_momentum: bool = False  # zero the momentum buffers at every milestone (WRN train.lua)

    def __post_init__(self) -> None:
        _one_of("schedule.kind", self.kind, SCHEDULES)
        _one_of("schedule.unit", self.unit, SCHEDULE_UNITS)
        _positive("schedule.epochs", self.epochs)
        _at_least("schedule.iterations", self.iterations, 0)
        if not 0.0 < self.factor <= 1.0:
            raise ValueError(f"schedule.factor = {self.factor!r} must be in (0, 1] (the LR is "
                             "multiplied by it at each milestone)")
        _positive("schedule.power", self.power)
        for key in ("final_lr", "warmup_epochs", "warmup_start_lr", "warmup_lr"):
            _at_least(f"schedule.{key}", getattr(self, key), 0.0)
        _in_range("schedule.warmup_until_error", self.warmup_until_error, 0.0, 1.0)
        for m in self.milestones:
            _at_least("schedule.milestones", m, 0.0)
        if list(self.milestones) != sorted(self.milestones):
            raise ValueError("schedule.milestones must be increasing")
        if self.warmup_until_error and not self.warmup_lr:
            raise ValueError("schedule.warmup_until_error needs schedule.warmup_lr")
        if self.reset_momentum and (self.kind != "step" or not self.milestones):
            raise ValueError("schedule.reset_momentum zeroes the momentum at each LR drop: it "
                             "needs schedule.kind = 'step' with schedule.milestones")


# Initialisers, named by what they draw (bench.engine.init builds them): train.init for the conv
# weights (and the classifier's, unless train.init_fc says otherwise), train.init_fc for the
# classifier, train.init_bn_gamma for BN's gamma.
INITS = ("he_fan_in", "he_fan_out", "msra_prelu", "xavier_uniform")
INIT_FCS = ("same", "torch_linear", "torch_linear_zero_bias")
INIT_BN_GAMMAS = ("one", "uniform")
# Old spellings of train.init, refused with a pointer: old -> (new name, what it draws).
INIT_RENAMED = {
    "msra": ("msra_prelu", "mx.init.MSRAPrelu(), N(0, 2/(1+0.25^2) / mean(fan_in, fan_out))"),
    "xavier": ("xavier_uniform", "mx.init.Xavier(), U(+-sqrt(6/(fan_in+fan_out)))"),
}


@dataclass(frozen=True)
class TrainSection:
    """Regularisation, precision, devices and bookkeeping."""

    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0
    mixup_off_epochs: int = 0  # GluonCV: no mixup in the last N epochs
    dtype: str = "float32"
    init: str = "msra_prelu"  # conv weights (see INITS); GluonCV train_imagenet.py's MSRAPrelu()
    init_fc: str = "same"  # classifier: "same" as init, or Torch7's nn.Linear default (INIT_FCS)
    init_bn_gamma: str = "one"  # BN gamma 1, or "uniform" U(0, 1) as Torch7's BN reset()
    devices: int = 1  # the reference hardware's device count (GPUs)
    kvstore: str = "device"
    seed: int = 0
    log_interval: int = 50  # iterations per logging window
    checkpoint_every: int = 1  # epochs
    eval_every: int = 1  # epochs
    keep_checkpoints: int = 2
    # Stop as diverged when a logging window's mean loss exceeds this many times the first
    # step's (at least ln(classes)); 0: no bound (non-finite values always stop a run).
    divergence_factor: float = 100.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"train.label_smoothing = {self.label_smoothing!r} must be in "
                             "[0, 1) (1 would leave no weight on the true class)")
        if not (self.divergence_factor == 0 or 1 < self.divergence_factor < math.inf):
            raise ValueError(f"train.divergence_factor = {self.divergence_factor!r} must be 0 "
                             "(no loss bound) or a finite factor above 1")
        _in_range("train.mixup_alpha", self.mixup_alpha, 0.0, 100.0)
        _at_least("train.mixup_off_epochs", self.mixup_off_epochs, 0)
        if not 0 <= self.seed < SEED_LIMIT:
            raise ValueError(f"train.seed = {self.seed!r} must be in [0, 2^32), i.e. 0 to "
                             f"{SEED_LIMIT - 1}")
        _one_of("train.dtype", self.dtype, TRAIN_DTYPES)
        if self.init in INIT_RENAMED:
            new, meaning = INIT_RENAMED[self.init]
            raise ValueError(f"train.init = {self.init!r} is the old name of {new!r} ({meaning}); "
                             f"write train.init = \"{new}\" or choose from {', '.join(INITS)}")
        _one_of("train.init", self.init, INITS)
        _one_of("train.init_fc", self.init_fc, INIT_FCS)
        _one_of("train.init_bn_gamma", self.init_bn_gamma, INIT_BN_GAMMAS)
        _one_of("train.kvstore", self.kvstore, KVSTORES)
        for key in ("devices", "log_interval", "checkpoint_every", "eval_every",
                    "keep_checkpoints"):
            _positive(f"train.{key}", getattr(self, key))


DISTILL_LOSSES = ("kl", "js")


@dataclass(frozen=True)
class DistillSection:
    """Knowledge distillation from a fixed teacher (off while ``teacher`` is empty).

    The loss is ``hard_weight * CE(student, target) + (1 - hard_weight) * T^2 * D(teacher,
    student)`` with both softmaxes at temperature T: D is KL(teacher || student) for ``"kl"``
    (Hinton et al. 2015; GluonCV train_imagenet.py ``--teacher --temperature --hard-weight``)
    or the Jensen-Shannon divergence for ``"js"`` (PaddleClas SSLD). ``weights`` is a
    ``.params`` file or a run directory of this suite (its newest valid checkpoint); a
    relative path is taken relative to the current directory when the run starts. The default
    temperature 20 and hard weight 0.5 are Bag of Tricks Sec. 5.4's and train_imagenet.py's."""

    teacher: str = ""  # a registered network name; "" = no distillation
    teacher_args: dict[str, Any] = field(default_factory=dict)
    weights: str = ""
    temperature: float = 20.0
    hard_weight: float = 0.5
    loss: str = "kl"

    def __post_init__(self) -> None:
        _one_of("distill.loss", self.loss, DISTILL_LOSSES)
        _positive("distill.temperature", self.temperature)
        _in_range("distill.hard_weight", self.hard_weight, 0.0, 1.0)
        if not self.teacher:
            given = [f.name for f in dataclasses.fields(self) if f.name != "teacher"
                     and getattr(self, f.name) != (f.default_factory() if f.default is
                                                   dataclasses.MISSING else f.default)]
            if given:
                raise ValueError(f"distill.{given[0]} is set but distill.teacher is not: name "
                                 "the teacher network (or drop the [distill] table)")

    @property
    def enabled(self) -> bool:
        return bool(self.teacher)


@dataclass(frozen=True)
class ReferenceSection:
    """The published number this recipe reproduces, with its source."""

    source: str = ""
    top1_err: float | None = None
    top5_err: float | None = None
    tolerance: float = 0.5  # percentage points
    verified: bool = False  # read in the source (true) or recalled, unchecked (false)
    recipe_code: str = ""  # the code in results/published.toml's [recipe_codes]
    direction: str = "both"  # "max": a target that may be beaten (only worse fails)
    note: str = ""

    def __post_init__(self) -> None:
        if not self.source:
            raise ValueError("reference.source is required: cite the paper and table, or the "
                             "repository, file and commit")
        _in_range("reference.tolerance", self.tolerance, 0.0, 100.0)
        for key in ("top1_err", "top5_err"):  # error rates in percent
            if getattr(self, key) is not None:
                _in_range(f"reference.{key}", getattr(self, key), 0.0, 100.0)
        _one_of("reference.direction", self.direction, ("both", "max"))


@dataclass(frozen=True)
class Recipe:
    """A fully resolved recipe (``base`` already merged)."""

    name: str
    network: str
    description: str
    reference: ReferenceSection
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    train: TrainSection = field(default_factory=TrainSection)
    network_args: dict[str, Any] = field(default_factory=dict)
    distill: DistillSection = field(default_factory=DistillSection)
    notes: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    base: str = ""
    # Why this recipe is what `bench run recipe NETWORK` trains when its network has several
    # (e.g. "GluonCV's default ResNet50_v1d weights"); never inherited from a base.
    default_for_network: str = ""


SECTIONS: dict[str, type] = {"data": DataSection, "optim": OptimSection,
                             "schedule": ScheduleSection, "train": TrainSection,
                             "distill": DistillSection, "reference": ReferenceSection}
TOP_LEVEL = ("description", "base", "network", "notes", "tags", "default_for_network",
             "network_args", *SECTIONS)


def _one_of(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{key} = {value!r} is not one of {', '.join(choices)}")


# Written as `not <comparison>` so that NaN, which fails every comparison, is refused too (the
# loader refuses NaN and infinities first; these also guard objects built in code).

def _positive(key: str, value: float) -> None:
    if not 0 < value < float("inf"):
        raise ValueError(f"{key} = {value!r} must be positive")


def _at_least(key: str, value: float, low: float) -> None:
    if not low <= value < float("inf"):
        raise ValueError(f"{key} = {value!r} must be a finite number >= {low}")


def _in_range(key: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ValueError(f"{key} = {value!r} must be between {low} and {high}")
