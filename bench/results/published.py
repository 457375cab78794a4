"""``results/published.toml``: the numbers the suite compares against.

One ``[[published]]`` entry per (network, recipe, dataset, protocol) with its source, whether it
was checked against that source, a tolerance in percentage points and, for display, the
network's parameters and GMACs as this suite counts them (``bench.models.profile``).
``direction = "max"`` marks a target that may be beaten (the digits acceptance target);
``"both"`` (default) treats a drift either way beyond the tolerance as a failure to reproduce.
"""
from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError, did_you_mean

SCHEMA = 1
DATASETS = ("imagenet", "cifar10", "cifar100", "digits", "mnist5k")
DIRECTIONS = ("both", "max")


@dataclass(frozen=True)
class Published:
    network: str
    recipe: str
    dataset: str
    protocol: str
    source: str
    verified: bool
    tolerance: float
    top1_err: float | None = None
    top5_err: float | None = None
    direction: str = "both"
    recipe_code: str = ""
    params_m: float | None = None
    gmacs: float | None = None
    note: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.network, self.recipe, self.dataset, self.protocol)


FIELDS = {f.name for f in dataclasses.fields(Published)}
REQUIRED = ("network", "recipe", "dataset", "protocol", "source", "verified", "tolerance")


def load_published(path: Path, check_names: bool = True) -> list[Published]:
    """Read and validate; every problem is one line naming the file and the entry."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise BenchError(f"no published numbers at {path}: regenerate it with "
                         "`python scripts/build_published.py`") from None
    except tomllib.TOMLDecodeError as exc:
        raise BenchError(f"{path}: not valid TOML ({exc})") from None
    if data.get("schema") != SCHEMA:
        raise BenchError(f"{path}: schema {data.get('schema')!r}, expected {SCHEMA}")
    entries, seen = [], set()
    for i, raw in enumerate(data.get("published", []), 1):
        entry = _entry(raw, f"{path} entry {i}")
        if entry.key in seen:
            raise BenchError(f"{path} entry {i}: duplicate key {entry.key}")
        seen.add(entry.key)
        if check_names:
            _check_names(entry, f"{path} entry {i}")
        entries.append(entry)
    return entries


def _entry(raw: dict, where: str) -> Published:
    unknown = set(raw) - FIELDS
    if unknown:
        key = sorted(unknown)[0]
        raise BenchError(f"{where}: unknown key {key!r}{did_you_mean(key, FIELDS)}")
    for key in REQUIRED:
        if key not in raw or raw[key] in ("", None):
            raise BenchError(f"{where}: missing {key!r}" + (
                " (cite the paper and table, or the repository, file and commit)"
                if key == "source" else ""))
    if raw.get("top1_err") is None and raw.get("top5_err") is None:
        raise BenchError(f"{where}: needs top1_err or top5_err")
    if raw["dataset"] not in DATASETS:
        raise BenchError(f"{where}: dataset {raw['dataset']!r} is not one of {', '.join(DATASETS)}")
    if raw.get("direction", "both") not in DIRECTIONS:
        raise BenchError(f"{where}: direction must be one of {', '.join(DIRECTIONS)}")
    if not isinstance(raw["verified"], bool):
        raise BenchError(f"{where}: verified must be true or false")
    try:
        return Published(**raw)
    except TypeError as exc:
        raise BenchError(f"{where}: {exc}") from None


def _check_names(entry: Published, where: str) -> None:
    from bench.models import list_models
    from bench.recipes import list_recipes
    if entry.network not in list_models():
        raise BenchError(f"{where}: network {entry.network!r} is not registered"
                         f"{did_you_mean(entry.network, list_models())}")
    if entry.recipe_code and entry.recipe.startswith(entry.recipe_code) \
            and entry.recipe not in list_recipes():
        return  # a published recipe this suite does not ship ("TV2 / resnet50 IMAGENET1K_V2")
    if entry.recipe not in list_recipes():
        raise BenchError(f"{where}: recipe {entry.recipe!r} is not shipped in recipes/"
                         f"{did_you_mean(entry.recipe, list_recipes())}")


# --- the compute of an evaluation -----------------------------------------------------------
WEIGHTS_SUFFIX = " (published weights)"
# `bench eval --dtype int8|bfloat16 --record`: the converted net's own protocol row, compared
# with the recipe's fp32 reference (protocol ``base``) and its tolerance, so the gate fails when
# a precision costs more accuracy than the recipe allows. The one place these labels are made.
_PRECISION_PROTOCOL = re.compile(r"^(?P<base>.+) \((?P<precision>(?:int8|bfloat16|float32 fused)"
                                 r"(?: [^()]*)?)\)$")


def precision_label(dtype: str, fused: bool = False, calibration: dict | None = None) -> str:
    """What a converted net's protocol says of its precision: ``bfloat16``, ``float32 fused``,
    ``int8 naive, 10 calib batches`` (granularity and exclusions named when not the default)."""
    if dtype != "int8":
        return dtype + (" fused" if fused else "")
    calibration = calibration or {}
    text = f"int8 {calibration['mode']}, {calibration['batches']} calib batches"
    if calibration.get("granularity", "tensor-wise") != "tensor-wise":
        text += f", {calibration['granularity']}"
    if not calibration.get("default_exclusions", True):
        text += f", fp32 layers {'+'.join(calibration.get('excluded') or []) or 'none'}"
    return text


def precision_protocol(protocol: str, label: str) -> str:
    """``full (int8 naive, 10 calib batches)``: ``protocol`` evaluated in a precision."""
    return f"{protocol} ({label})"


def split_precision(protocol: str) -> tuple[str, str | None]:
    """(the fp32 protocol, the precision label) of a protocol; (protocol, None) for fp32."""
    found = _PRECISION_PROTOCOL.match(protocol)
    return (found["base"], found["precision"]) if found else (protocol, None)


def protocol_crops(protocol: str, dataset: str) -> tuple[int, int | None] | None:
    """(crops per image, crop size; None: the recipe's own input size) of a protocol label, as
    :func:`bench.data.spec.protocol_label` and ``scripts/build_published.py`` spell them:
    ``center`` / ``10crop`` are 224 crops on ImageNet, ``center 320 from 320`` names its size,
    ``other: ...`` texts name one crop size. None when the label names no single size
    (``multi-scale (fully convolutional)``)."""
    import re
    from bench.data.spec import STANDARD_EVAL
    label = split_precision(protocol)[0].removesuffix(WEIGHTS_SUFFIX)
    crops = 10 if label.startswith("10crop") else 1
    if label == "full":
        return 1, None
    sized = re.match(r"^\S+ (\d+)\b", label)
    if sized and not label.startswith("other:"):
        return crops, int(sized.group(1))
    if label.startswith("other:"):
        named = re.search(r"crop (\d{3})\b", label)
        sizes = set(re.findall(r"\b(\d{3})\b", label))
        if named:
            return crops, int(named.group(1))
        return (crops, int(sizes.pop())) if len(sizes) == 1 else None
    if label == "center" or re.fullmatch(r"10crop\S*", label):  # any 10-crop variant
        return crops, STANDARD_EVAL[0] if dataset == "imagenet" else None
    return None


def eval_gmacs(entry: Published) -> float | None:
    """GMACs to evaluate one image under the entry's protocol: ``gmacs`` (counted at the
    recipe's input size, 224 on ImageNet) times the crops, times (crop / 224)^2 for a larger
    or smaller crop. Convolutions scale with the crop's area exactly when it is a multiple of
    32; the classifier (2 MMACs for ResNet-50) does not, so this is within 0.1 %."""
    from bench.data.spec import STANDARD_EVAL
    crops = protocol_crops(entry.protocol, entry.dataset)
    if entry.gmacs is None or crops is None:
        return None
    count, size = crops
    if size is None:
        return entry.gmacs * count
    if entry.dataset != "imagenet":
        return None  # a crop size on CIFAR-sized data: its base size is not known here
    return entry.gmacs * count * (size / STANDARD_EVAL[0]) ** 2
