"""The run's summary files: ``metrics.json`` (numbers) and ``result.json`` (numbers, the
recipe's reference and full provenance; the results layer reads only this)."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bench.data.spec import protocol_label
from bench.files import atomic_write_text
from bench.recipes import Recipe


RESULT_SCHEMA = 1


def write_result(run_dir: Path, recipe: Recipe, metrics: dict[str, Any], r_hash: str) -> Path:
    """``result.json``: the run's record for the results layer (versioned schema): its numbers,
    the recipe's reference, when it first got within tolerance, and full provenance."""
    from bench.provenance import provenance
    info = json.loads((run_dir / "run.json").read_text())
    ref = recipe.reference
    reached = None
    if ref.top1_err is not None:
        for entry in metrics["history"]:
            if not entry.get("partial") and entry["top1_err"] <= ref.top1_err + ref.tolerance:
                reached = {"epoch": entry["epoch"], "train_time_s": entry["train_time_s"]}
                break
    now = provenance()
    result = {"schema": RESULT_SCHEMA, "run_dir": str(run_dir), "recipe_hash": r_hash,
              **{k: v for k, v in metrics.items() if k != "history"},
              "wall_time_s": time.time() - _started(run_dir),
              "reference": {"top1_err": ref.top1_err, "top5_err": ref.top5_err,
                            "tolerance": ref.tolerance, "source": ref.source,
                            "verified": ref.verified, "direction": ref.direction},
              "reached_reference": reached, "history": metrics["history"],
              "command": info.get("command"), "started": info.get("date"),
              "date": now["date"], "git": info.get("git"), "versions": info.get("versions"),
              "hardware": info.get("hardware"), "changes": info.get("changes", [])}
    path = run_dir / "result.json"
    atomic_write_text(path, json.dumps(result, indent=2))
    return path


def _started(run_dir: Path) -> float:
    return (run_dir / "recipe.json").stat().st_mtime


def metrics_summary(recipe: Recipe, setup, state: dict, stop_reason: str | None) -> dict[str, Any]:
    """The final numbers: last evaluation, progress, speed and the per-epoch history."""
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
            "history": state["history"]}
