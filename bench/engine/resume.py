"""What ``--resume RUN_DIR`` will do, decided before anything is written.

A resume continues a run; it never rewrites one. So it refuses, with one line and before any file
is opened for writing, when: another process trains in the directory (:mod:`.lock`); the
directory is not a run; a recipe name is given that is not the run's; the run is complete (its
``result.json`` says so); ``--max-steps`` is not above the steps done. It continues from the
newest *valid* checkpoint (:func:`bench.engine.checkpoint.newest_valid_checkpoint`): newer ones
that are corrupt are skipped, each with its reason, and set aside when training starts.

``--dry-run`` runs the same checks and prints :func:`describe_resume` instead of training.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.engine.checkpoint import list_checkpoints, newest_valid_checkpoint
from bench.engine.lock import refuse_if_locked
from bench.engine.runplan import RunOptions, Setup, describe, prepare
from bench.errors import BenchError
from bench.recipes import Recipe, recipe_from_dict, recipe_hash


# The trainer's ``extra`` in a checkpoint (what _Training.save writes), checked before a resume
# restores it.
EXTRA_TYPES = {"history": list, "train_time": (int, float), "images": int, "seed": int,
               "gate": dict}


@dataclass
class ResumePoint:
    """A run directory and the checkpoint a resume continues from."""

    run_dir: Path
    recipe: Recipe
    options: RunOptions  # the command line's, with the run's own global batch, data and kvstore
    checkpoint: Path
    state: dict[str, Any]  # the checkpoint's state.json
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # newer ones, and why
    fingerprint: tuple = ()  # what the directory looked like: see :func:`check_unchanged`
    teacher: dict[str, Any] | None = None  # run.json's teacher record, its file checked

    @property
    def iteration(self) -> int:
        return self.state["iteration"]


def plan_resume(run_dir: Path, options: RunOptions, asked: str | None = None) -> ResumePoint:
    """Every check a resume makes before it starts, reading only; ``asked`` is the recipe or
    network name given with ``--resume`` (None: none given)."""
    run_dir = Path(run_dir)
    recipe, info = read_run(run_dir)
    check_name(run_dir, recipe, asked)
    check_not_complete(run_dir)
    from bench.engine.distill import check_resume_teacher
    teacher = check_resume_teacher(run_dir, recipe, info)
    fingerprint = _fingerprint(run_dir)
    checkpoint, state, skipped = newest_valid_checkpoint(run_dir, recipe_hash(recipe),
                                                         EXTRA_TYPES)
    point = ResumePoint(run_dir, recipe, resume_options(options, info), checkpoint, state,
                        skipped, fingerprint, teacher)
    check_max_steps(point, options.max_steps)
    return point


def dry_run_resume(run_dir: Path, options: RunOptions, asked: str | None = None) -> list[str]:
    """What ``--resume RUN_DIR --dry-run`` prints, after the resume's own checks (the same
    refusals); reads only."""
    refuse_if_locked(run_dir)
    point = plan_resume(run_dir, options, asked)
    return describe_resume(point, prepare(point.recipe, point.options))


def read_run(run_dir: Path) -> tuple[Recipe, dict[str, Any]]:
    """The run's recipe (``recipe.json``) and ``run.json``, or one line saying it is no run."""
    run_dir = Path(run_dir)

    def not_a_run(why: str) -> BenchError:
        return BenchError(f"cannot resume {run_dir}: not a run directory ({why})")

    if not run_dir.is_dir():
        raise not_a_run("no such directory" if not run_dir.exists() else "not a directory")
    try:
        raw = json.loads((run_dir / "recipe.json").read_text(encoding="utf-8"))
        info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise not_a_run(str(exc)) from None
    if not isinstance(raw, dict):
        raise not_a_run("recipe.json is not a JSON object")
    recipe = recipe_from_dict(raw, str(run_dir / "recipe.json"))
    plan = info.get("plan") if isinstance(info, dict) else None
    batch = plan.get("global_batch") if isinstance(plan, dict) else None
    if type(batch) is not int or batch < 1:
        raise not_a_run("run.json lacks plan.global_batch")
    stored = info.get("options")
    if not isinstance(stored, dict) or any(
            not isinstance(stored.get(k), (str, type(None))) for k in ("data_dir", "kvstore")):
        raise not_a_run("run.json lacks its options")
    return recipe, info


