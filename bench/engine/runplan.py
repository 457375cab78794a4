"""What a run will do on this machine, decided before the first step (and printed by
``--dry-run``): devices, global batch (the recipe's when it fits, :mod:`bench.recipes.scaling`),
rescaled LR, kvstore, precision and schedule length.

:func:`check_recipe` is the one validator of what a recipe asks for beyond its own fields (the
loader checks those: types, finiteness, ranges): the data pipeline, the network's options taken
together, the batch against the training set and the whole LR schedule. ``bench recipes show`` calls it with the recipe's own hardware, :func:`prepare` (what
``--dry-run`` prints and a run trains) with this machine's plan, so all three refuse the same
recipes, before anything is printed and before a run directory exists."""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.data.spec import check_spec, in_channels, num_classes, protocol_label
from bench.errors import BenchError
from bench.engine import build, devices, memory
from bench.engine.cluster import Cluster, expected_workers, is_multi_worker
from bench.files import check_readable
from bench.recipes import (DeviceMemory, Plan, Recipe, fit_to_check, plan_for, recipe_from_dict)
from bench.recipes.schema import SEED_LIMIT


@dataclass
class RunOptions:
    """What the command line adds to a recipe."""

    gpus: tuple[int, ...] = ()
    cpu_devices: int = 1  # >1 runs the multi-device path on several CPU contexts (tests)
    data_dir: str | None = None
    epochs: int | None = None  # shortens/lengthens the schedule proportionally
    max_steps: int | None = None  # stop (with a checkpoint) after this many steps in total
    seed: int | None = None
    batch_size: int | None = None  # global batch; default: the recipe's when it fits
    kvstore: str | None = None
    out: Path = Path("runs")
    loader_workers: int = 2  # data-loading threads (not the processes of a job)
    progress: bool = True


@dataclass
class Setup:
    """Everything decided before the first step; what ``--dry-run`` prints."""

    recipe: Recipe
    plan: Plan
    ctxs: list
    dtype: str
    kvstore: str | None
    iters_per_epoch: int
    epochs: int
    total_iters: int
    changes: list[str] = field(default_factory=list)
    workers: int = 1  # processes of a multi-worker job (dist_sync, horovod), each on ``ctxs``
    step_batch: int = 1  # trainer.step's batch_size: the images whose gradients it sums
    teacher: dict[str, Any] | None = None  # run.json's teacher record (bench.engine.distill)


def apply_options(recipe: Recipe, options: RunOptions) -> tuple[Recipe, list[str]]:
    """The recipe as this run trains it (``--seed``, ``--epochs``), with what changed."""
    changes = []
    if options.seed is not None and not 0 <= options.seed < SEED_LIMIT:
        raise BenchError(f"--seed {options.seed}: a seed is an integer from 0 to "
                         f"{SEED_LIMIT - 1} (2^32 - 1)")
    if options.seed is not None and options.seed != recipe.train.seed:
        recipe = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train,
                                                                       seed=options.seed))
    if options.epochs is not None:
        s = recipe.schedule
        old = s.epochs
        ratio = options.epochs / old
        milestones = s.milestones
        if s.unit == "epoch":
            milestones = tuple(m * ratio for m in milestones)
        elif s.iterations:
            milestones = tuple(float(round(m * ratio)) for m in milestones)
        try:
            schedule = dataclasses.replace(
                s, epochs=options.epochs,
                iterations=round(s.iterations * ratio) if s.iterations else 0,
                milestones=milestones, warmup_epochs=s.warmup_epochs * ratio)
        except ValueError as exc:
            raise BenchError(f"--epochs {options.epochs}: {exc}") from None
        recipe = dataclasses.replace(recipe, schedule=schedule)
        changes.append(f"--epochs {options.epochs}: schedule of {old} epochs scaled by "
                       f"{ratio:g} (milestones and warm-up included)")
    return recipe, changes


