"""Test fixtures for the results layer: a small published.toml, run records and run
directories. They live under tests/ and are written to temporary folders, never into results/.

A fixture record is consistent (its summary is its history's) and a fixture run directory holds
the files a run writes, with their checksums in its result.json, so the records pass the checks
a real run's record passes; tests then break one thing at a time.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from bench.recipes import list_recipes, load_recipe, recipe_hash, recipe_to_dict
from bench.runrecord import RunRecord, recipe_changes, run_files

PUBLISHED = """
schema = 1
[recipe_codes]
"HE15-C10" = "fixture"
"TV" = "fixture: a peer's number no recipe here trains"

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

[[published]]
network = "cifar_resnet56_v1"
recipe = "TV / ResNet-56 (a peer's recipe)"
dataset = "cifar10"
protocol = "full"
top1_err = 6.5
tolerance = 0.5
verified = true
source = "fixture: a peer's model zoo"
recipe_code = "TV"
gmacs = 0.126
"""


def write_published(results: Path, text: str = PUBLISHED) -> Path:
    results.mkdir(parents=True, exist_ok=True)
    path = results / "published.toml"
    path.write_text(text)
    return path


def _recipe(name: str, seed: int):
    """The shipped recipe ``name`` with ``seed`` (None for a recipe that is not shipped)."""
    if name not in list_recipes():
        return None
    shipped = load_recipe(name)
    return dataclasses.replace(shipped, train=dataclasses.replace(shipped.train, seed=seed))


def modified_recipe(name: str, seed: int, **values: Any):
    """The shipped recipe ``name`` with ``seed`` and ``values`` ({"optim__lr": 0.05} sets
    optim.lr), as a run with ``--set`` trains it."""
    trained = _recipe(name, seed)
    for key, value in values.items():
        section, field = key.split("__")
        trained = dataclasses.replace(trained, **{section: dataclasses.replace(
            getattr(trained, section), **{field: value})})
    return trained


def record(recipe: str, network: str, top1: float, seed: int = 0, complete: bool = True,
           dataset: str = "cifar10", protocol: str = "full", epochs: int = 3,
           run_id: str | None = None, trained=None, global_batch: int = 128,
           modified: list[str] | None = None) -> RunRecord:
    """A consistent record of a run whose last of ``epochs`` evaluations gives ``top1``
    (``complete=False``: the run stopped one epoch before the end of its schedule). ``run_id``
    by default is a function of the arguments; ``trained`` (:func:`modified_recipe`) and
    ``global_batch`` make it a run of a modified recipe, ``modified`` by default lists what
    differs as the engine would."""
    shipped = _recipe(recipe, seed)
    trained = trained or shipped
    r_hash = recipe_hash(trained) if trained else f"{seed:016x}"
    if modified is None:
        modified = recipe_changes(trained, shipped) if shipped else []
        modified += [f"--batch-size {global_batch}"] if global_batch != 128 else []
    if run_id is None:
        key = json.dumps([recipe, network, top1, seed, complete, epochs, modified])
        run_id = "20261120T000000Z-" + hashlib.sha256(key.encode()).hexdigest()[:8]
    ref = trained.reference if trained else None
    reference = ({"top1_err": ref.top1_err, "top5_err": ref.top5_err, "tolerance": ref.tolerance,
                  "source": ref.source, "verified": ref.verified, "direction": ref.direction}
                 if ref else {"top1_err": 8.75, "top5_err": None, "tolerance": 0.5,
                              "source": "fixture", "verified": True, "direction": "both"})
    schedule = epochs + (0 if complete else 1)
    history = [{"epoch": e, "iteration": 10 * e, "top1_err": top1 + 10.0 * (epochs - e),
                "top5_err": 0.3, "num_samples": 100, "epoch_time_s": 3.0,
                "train_time_s": 3.0 * e, "partial": False} for e in range(1, epochs + 1)]
    last = history[-1]
    from bench.runrecord import reached_reference
    return RunRecord(
        kind="training", recipe=recipe, recipe_hash=r_hash,
        shipped_recipe_hash=recipe_hash(shipped) if shipped else r_hash,
        network=network, dataset=dataset, protocol=protocol, seed=seed,
        top1_err=last["top1_err"], top5_err=last["top5_err"], num_eval_samples=100,
        complete=complete, epochs_done=epochs, epochs=schedule, iterations=last["iteration"],
        total_iterations=10 * schedule, train_time_s=last["train_time_s"],
        train_images_per_s=last["iteration"] * global_batch / last["train_time_s"],
        global_batch=global_batch, run_id=run_id, modified=modified,
        workers=1, lr=0.1, dtype="float32", wall_time_s=12.0, reference=reference,
        reached_reference=reached_reference(history, reference), history=history, files={},
        changes=[], command=f"bench run recipe {recipe}", started=f"2026-11-2{seed}T00:00:00+00:00",
        date=f"2026-11-2{seed}T01:00:00+00:00",
        git={"commit": "0123456789abcdef", "dirty": False}, versions={"mxnet": "1.9.1"},
        hardware={"cpu": "fixture CPU", "cpu_cores": 2, "gpus": ["Tesla V100"]})


def write_run(folder: Path, rec: RunRecord, trained=None) -> Path:
    """A run directory as a run leaves it: recipe.json (``trained``, by default the shipped
    recipe), run.json, log.jsonl, metrics.json, a final checkpoint and result.json with their
    checksums."""
    folder.mkdir(parents=True, exist_ok=True)
    trained = trained or _recipe(rec.recipe, rec.seed)
    (folder / "recipe.json").write_text(json.dumps(recipe_to_dict(trained) if trained else {}))
    (folder / "run.json").write_text(json.dumps({"run_id": rec.run_id, "command": rec.command,
                                                 "date": rec.started}))
    log = [{"event": "start", "recipe": rec.recipe}]
    for entry in rec.history:
        log += [{"event": "window", "iteration": entry["iteration"] - 5, "train_error": 0.5},
                {"event": "window", "iteration": entry["iteration"], "train_error": 0.3},
                {"event": "epoch", **entry}]
    (folder / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in log))
    metrics = {k: v for k, v in rec.content().items() if k in METRICS}
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
    ckpt = folder / "checkpoints" / f"ckpt-{rec.epochs_done:04d}-{rec.iterations:08d}"
    ckpt.mkdir(parents=True)
    for name in ("net.params", "trainer.states", "state.json"):
        (ckpt / name).write_bytes(name.encode() * 10)
    full = dataclasses.replace(rec, files=run_files(folder, ckpt), run_dir=str(folder))
    full.dump(folder / "result.json")
    with open(folder / "log.jsonl", "a") as f:  # the run logs its end after result.json
        f.write(json.dumps({"event": "end", "top1_err": rec.top1_err}) + "\n")
    return folder


METRICS = ("recipe", "network", "dataset", "protocol", "top1_err", "top5_err",
           "num_eval_samples", "epochs_done", "epochs", "iterations", "total_iterations",
           "train_time_s", "train_images_per_s", "seed", "global_batch", "workers", "lr",
           "dtype", "complete", "outcome", "history")