def resume_options(options: RunOptions, info: dict[str, Any]) -> RunOptions:
    """The command line's options with the run's global batch (so its LR and schedule), and
    its data directory and kvstore unless given again."""
    stored = info["options"]
    return dataclasses.replace(
        options, batch_size=info["plan"]["global_batch"], epochs=None, seed=None,
        data_dir=options.data_dir or stored.get("data_dir"),
        kvstore=options.kvstore or stored.get("kvstore"))


def check_name(run_dir: Path, recipe: Recipe, asked: str | None) -> None:
    """A name given with --resume must be the run's recipe, or a network whose default recipe
    it is (what ``bench run recipe NAME`` would have trained)."""
    if not asked or asked == recipe.name:
        return
    from bench.recipes.resolve import resolve
    try:
        resolution = resolve(asked)
    except BenchError:
        resolution = None
    resolved = resolution.recipe if resolution is not None else None
    if resolved is not None and resolved.endswith(".toml"):
        resolved = Path(resolved).stem  # a recipe file: its name is its stem
    if resolved == recipe.name:
        return
    also = f" ({asked} -> recipe {resolved})" if resolved and resolved != asked else ""
    raise BenchError(f"{run_dir} is a run of recipe {recipe.name}, not {asked}{also}: drop the "
                     f"name or give {recipe.name} (a resume trains the run's own recipe)")


def check_not_complete(run_dir: Path) -> None:
    """A complete run is never trained again: its record stays as written."""
    result = Path(run_dir) / "result.json"
    if not result.exists():
        return  # not finished, or killed before its record: a resume writes the record
    try:
        record = json.loads(result.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BenchError(f"cannot resume {run_dir}: {result} is unreadable ({exc}); a resume "
                         "would replace it: move it away first if that is meant") from None
    if isinstance(record, dict) and record.get("complete") is True:
        iterations = record.get("iterations")
        raise BenchError(f"{run_dir} is complete ({iterations} iterations); its result is "
                         f"{result}: nothing to resume (start a new run to train again)")


def check_max_steps(point: ResumePoint, max_steps: int | None) -> None:
    if max_steps is not None and max_steps <= point.iteration:
        raise BenchError(f"--max-steps {max_steps} is not above the {point.iteration} steps "
                         f"{point.run_dir} has done (checkpoint {point.checkpoint.name}): give "
                         "more, or none to train to the end of the schedule")


def check_unchanged(point: ResumePoint) -> None:
    """After taking the lock: the directory is as :func:`plan_resume` saw it (no other process
    trained in it between the checks and the lock)."""
    if _fingerprint(point.run_dir) != point.fingerprint:
        raise BenchError(f"{point.run_dir} changed while this resume was starting (another "
                         "process trained in it); run the command again")


def _fingerprint(run_dir: Path) -> tuple:
    def stat(path: Path):
        try:
            s = path.stat()
        except OSError:
            return None
        return (s.st_size, s.st_mtime_ns)

    names = tuple(p.name for p in list_checkpoints(run_dir))
    return names, stat(run_dir / "result.json"), stat(run_dir / "log.jsonl")


def position(state: dict[str, Any], setup: Setup) -> str:
    """Where a checkpoint is in the schedule, in words."""
    epoch = min(state["epoch"] + 1, setup.epochs)
    return (f"iteration {state['iteration']} of {setup.total_iters} (epoch {epoch} of "
            f"{setup.epochs}, {state['batch_in_epoch']} of its {setup.iters_per_epoch} batches "
            "done)")


def skipped_line(path: Path, why: str, moved_to: Path | None = None) -> str:
    """The one line a resume prints per checkpoint it skips."""
    line = f"skipping checkpoint {path.name}: it {why}"
    if moved_to is not None:
        line += f"; set aside as {moved_to.parent.name}/{moved_to.name}"
    return line


def describe_resume(point: ResumePoint, setup: Setup) -> list[str]:
    """What the resume would do (``--dry-run``): the checkpoint, where it is in the schedule,
    the steps left, then the plan."""
    state, options = point.state, point.options
    end = setup.total_iters if options.max_steps is None else min(options.max_steps,
                                                                    setup.total_iters)
    lines = [skipped_line(p, why) + " (a resume sets it aside)" for p, why in point.skipped]
    lines.append(f"would resume {point.run_dir} from {point.checkpoint.name}: "
                 f"{position(state, setup)}")
    left = max(0, end - state["iteration"])
    until = "--max-steps" if end < setup.total_iters else "the end of the schedule"
    lines.append(f"would train {left} more step(s), to iteration {end} ({until})"
                 if left else "would train no step: the checkpoint is at the end of the "
                              "schedule; it would write the run's result")
    return lines + describe(setup)
