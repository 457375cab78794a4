"""Run records (:class:`bench.runrecord.RunRecord`) as the results layer keeps them: a run's
``result.json``, checked against its run directory and copied into ``results/runs/`` by
``bench record``.

A record is small (numbers, per-epoch history, provenance, checksums; no checkpoints) and there
is one per training run (:meth:`RunRecord.identity`: the ``run_id`` a run keeps across resumes
and copies of its directory). Recording a run again is a no-op when nothing changed, replaces
its record when the run trained further since (a stopped run resumed: the later state is the
run's result), and is refused otherwise (the same iteration with other content, or fewer
iterations: a rewrite or an older copy, not a continuation). A run of a modified recipe
(``modified``) is recorded too, as its own labelled row. Every read checks the record against
its digest and its own history (:meth:`RunRecord.from_dict`) and refuses two records of one run;
a run directory is also checked against the checksums of its files, its log, its ``run.json``
identity and the shipped recipe.
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Callable

from bench.errors import BenchError
from bench.files import atomic_write_text, read_log
from bench.results.rows import recipe_label
from bench.runrecord import RunRecord, recipe_changes, verify_files

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
    _check_run_id(run_dir, record)
    _check_modified(run_dir, record, _check_recipe(run_dir, record))
    _check_log(run_dir, record)
    return record


def _check_metrics(run_dir: Path, record: RunRecord) -> None:
    where = run_dir / "metrics.json"
    metrics = json.loads(where.read_text(encoding="utf-8"))
    for key, value in metrics.items():
        if getattr(record, key, None) != value:
            raise BenchError(f"{where}: field {key!r} is {value!r} but result.json says "
                             f"{getattr(record, key, None)!r}; {_RERUN}")


def _check_run_id(run_dir: Path, record: RunRecord) -> None:
    info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    run_id = info.get("run_id") if isinstance(info, dict) else None
    if run_id != record.run_id:
        raise BenchError(f"{run_dir}/result.json: field 'run_id' is {record.run_id!r} but "
                         f"run.json says {run_id!r}; {_RERUN}")


def _check_modified(run_dir: Path, record: RunRecord, recipe) -> None:
    """A run that differs from the shipped recipe (by value, compared here independently of
    the engine's list) must say so in ``modified``, or it would join the shipped row."""
    from bench.recipes import list_recipes, load_recipe
    if record.changed() or record.recipe not in list_recipes():
        return
    shipped = load_recipe(record.recipe)
    shipped = dataclasses.replace(shipped, train=dataclasses.replace(shipped.train,
                                                                     seed=recipe.train.seed))
    found = recipe_changes(recipe, shipped)
    if record.global_batch != recipe.optim.batch_size:
        found.append(f"global batch {record.global_batch}")
    if record.dtype != recipe.train.dtype:
        found.append(f"dtype {record.dtype}")
    if found:
        raise BenchError(f"{run_dir}/result.json: field 'modified' lists nothing, but the run "
                         f"differs from the shipped {record.recipe} ({', '.join(found[:4])}): "
                         f"an older or edited result.json, or recipes/{record.recipe}.toml "
                         "changed since the run; rerun it")


def _check_recipe(run_dir: Path, record: RunRecord):
    """The run's recipe (``recipe.json``), checked against the record's hash and reference."""
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
    return recipe


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
    """The record's file name, a function of its content: recipe, run identity (older records:
    the date of their result.json), seed and recipe hash. A run's later record has its name."""
    seed = "weights" if record.seed is None else f"seed{record.seed}"
    when = record.run_id or re.sub(r"[^0-9T]", "", str(record.date))[:15]
    return f"{record.recipe}--{when}--{seed}--{record.recipe_hash[:8]}.json"


def record_run(run_dir: Path, results: Path,
               report: Callable[[str], None] | None = None) -> Path:
    """Check ``run_dir`` and copy its record into ``results/runs/`` (:func:`store_record`);
    returns the record's path. A run of a modified recipe becomes its own labelled row."""
    record = load_record(Path(run_dir))
    _check_shipped(record, str(run_dir))
    check_run_dir(Path(run_dir))
    return store_record(record.stored(), results, str(run_dir), report)


def _check_shipped(record: RunRecord, origin: str) -> None:
    from bench.recipes import list_recipes
    if record.recipe not in list_recipes():
        raise BenchError(f"{origin}: recipe {record.recipe!r} is not shipped in recipes/; "
                         "only runs of shipped recipes go into the results table")


def store_record(record: RunRecord, results: Path, origin: str,
                 report: Callable[[str], None] | None = None) -> Path:
    """Write ``record`` into ``results/runs/`` atomically, one record per run: the same
    content again is a no-op, a later state of a recorded run (more iterations) replaces its
    record, anything else of a recorded run is refused. ``report`` gets one line saying which."""
    _check_shipped(record, origin)
    RunRecord.from_dict(record.to_dict(), origin)  # what is written must read back
    say = report or (lambda line: None)
    target = results / "runs" / record_name(record)
    old_path, old = next(((path, r) for path, r in _stored(results)
                          if r.identity() == record.identity()), (None, None))
    if old is not None and old.content() == record.content():
        say(f"already recorded: {old_path} (unchanged)")
        return old_path
    if old is None and target.exists():
        raise BenchError(f"{target} already holds a different record; not overwritten")
    if old is not None:
        why = _not_a_later_state(old, record)
        if why:
            raise BenchError(f"{origin}: {record.identity()} is already recorded as "
                             f"{old_path.name}; {why}, so it is not recorded twice (one record "
                             "per training run; delete that file to record this one instead)")
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, record.dumps())
    if old is not None and old_path != target:
        old_path.unlink()
    changed = record.changed()
    row = (f" as its own row {recipe_label(record.recipe, changed)!r} (a modified recipe: not "
           "compared with the published number)" if changed else "")
    if old is None:
        say(f"recorded {target}{row}")
    else:
        say(f"replaced {old_path.name}: the run trained on from iteration {old.iterations} to "
            f"{record.iterations}; recorded {target}{row}")
    return target


