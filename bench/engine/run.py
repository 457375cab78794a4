"""Starting and resuming a run: the run directory, its lock, and what is decided before the
loop (:mod:`.trainer`) takes over.

A run directory ``<out>/<recipe>/<UTC time>/`` holds ``recipe.json`` (the resolved recipe the run
trains, after ``--set``/``--epochs``/``--seed``), ``run.json`` (its ``run_id``, plan, what was
rescaled, command, versions, hardware), ``log.jsonl``, ``checkpoints/``, a ``lock`` while a
process trains in it and, at the end, ``metrics.json`` and ``result.json`` (:mod:`.record`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Callable

from bench.errors import BenchError
from bench.engine import build
from bench.engine.cluster import Cluster, join_cluster
from bench.engine.lock import acquire, no_lock, refuse_if_locked
from bench.engine.resume import check_unchanged, plan_resume
from bench.engine.runplan import RunOptions, describe, prepare, requested_kvstore
from bench.engine.trainer import train
from bench.files import atomic_write_text
from bench.recipes import Recipe, recipe_to_dict
from bench.runrecord import new_run_id

__all__ = ["resume_run", "start_run"]


def start_run(recipe: Recipe, options: RunOptions,
              report: Callable[[str], None] | None = None) -> Path | None:
    """Train ``recipe`` in a new run directory; returns the directory. ``report`` receives the
    plan's lines (devices, batch, rescaled LR, schedule) before the first step.

    In a multi-worker job only rank 0 makes, locks and writes the directory (the others return
    None)."""
    from bench.provenance import provenance
    from bench.engine.distill import resolve_weights, teacher_record
    cluster = join_cluster(requested_kvstore(recipe, options))
    recipe = resolve_weights(recipe)  # relative to the current directory, before anything
    teacher = teacher_record(recipe)
    # Bad data fails before any file is made.
    setup, data = _setup_with_data(recipe, options, cluster)
    setup.teacher = teacher
    if not cluster.is_root:
        return train(None, setup, data, options, cluster=cluster)
    run_dir = _new_run_dir(options.out, recipe.name)
    started = False
    try:
        with acquire(run_dir, report):  # nobody else can be in a new directory; a resume may
            for line in describe(setup) if report else ():
                report(line)
            if report:
                report(f"run directory: {run_dir}")
            atomic_write_text(run_dir / "recipe.json",
                              json.dumps(recipe_to_dict(setup.recipe), indent=2))
            run_info = {"run_id": new_run_id(),  # one training run, across resumes and copies
                        "plan": dataclasses.asdict(setup.plan), "changes": setup.changes,
                        "options": _options_dict(options), "dtype": setup.dtype,
                        "kvstore": setup.kvstore, "workers": setup.workers, **provenance()}
            if teacher is not None:
                run_info["teacher"] = teacher
            atomic_write_text(run_dir / "run.json", json.dumps(run_info, indent=2, default=str))
            started = True
            return train(run_dir, setup, data, options, report=report, cluster=cluster)
    finally:
        if not started:  # e.g. a full disk: leave no half-made run directory behind
            _discard_unstarted(run_dir)


def _discard_unstarted(run_dir: Path) -> None:
    """Remove a run directory that never started training (only its first files can be in it;
    the lock is gone by now)."""
    for name in ("recipe.json", "run.json"):
        (run_dir / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        run_dir.rmdir()


def resume_run(run_dir: Path, options: RunOptions,
               report: Callable[[str], None] | None = None,
               asked: str | None = None) -> Path | None:
    """Continue a run from its newest valid checkpoint with its own recipe and global batch
    (every worker of a multi-worker job reads the checkpoint; only rank 0 locks and writes).

    Every refusal (:mod:`.resume`: a run another process trains, a complete run, --max-steps not
    above the steps done, ``asked`` not the run's recipe, no valid checkpoint) comes before any
    file is opened for writing."""
    run_dir = Path(run_dir)
    refuse_if_locked(run_dir)  # before reading checkpoints that another process may be writing
    point = plan_resume(run_dir, options, asked)
    options = point.options
    cluster = join_cluster(requested_kvstore(point.recipe, options))
    with _lock_job(run_dir, cluster, report):
        if cluster.is_root:  # the others read only (and rank 0 may be writing by now)
            check_unchanged(point)
        setup, data = _setup_with_data(point.recipe, options, cluster)
        setup.teacher = point.teacher
        return train(run_dir if cluster.is_root else None, setup, data, options, resume=point,
                      report=report if cluster.is_root else None, cluster=cluster)


def _lock_job(run_dir: Path, cluster: Cluster, report: Callable[[str], None] | None
              ) -> contextlib.AbstractContextManager:
    """Rank 0 locks the run directory; in a multi-worker job every worker learns whether it
    could, so that all refuse together instead of the others waiting for rank 0 forever."""
    if cluster.size == 1:
        return acquire(run_dir, report)
    lock, error = no_lock(), None
    if cluster.is_root:
        try:
            lock = acquire(run_dir, report)
        except BenchError as exc:
            error = exc
    if cluster.allreduce([float(error is not None)])[0] > 0:
        raise error or BenchError(f"rank 0 could not lock {run_dir} (its error says why)")
    return lock


def _options_dict(options: RunOptions) -> dict[str, Any]:
    d = dataclasses.asdict(options)
    d["out"] = str(options.out)
    return d


def _new_run_dir(out: Path, name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    base = Path(out) / name
    for n in range(100):
        run_dir = base / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            run_dir.mkdir(parents=True)
            return run_dir
        except FileExistsError:
            continue
    raise BenchError(f"cannot create a run directory under {base}")


def _setup_with_data(recipe: Recipe, options: RunOptions, cluster: Cluster):
    from bench.data import build_eval, build_train, in_channels, num_classes
    setup = prepare(recipe, options, cluster=cluster)
    r = setup.recipe
    spec = build.data_spec(r)
    train = build_train(spec, options.data_dir, setup.plan.global_batch, r.train.seed,
                        options.loader_workers, shard=(cluster.rank, cluster.size))
    # Rank 0 evaluates alone, on its own devices: batches of one worker's share.
    evaluation = build_eval(spec, options.data_dir, setup.plan.global_batch // cluster.size,
                            options.loader_workers)
    setup = prepare(recipe, options, train_samples=train.num_samples, cluster=cluster)
    if train.batches_per_epoch == 0:
        raise BenchError(f"the training set has {train.num_samples} samples, fewer than one "
                         f"batch of {setup.plan.global_batch}: lower --batch-size")
    return setup, (spec, train, evaluation, num_classes(spec), in_channels(spec))
