"""Run records: a run's ``result.json``, copied into ``results/runs/`` by ``bench record``.

A record is small (numbers, per-epoch history, provenance; no checkpoints) and immutable: the
file name carries the recipe, date, seed and recipe hash, and recording the same run twice is a
no-op while a different record under the same name is refused.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bench.errors import BenchError

SCHEMA = 1
REQUIRED = ("schema", "recipe", "recipe_hash", "network", "dataset", "protocol", "top1_err",
            "top5_err", "complete", "seed", "epochs_done", "train_time_s", "date", "git",
            "versions", "hardware", "command")


def load_record(path: Path) -> dict[str, Any]:
    """A validated record; a missing, malformed or foreign file is a one-line error."""
    path = Path(path)
    if path.is_dir():
        path = path / "result.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchError(f"no run record at {path}: a run writes result.json when it finishes "
                         "or stops") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchError(f"{path} is not a readable run record ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(record, dict):
        raise BenchError(f"{path} is not a run record (not a JSON object)")
    if record.get("schema") != SCHEMA:
        raise BenchError(f"{path}: record schema {record.get('schema')!r}, this suite reads "
                         f"schema {SCHEMA}")
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        raise BenchError(f"{path}: run record lacks {', '.join(missing)}")
    return record


def record_name(record: dict[str, Any]) -> str:
    date = re.sub(r"[^0-9T]", "", str(record["date"]))[:15]
    seed = "weights" if record["seed"] is None else f"seed{record['seed']}"
    return f"{record['recipe']}--{date}--{seed}--{record['recipe_hash'][:8]}.json"


def record_run(run_dir: Path, results: Path) -> Path:
    """Copy ``run_dir/result.json`` into ``results/runs/``; returns the record's path."""
    record = load_record(Path(run_dir))
    return store_record({k: v for k, v in record.items() if k != "run_dir"}, results,
                        str(run_dir))


def store_record(record: dict[str, Any], results: Path, origin: str) -> Path:
    """Write ``record`` into ``results/runs/`` atomically; the same record twice is a no-op, a
    different one under the same name is refused."""
    from bench.files import atomic_write_text
    from bench.recipes import list_recipes
    if record["recipe"] not in list_recipes():
        raise BenchError(f"{origin}: recipe {record['recipe']!r} is not shipped in recipes/; "
                         "only runs of shipped recipes go into the results table")
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    target = results / "runs" / record_name(record)
    if target.exists():
        if target.read_text(encoding="utf-8") == text:
            return target
        raise BenchError(f"{target} already holds a different record; not overwritten")
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, text)
    return target


def load_records(results: Path) -> list[dict[str, Any]]:
    """Every record in ``results/runs/``, sorted by file name."""
    return [dict(load_record(p), _file=p.name)
            for p in sorted((results / "runs").glob("*.json"))]