def prepare(recipe: Recipe, options: RunOptions, train_samples: int | None = None,
            cluster: Cluster | None = None) -> Setup:
    """Devices, batch, LR and schedule length for this machine (no data read unless needed).

    ``cluster`` is the job this process joined (:func:`bench.engine.cluster.join_cluster`);
    without one (``--dry-run``) the worker count the launcher announced is assumed."""
    devices.check_gpus(list(options.gpus))
    gpus = list(options.gpus)
    if cluster is not None and cluster.backend == "horovod" and gpus:
        gpus = [gpus[cluster.local_rank % len(gpus)]]  # one GPU per Horovod process
    ctxs = devices.contexts(gpus, options.cpu_devices)
    recipe, changes = apply_options(recipe, options)
    requested = requested_kvstore(recipe, options)
    kvstore = devices.choose_kvstore(requested, len(ctxs), on_gpu=bool(options.gpus))
    workers = cluster.size if cluster is not None else expected_workers(requested)
    dtype, dtype_changes = build.effective_dtype(recipe, bool(options.gpus))
    # Workers count as devices for the batch split: each takes an equal share.
    plan = plan_for(recipe, len(ctxs) * workers, options.batch_size,
                    _memory(recipe, options, gpus, len(ctxs), workers, dtype, cluster))
    changes += list(plan.changes)
    if workers > 1:
        changes.append(f"{workers} workers x {len(ctxs)} device(s) each ({requested})")
    changes += dtype_changes
    if train_samples is None:
        train_samples = _known_train_size(recipe)
    check_recipe(recipe, plan, train_samples)
    iters_per_epoch, epochs, total = _length(recipe, plan, train_samples)
    # Horovod's trainer averages the workers' gradients itself; the others sum them.
    step_batch = plan.global_batch // workers if requested == "horovod" else plan.global_batch
    return Setup(recipe, plan, ctxs, dtype, kvstore, iters_per_epoch, epochs, total, changes,
                 workers, step_batch)


