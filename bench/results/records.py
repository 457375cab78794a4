"""Run records (:class:`bench.runrecord.RunRecord`) as the results layer keeps them: a run's
``result.json``, checked against its run directory and copied into ``results/runs/`` by
``bench record``.

A record is small (numbers, per-epoch history, provenance, checksums; no checkpoints) and
immutable: the file name carries the recipe, date, seed and recipe hash, and recording the same
run twice is a no-op while a different record under the same name is refused. Every read checks
the record against its digest and its own history (:meth:`RunRecord.from_dict`); a run
directory is also checked against the checksums of its files and its log.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from bench.errors import BenchError
from bench.files import atomic_write_text, read_log
from bench.runrecord import RunRecord, verify_files

_RERUN = "the run directory changed after the run: rerun it"


def load_record(path: Path) -> RunRecord:
    """A checked record from a ``result.json`` file or a run directory (its own consistency
    only; :func:`check_run_dir` also checks the directory's files)."""
    path = Path(path)
    return RunRecord.load(path / "result.json" if path.is_dir() else path)


def check_run_dir(run_dir: Path) -> RunRecord:
    """A run directory's record after checking it against the directory: the files' sha256,
    ``metrics.json``, the recipe in ``recipe.json`` and the evaluations in ``log.jsonl``."""
    run_dir = Path(run_dir)
    record = load_record(run_dir)
    if record.kind != "training":
        raise BenchError(f"{run_dir}/result.json: a {record.kind} record is not a run's")
    verify_files(run_dir, record.files, f"{run_dir}/result.json")
    _check_metrics(run_dir, record)
    _check_recipe(run_dir, record)
    _check_log(run_dir, record)
    return record


def _check_metrics(run_dir: Path, record: RunRecord) -> None:
    where = run_dir / "metrics.json"
    metrics = json.loads(where.read_text(encoding="utf-8"))
    for key, value in metrics.items():
        if getattr(record, key, None) != value:
            raise BenchError(f"{where}: field {key!r} is {value!r} but result.json says "
                             f"{getattr(record, key, None)!r}; {_RERUN}")


def _check_recipe(run_dir: Path, record: RunRecord) -> None:
    from bench.recipes import recipe_from_dict, recipe_hash
    where = run_dir / "recipe.json"
    recipe = recipe_from_dict(json.loads(where.read_text(encoding="utf-8")), str(where))
    if recipe_hash(recipe) != record.recipe_hash:
        raise BenchError(f"{run_dir}/result.json: field 'recipe_hash' is {record.recipe_hash!r} "
                         f"but recipe.json hashes to {recipe_hash(recipe)!r}; {_RERUN}")
    ref = recipe.reference
    for key, value in record.reference.items():
        if getattr(ref, key) != value:
            raise BenchError(f"{run_dir}/result.json: field 'reference' says {key} = {value!r} "
                             f"but recipe.json says {getattr(ref, key)!r}; {_RERUN}")


def _check_log(run_dir: Path, record: RunRecord) -> None:
    """Every evaluation in the record's history was logged as it happened."""
    keys = ("epoch", "iteration", "top1_err", "top5_err", "num_samples")
    logged = {tuple(e.get(k) for k in keys) for e in read_log(run_dir / "log.jsonl")
              if e.get("event") in ("epoch", "eval")}
    for entry in record.history:
        if tuple(entry[k] for k in keys) not in logged:
            raise BenchError(f"{run_dir}/result.json: field 'history' has an evaluation at "
                             f"iteration {entry['iteration']} that log.jsonl does not; {_RERUN}")


def record_name(record: RunRecord) -> str:
    date = re.sub(r"[^0-9T]", "", str(record.date))[:15]
    seed = "weights" if record.seed is None else f"seed{record.seed}"
    return f"{record.recipe}--{date}--{seed}--{record.recipe_hash[:8]}.json"


def record_run(run_dir: Path, results: Path) -> Path:
    """Check ``run_dir`` and copy its record into ``results/runs/``; returns the record's path.
    A run of a modified recipe (--set, --epochs) is refused: its numbers are not the shipped
    recipe's."""
    record = load_record(Path(run_dir))
    _check_shipped(record, str(run_dir))
    check_run_dir(Path(run_dir))
    if record.shipped_recipe_hash != record.recipe_hash:
        changes = "; ".join(record.changes) or "a recipe file or --set changed it"
        raise BenchError(f"{run_dir}: trained a modified {record.recipe} (recipe hash "
                         f"{record.recipe_hash[:8]}, the shipped recipe's is "
                         f"{str(record.shipped_recipe_hash)[:8]}: {changes}); only runs of the "
                         "shipped recipe go into its row")
    return store_record(record.stored(), results, str(run_dir))


def _check_shipped(record: RunRecord, origin: str) -> None:
    from bench.recipes import list_recipes
    if record.recipe not in list_recipes():
        raise BenchError(f"{origin}: recipe {record.recipe!r} is not shipped in recipes/; "
                         "only runs of shipped recipes go into the results table")


def store_record(record: RunRecord, results: Path, origin: str) -> Path:
    """Write ``record`` into ``results/runs/`` atomically; the same record twice is a no-op, a
    different one under the same name is refused."""
    _check_shipped(record, origin)
    RunRecord.from_dict(record.to_dict(), origin)  # what is written must read back
    text = record.dumps()
    target = results / "runs" / record_name(record)
    if target.exists():
        if target.read_text(encoding="utf-8") == text:
            return target
        raise BenchError(f"{target} already holds a different record; not overwritten")
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, text)
    return target


def load_records(results: Path) -> list[RunRecord]:
    """Every record in ``results/runs/``, sorted by file name, each checked (digest, summary
    against history, name against content)."""
    records = []
    for path in sorted((results / "runs").glob("*.json")):
        record = RunRecord.load(path)
        if record.run_dir is not None:
            raise BenchError(f"{path}: field 'run_dir' is set: a recorded result has none "
                             "(`bench record RUN_DIR` copies a run's record)")
        if path.name != record_name(record):
            raise BenchError(f"{path}: its content names it {record_name(record)}; a record is "
                             "kept under the name of what it holds (re-record it)")
        records.append(record)
    return records
