"""``bench experiment NAME``: train every (network, seed) of an experiment, measure it, judge.

Layout under ``--out`` (default ``runs/experiments``)::

    nets/<network>/<recipe hash>-seed<k>[-steps<n>]/<recipe>/<time>/   engine run directories
    <experiment>[-quick]/experiment.json          the configuration (a resume must match it)
    <experiment>[-quick]/measurements/<network>/seed<k>.json
    <experiment>[-quick]/log.jsonl                what happened, as JSON lines

Training runs are keyed by what they train (network, the resolved recipe's hash, seed, step
limit), not by experiment, so experiments that train the same net share the run: He 2015's
degradation and response analyses and Veit et al.'s lesions all read one ResNet-56. A killed
experiment continues: a measured (network, seed) is skipped, an unfinished training run is
resumed from its newest checkpoint (the engine's ``--resume``), a finished one is measured.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bench.errors import BenchError
from bench.experiments.schema import Experiment
from bench.files import atomic_write_text

CONFIG = "experiment.json"


@dataclass(frozen=True)
class Options:
    out: Path = Path("runs/experiments")
    progress: bool = True
    loader_workers: int = 2


def run_dir_of(experiment: Experiment, out: Path) -> Path:
    return Path(out) / (experiment.name + ("-quick" if experiment.is_quick else ""))


def config_of(experiment: Experiment) -> dict:
    """What makes two runs of an experiment the same: networks, seeds, overrides, analyses and
    their parameters, the step limit (the claims are judged afresh, so they may change)."""
    return {"name": experiment.name, "recipe": experiment.recipe,
            "networks": list(experiment.networks), "seeds": list(experiment.seeds),
            "analyses": list(experiment.analyses),
            "overrides": [[k, v] for k, v in experiment.overrides],
            "lesion": vars(experiment.lesion), "responses": vars(experiment.responses),
            "max_steps": experiment.max_steps, "quick": experiment.is_quick}


def measurement_path(exp_dir: Path, network: str, seed: int) -> Path:
    return exp_dir / "measurements" / network / f"seed{seed}.json"


def run_experiment(experiment: Experiment, options: Options,
                   report: Callable[[str], None] = print) -> Path:
    """Train and measure every (network, seed) not measured yet; returns the experiment's
    directory (:func:`bench.experiments.page.write_page` then judges and draws it)."""
    from bench.engine.jsonlog import JsonLog, Progress
    from bench.engine.lock import acquire
    exp_dir = run_dir_of(experiment, options.out)
    exp_dir.mkdir(parents=True, exist_ok=True)
    _check_config(exp_dir, experiment)
    pairs = [(n, s) for s in experiment.seeds for n in experiment.networks]
    todo = [(n, s) for n, s in pairs if not measurement_path(exp_dir, n, s).is_file()]
    if len(todo) < len(pairs):
        report(f"{exp_dir}: {len(pairs) - len(todo)} of {len(pairs)} (network, seed) already "
               "measured; continuing with the rest")
    with acquire(exp_dir), JsonLog(exp_dir / "log.jsonl") as log:
        log.write("experiment_start", name=experiment.name, quick=experiment.is_quick,
                  todo=[list(p) for p in todo])
        bar = Progress(len(todo), f"{experiment.name}", options.progress)
        for network, seed in todo:
            tic = time.time()
            log.write("net_start", network=network, seed=seed)
            run_dir = train(experiment, network, seed, options, report)
            from bench.experiments.measure import measure
            measurement = measure(experiment, network, seed, run_dir, report)
            path = measurement_path(exp_dir, network, seed)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps(measurement, indent=1))
            log.write("net_done", network=network, seed=seed, seconds=time.time() - tic,
                      run_dir=str(run_dir))
            bar.update(1, net=network, seed=seed)
        bar.close()
        log.write("experiment_end", name=experiment.name)
    return exp_dir


def same_config(a: dict, b: dict) -> bool:
    """Two configurations measure the same thing (seeds aside: each seed is its own file)."""
    plain = lambda c: json.loads(json.dumps({k: v for k, v in c.items() if k != "seeds"}))
    return plain(a) == plain(b)


def _check_config(exp_dir: Path, experiment: Experiment) -> None:
    """A resumed experiment must be the same experiment; its seeds join the ones run before."""
    path = exp_dir / CONFIG
    config = config_of(experiment)
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise BenchError(f"{path} is unreadable ({exc}); delete {exp_dir} or use another "
                             "--out") from None
        if not same_config(old, config):
            plain = json.loads(json.dumps(config))
            changed = sorted(k for k in plain if k != "seeds" and old.get(k) != plain[k])
            raise BenchError(f"{exp_dir} holds a run of {experiment.name} with other "
                             f"{', '.join(changed)}; use another --out (or delete it)")
        config["seeds"] = sorted(set(old.get("seeds", [])) | set(config["seeds"]))
    atomic_write_text(path, json.dumps(config, indent=2))


def with_changes(experiment: Experiment, seeds: int | None, overrides: tuple[str, ...] | list[str],
                 only: tuple[int, ...] | list[int] = ()) -> Experiment:
    """``--seeds N`` (the first N seeds, extended by the integers after the last), ``--seed K``
    (only those of them) and ``--set`` (recipe overrides for every network, checked now by
    building each network's recipe)."""
    import dataclasses
    from bench.errors import did_you_mean
    from bench.recipes.loader import parse_override
    have = list(experiment.seeds)
    if seeds is not None:
        while len(have) < seeds:
            have.append(max(have) + 1)
        have = have[:seeds]
    for k in only:
        if k not in have:
            raise BenchError(f"--seed {k}: {experiment.name} runs seeds "
                             f"{', '.join(map(str, have))}{did_you_mean(str(k), map(str, have))}")
    if only:
        have = [k for k in have if k in only]
    experiment = dataclasses.replace(experiment, seeds=tuple(have))
    if overrides:
        merged = dict(experiment.overrides)
        for item in overrides:
            key, value = parse_override(item)
            if key in ("network", "train.seed"):
                raise BenchError(f"--set {key}: the experiment sets each run's {key} itself "
                                 "(its networks and seeds)")
            merged[key] = value
        experiment = dataclasses.replace(experiment, overrides=tuple(merged.items()))
        for network in experiment.networks:
            training_recipe(experiment, network, experiment.seeds[0])
    return experiment


def training_recipe(experiment: Experiment, network: str, seed: int):
    from bench.recipes import load_recipe
    return load_recipe(experiment.recipe, experiment.recipe_overrides(network, seed))


def cache_dir(experiment: Experiment, network: str, seed: int, out: Path) -> Path:
    from bench.recipes import recipe_hash
    digest = recipe_hash(training_recipe(experiment, network, seed))[:12]
    steps = f"-steps{experiment.max_steps}" if experiment.max_steps else ""
    return Path(out) / "nets" / network / f"{digest}-seed{seed}{steps}"


def finished(run_dir: Path, max_steps: int | None) -> bool:
    """A training run that needs nothing more: complete, or stopped at the step limit asked."""
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return False
    if metrics.get("complete"):
        return True
    return bool(max_steps) and metrics.get("iterations", 0) >= max_steps


def train(experiment: Experiment, network: str, seed: int, options: Options,
          report: Callable[[str], None]) -> Path:
    """The finished training run of (network, seed): reused, resumed or started."""
    from bench.engine.run import resume_run, start_run
    from bench.engine.runplan import RunOptions
    recipe = training_recipe(experiment, network, seed)
    root = cache_dir(experiment, network, seed, options.out)
    runs = sorted(p for p in (root / recipe.name).glob("*") if (p / "run.json").is_file())
    run_options = RunOptions(out=root, max_steps=experiment.max_steps,
                             loader_workers=options.loader_workers, progress=options.progress)
    for run_dir in reversed(runs):
        if finished(run_dir, experiment.max_steps):
            report(f"{network} seed {seed}: trained already ({run_dir})")
            return run_dir
    for run_dir in reversed(runs):
        from bench.engine.checkpoint import latest_checkpoint
        if latest_checkpoint(run_dir) is not None:
            report(f"{network} seed {seed}: resuming {run_dir}")
            return _checked(resume_run(run_dir, run_options, report=report), experiment)
    report(f"{network} seed {seed}: training")
    return _checked(start_run(recipe, run_options, report=report), experiment)


def _checked(run_dir: Path | None, experiment: Experiment) -> Path:
    if run_dir is None or not finished(run_dir, experiment.max_steps):
        raise BenchError(f"training in {run_dir} did not finish; rerun the experiment to "
                         "resume it")
    return run_dir