def _length(recipe: Recipe, plan: Plan, train_samples: int | None) -> tuple[int, int, int]:
    """(iterations per epoch, epochs, total iterations); 0 iterations per epoch when the
    training set's size is unknown."""
    iters_per_epoch = max(1, train_samples // plan.global_batch) if train_samples else 0
    if plan.iterations:
        total = plan.iterations
        epochs = math.ceil(total / iters_per_epoch) if iters_per_epoch else recipe.schedule.epochs
    else:
        epochs = recipe.schedule.epochs
        total = epochs * iters_per_epoch
    return iters_per_epoch, epochs, total


def check_recipe(recipe: Recipe, plan: Plan | None = None,
                 train_samples: int | None = None) -> None:
    """Refuse, in one line, a recipe no run could train: a data pipeline no loader implements,
    a global batch larger than the training set, or an LR schedule that does not fit the run
    (milestones outside it, a warm-up as long as it, ...). ``plan`` is the batch and LR on the
    hardware at hand (default: the recipe's own), ``train_samples`` the training set's size
    (default: the data set's known size; unknown skips the batch and schedule checks)."""
    spec = build.data_spec(recipe)
    check_spec(spec)
    _check_network_builds(recipe, num_classes(spec), in_channels(spec))
    if plan is None:
        plan = plan_for(recipe, recipe.train.devices)
    if train_samples is None:
        train_samples = _known_train_size(recipe)
    if train_samples is None:
        return
    if train_samples < plan.global_batch:
        raise BenchError(f"the {recipe.data.dataset} training set has {train_samples} samples, "
                         f"fewer than one batch of {plan.global_batch}: lower --batch-size (or "
                         "optim.batch_size)")
    iters_per_epoch, epochs, _ = _length(recipe, plan, train_samples)
    build.build_lr(recipe, plan, iters_per_epoch, epochs)


_BUILT: set[str] = set()  # networks (name, options) already built once in this process


def _check_network_builds(recipe: Recipe, classes: int, channels: int) -> None:
    """The network's constructor accepts the recipe's options together (e.g. option-A
    shortcuts cannot shrink channels). Building it (no parameters) takes 0.03-0.25 s, so each
    network and option set is built once per process."""
    key = json.dumps([recipe.network, recipe.network_args, classes, channels], sort_keys=True)
    if key not in _BUILT:
        build.network(recipe, classes, channels)
        _BUILT.add(key)


def check_resumable(run_dir: Path) -> tuple[Recipe, dict[str, Any]]:
    """The recipe and ``run.json`` of a run directory given to ``--resume``, each of the shape
    a run writes (a damaged or foreign file is named in one line, not a traceback)."""
    run_dir = check_readable(run_dir, "--resume", "dir")
    data = {}
    for name in ("recipe.json", "run.json"):
        path = run_dir / name
        try:
            data[name] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BenchError(f"cannot resume {run_dir}: not a run directory (it has no "
                             f"{name})") from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            what = "not UTF-8 JSON" if isinstance(exc, ValueError) else str(exc.strerror or exc)
            raise BenchError(f"cannot resume {run_dir}: {path} is unreadable ({what}); restore "
                             "it or start a new run") from None
    recipe = recipe_from_dict(data["recipe.json"], str(run_dir / "recipe.json"))
    info, where = data["run.json"], run_dir / "run.json"
    plan = info.get("plan") if isinstance(info, dict) else None
    batch = plan.get("global_batch") if isinstance(plan, dict) else None
    options = info.get("options", {}) if isinstance(info, dict) else None
    problem = None
    if not isinstance(info, dict):
        problem = f"a JSON object was expected, not {type(info).__name__}"
    elif not (isinstance(batch, int) and not isinstance(batch, bool) and batch > 0):
        problem = f"plan.global_batch is {batch!r}, not a positive integer"
    elif not isinstance(options, dict):
        problem = f"options is {type(options).__name__}, not an object"
    else:
        bad = [k for k in ("data_dir", "kvstore")
               if not isinstance(options.get(k), (str, type(None)))]
        if bad:
            problem = f"options.{bad[0]} is {options[bad[0]]!r}, not a string"
    if problem:
        raise BenchError(f"cannot resume {run_dir}: {where} is not a run's ({problem}); restore "
                         "it or start a new run")
    return recipe, info


def _memory(recipe: Recipe, options: RunOptions, gpus: list[int], contexts: int, workers: int,
            dtype: str, cluster: Cluster | None) -> DeviceMemory | None:
    """Memory facts when the batch rule needs them (the recipe's global batch would put more
    images on each device than the recipe's own), else None; agreed on by every worker."""
    if fit_to_check(recipe.optim.batch_size, recipe.train.devices, contexts * workers,
                    options.batch_size) is None:
        return None
    facts = memory.device_memory(recipe, dtype, gpus, contexts, workers)
    return memory.agree(facts, cluster) if cluster is not None else facts


def requested_kvstore(recipe: Recipe, options: RunOptions) -> str:
    """The kvstore the run asks for, checked against how the process was started: a process
    that a parameter-server launcher started must train with a dist kvstore, or every worker
    would train alone on all the data."""
    requested = options.kvstore or recipe.train.kvstore
    role = os.environ.get("DMLC_ROLE")
    if role not in (None, "", "worker"):
        raise BenchError(f"DMLC_ROLE={role!r} is set in the environment, but a bench command "
                         "only ever runs as a parameter-server worker (`bench launch` sets "
                         "DMLC_ROLE for the processes it starts): unset DMLC_ROLE")
    if role == "worker" and not requested.startswith("dist"):
        raise BenchError(f"this process is a parameter-server worker (DMLC_ROLE=worker, e.g. "
                         f"from `bench launch`) but the kvstore is {requested!r}: add "
                         "--kvstore dist_sync")
    if is_multi_worker(requested) and options.cpu_devices > 1:
        raise BenchError("--cpu-devices with a multi-worker kvstore: give each worker one "
                         "context (the workers are the devices)")
    return requested


def _known_train_size(recipe: Recipe) -> int | None:
    """Training-set sizes for ``--dry-run`` without reading the data."""
    return {"imagenet": 1281167, "cifar10": 50000, "cifar100": 50000, "digits": 1437,
            "digits16": 1437, "mnist5k": 4000, "synthetic": recipe.data.synthetic_size}.get(recipe.data.dataset)


def describe(setup: Setup) -> list[str]:
    """Human lines: the plan, what was rescaled and the schedule's milestones."""
    p, r = setup.plan, setup.recipe
    lines = [f"recipe {r.name}: network {r.network}, data {r.data.dataset} "
             f"(protocol {protocol_label(r.data)})",
             (f"workers: {setup.workers} x " if setup.workers > 1 else "")
             + f"devices: {', '.join(str(c) for c in setup.ctxs)}; "
             f"kvstore {setup.kvstore or 'none (one device)'}; "
             f"dtype {setup.dtype}",
             f"batch {p.global_batch} ({p.devices} x {p.per_device_batch}); lr {p.lr:g} "
             f"(recipe: {r.optim.lr:g} at batch {r.optim.batch_size}); "
             f"{r.optim.optimizer} momentum {r.optim.momentum:g}, wd {r.optim.weight_decay:g}"
             + (" (not on bias/BN)" if r.optim.no_bias_decay else ""),
             f"{setup.epochs} epochs x {setup.iters_per_epoch} iterations = "
             f"{setup.total_iters} iterations"]
    if setup.iters_per_epoch:
        schedule, gate = build.build_lr(r, p, setup.iters_per_epoch, setup.epochs)
        lines += [f"schedule: {line}" for line in schedule.describe(setup.iters_per_epoch)]
        if gate:
            lines.append(f"schedule: lr {p.warmup_lr:g} until the training error of a logging "
                         f"window is below {r.schedule.warmup_until_error:.0%} (He 2015)")
    d = r.distill
    if d.enabled:
        where = (setup.teacher["file"] if setup.teacher else d.weights
                 or "no weights yet (a run needs --set distill.weights=PATH)")
        lines.append(f"distill: teacher {d.teacher} from {where}; loss {d.loss}, temperature "
                     f"{d.temperature:g}, hard_weight {d.hard_weight:g}")
    lines += [f"changed: {c}" for c in setup.changes]
    return lines