def _not_a_later_state(old: RunRecord, new: RunRecord) -> str | None:
    """Why ``new`` may not replace ``old`` (a record of the same run), or None."""
    if new.kind != "training":
        return "the same weights were evaluated the same way"
    if (new.recipe, new.recipe_hash, new.seed) != (old.recipe, old.recipe_hash, old.seed):
        return "this record names another recipe, recipe hash or seed for it"
    if (new.iterations or 0) <= (old.iterations or 0):
        return (f"this record ends at iteration {new.iterations}, the recorded one at "
                f"{old.iterations}: only a later state of a run (trained further) replaces "
                "its record")
    return None


def _stored(results: Path) -> list[tuple[Path, RunRecord]]:
    """Every checked record in ``results/runs/`` with its path, sorted by file name; refuses
    a record whose name is not its content's and two records of one run."""
    stored, seen = [], {}
    for path in sorted((results / "runs").glob("*.json")):
        record = RunRecord.load(path)
        if record.run_dir is not None:
            raise BenchError(f"{path}: field 'run_dir' is set: a recorded result has none "
                             "(`bench record RUN_DIR` copies a run's record)")
        if path.name != record_name(record):
            raise BenchError(f"{path}: its content names it {record_name(record)}; a record is "
                             "kept under the name of what it holds (re-record it)")
        first = seen.setdefault(record.identity(), path)
        if first != path:
            raise BenchError(f"{path}: a second record of {record.identity()} (the first is "
                             f"{first.name}); there is one record per training run: delete one")
        stored.append((path, record))
    return stored


def load_records(results: Path) -> list[RunRecord]:
    """Every record in ``results/runs/``, sorted by file name, each checked (digest, summary
    against history, name against content, one per run)."""
    return [record for _, record in _stored(results)]
