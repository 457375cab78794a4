"""Test fixtures for the results layer: a small published.toml and run records. They live
under tests/ and are written to temporary folders, never into results/."""
from __future__ import annotations

import json
from pathlib import Path

PUBLISHED = """
schema = 1
[recipe_codes]
"HE15-C10" = "fixture"

[[published]]
network = "cifar_resnet20_v1_a"
recipe = "he2015_cifar10_resnet20"
dataset = "cifar10"
protocol = "full"
top1_err = 8.75
tolerance = 0.5
verified = true
source = "fixture: He et al. 2015 Table 6"
gmacs = 0.041

[[published]]
network = "cifar_resnet56_v1_a"
recipe = "he2015_cifar10_resnet56"
dataset = "cifar10"
protocol = "full"
top1_err = 6.97
tolerance = 0.5
verified = true
source = "fixture: He et al. 2015 Table 6"
gmacs = 0.126

[[published]]
network = "cifar_resnet110_v1_a"
recipe = "he2015_cifar10_resnet110"
dataset = "cifar10"
protocol = "full"
top1_err = 6.43
tolerance = 0.5
verified = true
source = "fixture: He et al. 2015 Table 6"

[[published]]
network = "cifar_resnet20_v1"
recipe = "gluoncv_cifar_resnet20_v1"
dataset = "cifar10"
protocol = "full"
top1_err = 7.9
tolerance = 0.5
verified = false
source = "fixture: GluonCV CIFAR10.csv"
"""


def write_published(results: Path, text: str = PUBLISHED) -> Path:
    results.mkdir(parents=True, exist_ok=True)
    path = results / "published.toml"
    path.write_text(text)
    return path


def record(recipe: str, network: str, top1: float, seed: int = 0, complete: bool = True,
           dataset: str = "cifar10", protocol: str = "full", **extra) -> dict:
    return {"schema": 1, "recipe": recipe, "recipe_hash": f"{seed:016x}", "network": network,
            "dataset": dataset, "protocol": protocol, "top1_err": top1, "top5_err": 0.3,
            "complete": complete, "seed": seed, "epochs_done": 164, "train_time_s": 7200.0,
            "date": f"2026-11-2{seed}T00:00:00+00:00",
            "git": {"commit": "0123456789abcdef", "dirty": False},
            "versions": {"mxnet": "1.9.1"}, "command": "bench run recipe " + recipe,
            "hardware": {"cpu": "fixture CPU", "cpu_cores": 2, "gpus": ["Tesla V100"]},
            "reference": {"top1_err": 8.75, "top5_err": None, "tolerance": 0.5,
                          "source": "fixture", "verified": True, "direction": "both"},
            "history": [{"epoch": 1, "top1_err": top1 + 10, "train_time_s": 10.0,
                         "partial": False}], **extra}


def write_run(folder: Path, rec: dict) -> Path:
    """A run directory with result.json (and a small log for plots)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").write_text(json.dumps(rec))
    log = [{"event": "start", "recipe": rec["recipe"]},
           {"event": "window", "iteration": 10, "train_error": 0.5},
           {"event": "epoch", "epoch": 1, "top1_err": 40.0},
           {"event": "window", "iteration": 20, "train_error": 0.3},
           {"event": "epoch", "epoch": 2, "top1_err": 25.0}]
    (folder / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in log))
    return folder
