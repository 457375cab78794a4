"""The run's summary files: ``metrics.json`` (numbers) and ``result.json`` (the run record,
:class:`bench.runrecord.RunRecord`: numbers, the recipe's reference, the run's identity and what
it changed from the shipped recipe, provenance, checksums of the run's files; the results layer
reads only this)."""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from bench.data.spec import protocol_label
from bench.engine.checkpoint import latest_checkpoint
from bench.files import read_log
from bench.recipes import Recipe
from bench.runrecord import RunRecord, reached_reference, recipe_changes, run_files


def write_result(run_dir: Path, recipe: Recipe, metrics: dict[str, Any], r_hash: str) -> Path:
    """``result.json``: the run's record for the results layer (versioned schema): its numbers,
    the recipe's reference, when it first got within tolerance, full provenance and the
    checksums of ``recipe.json``, ``run.json``, ``log.jsonl``, ``metrics.json`` (written
    before) and the final checkpoint."""
    from bench.provenance import provenance
    info = json.loads((run_dir / "run.json").read_text())
    ref = recipe.reference
    reference = {"top1_err": ref.top1_err, "top5_err": ref.top5_err,
                 "tolerance": ref.tolerance, "source": ref.source,
                 "verified": ref.verified, "direction": ref.direction}
    now = provenance()
    record = RunRecord(
        kind="training", run_dir=str(run_dir), recipe_hash=r_hash,
        shipped_recipe_hash=shipped_recipe_hash(recipe),
        **{k: v for k, v in metrics.items() if k != "history"},
        wall_time_s=time.time() - _started(run_dir), reference=reference,
        reached_reference=reached_reference(metrics["history"], reference),
        history=metrics["history"], command=info.get("command"), started=info.get("date"),
        date=now["date"], git=info.get("git"), versions=info.get("versions"),
        hardware=info.get("hardware"), changes=info.get("changes", []),
        run_id=info.get("run_id"), modified=modifications(run_dir, recipe, info, metrics),
        files=run_files(run_dir, latest_checkpoint(run_dir)))
    path = run_dir / "result.json"
    record.dump(path)
    return path


def shipped_recipe_hash(recipe: Recipe) -> str | None:
    """The hash of the shipped recipe of this name trained with this run's seed: it differs
    from the run's own hash when --set/--epochs (or a recipe file of the same name) changed
    what was trained."""
    from bench.recipes import recipe_hash
    shipped = _shipped(recipe)
    return None if shipped is None else recipe_hash(shipped)


def modifications(run_dir: Path, recipe: Recipe, info: dict[str, Any],
                  metrics: dict[str, Any]) -> list[str]:
    """What makes this run differ from the shipped recipe of its name (with its seed), in the
    words of the command line: ``--epochs N``, every other changed value as ``key=value``
    (``--set``, or a recipe file of the same name), ``--batch-size N`` (or ``batch N`` when
    the memory rule chose it; a global batch changes the LR and the schedule length, not the
    recipe), ``dtype D`` (a precision fallback) and ``--max-steps N`` (stopped there). Empty
    for a run of the recipe as shipped; ``bench record`` keeps the others in their own row.
    (Devices and workers are not listed: the global batch, so the training, is the same.)"""
    shipped = _shipped(recipe)
    if shipped is None:
        return []
    from bench.engine.runplan import RunOptions, apply_options
    options = info.get("options") or {}
    out, expected = [], shipped
    epochs = options.get("epochs")
    if epochs is not None and epochs != shipped.schedule.epochs:
        out.append(f"--epochs {epochs}")
        expected = apply_options(shipped, RunOptions(epochs=epochs))[0]
    out += recipe_changes(recipe, expected)
    batch = metrics["global_batch"]
    if batch != recipe.optim.batch_size:
        out.append(f"--batch-size {batch}" if options.get("batch_size") == batch
                   else f"batch {batch}")
    if metrics["dtype"] != recipe.train.dtype:
        out.append(f"dtype {metrics['dtype']}")
    if _stopped_by_max_steps(run_dir):
        out.append(f"--max-steps {metrics['iterations']}")
    return out


def _shipped(recipe: Recipe) -> Recipe | None:
    """The shipped recipe of ``recipe``'s name with its seed (None: no such recipe)."""
    from bench.recipes import list_recipes, load_recipe
    if recipe.name not in list_recipes():
        return None
    shipped = load_recipe(recipe.name)
    return dataclasses.replace(
        shipped, train=dataclasses.replace(shipped.train, seed=recipe.train.seed))


def _stopped_by_max_steps(run_dir: Path) -> bool:
    """Whether this session of the run (since its last start or resume) stopped at
    ``--max-steps``: the log's last start, resume or stop event says so."""
    events = [e for e in read_log(run_dir / "log.jsonl")
              if e.get("event") in ("start", "resume", "stop")]
    return bool(events) and events[-1]["event"] == "stop" and \
        events[-1].get("reason") == "max_steps"


def _started(run_dir: Path) -> float:
    return (run_dir / "recipe.json").stat().st_mtime


def chance_error(classes: int) -> float:
    """The top-1 error (%) at and above which a run counts as at chance level: that of a
    uniform guess, 100 (1 - 1/classes), less a margin of min(50 / classes, 5) points of
    accuracy (a network that always answers one class of a balanced evaluation set gets
    100 (1 - 1/classes) exactly; on the digits test set, 35 to 37 images a class of 360,
    89.7 % or more). 10 classes: 85 %, 100: 98.5 %, 1000: 99.85 %."""
    return 100.0 * (1.0 - 1.0 / classes) - min(50.0 / classes, 5.0)


def outcome(recipe: Recipe, top1_err: float | None, classes: int, complete: bool) -> str | None:
    """``"chance"`` for a complete run whose final top-1 error is at chance level
    (:func:`chance_error`) while its reference is far lower (at most half of that), else
    ``"learned"``; None when there is nothing to judge (an incomplete run, no evaluation, no
    reference top-1 error, or synthetic data, whose labels are random: chance is all it can
    reach)."""
    reference = recipe.reference.top1_err
    if (not complete or top1_err is None or reference is None or classes < 2
            or recipe.data.dataset == "synthetic"):
        return None
    threshold = chance_error(classes)
    return "chance" if top1_err >= threshold and reference <= threshold / 2 else "learned"


def metrics_summary(recipe: Recipe, setup, state: dict, stop_reason: str | None,
                    classes: int) -> dict[str, Any]:
    """The final numbers: last evaluation, progress, speed, the outcome (:func:`outcome`) and
    the per-epoch history."""
    last = state["history"][-1] if state["history"] else {}
    return {"recipe": recipe.name, "network": recipe.network, "dataset": recipe.data.dataset,
            "protocol": protocol_label(recipe.data), "top1_err": last.get("top1_err"),
            "top5_err": last.get("top5_err"), "num_eval_samples": last.get("num_samples"),
            "epochs_done": state["epoch"], "epochs": setup.epochs,
            "iterations": state["iteration"], "total_iterations": setup.total_iters,
            "train_time_s": state["train_time"],
            "train_images_per_s": state["images"] / state["train_time"] if state["train_time"] else None,
            "seed": recipe.train.seed, "global_batch": setup.plan.global_batch,
            "workers": setup.workers,
            "lr": setup.plan.lr, "dtype": setup.dtype, "complete": stop_reason is None,
            "outcome": outcome(recipe, last.get("top1_err"), classes, stop_reason is None),
            "history": state["history"]}
