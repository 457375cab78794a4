"""Recorded experiments: ``results/experiments/<name>/`` (``bench record``, ``bench table``,
``bench check``).

A recorded experiment is the folder layout of a run (:mod:`.runner`) without the training
runs: ``experiment.json`` and the measurements (each carries its training run's recipe,
command, git commit, library versions, hardware and date), plus the generated page, CSV and
figures (:mod:`.page`). Recording again adds seeds or replaces a (network, seed) measured again.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from bench.errors import BenchError
from bench.experiments.page import load_measurements, read_config, stale, write_page
from bench.experiments.runner import CONFIG, config_of, measurement_path, same_config
from bench.experiments.verdicts import ClaimResult, judge
from bench.files import atomic_write_text


def experiments_root(results: Path) -> Path:
    return Path(results) / "experiments"


def is_experiment_dir(path: Path) -> bool:
    return (Path(path) / CONFIG).is_file() and (Path(path) / "measurements").is_dir()


def recorded(results: Path) -> list[Path]:
    root = experiments_root(results)
    return sorted(p for p in root.glob("*") if is_experiment_dir(p)) if root.is_dir() else []


def _experiment(folder: Path):
    from bench.experiments.loader import load_experiment
    config = read_config(folder)
    name = config.get("name")
    if not isinstance(name, str):
        raise BenchError(f"{folder / CONFIG} names no experiment")
    experiment = load_experiment(name)
    if not same_config(config, config_of(experiment)):
        raise BenchError(f"{folder} was run with another configuration than "
                         f"experiments/{name}.toml has now; run the experiment again")
    return experiment


def record_experiment(exp_dir: Path, results: Path,
                      report: Callable[[str], None] = lambda line: None) -> Path:
    """Copy a finished experiment run's measurements into ``results/experiments/<name>/`` and
    regenerate its page. Refused: a --quick run (it tests the pipeline; its numbers are not
    results), a run with nothing measured, a measurement of uncommitted code."""
    exp_dir = Path(exp_dir)
    config = read_config(exp_dir)
    if config.get("quick"):
        raise BenchError(f"{exp_dir} is a --quick run: it checks that the experiment runs, its "
                         "numbers are not results; record a full run")
    experiment = _experiment(exp_dir)
    measurements = load_measurements(exp_dir)
    if not measurements:
        raise BenchError(f"{exp_dir} has no measurement yet; run the experiment first")
    for (network, seed), m in sorted(measurements.items()):
        git = (m.get("training") or {}).get("git") or {}
        if not git.get("commit") or git.get("dirty"):
            raise BenchError(f"{exp_dir}: {network} seed {seed} was trained from "
                             f"{'uncommitted changes' if git.get('dirty') else 'no git commit'}"
                             "; results come from a clean clone")
    target = experiments_root(results) / experiment.name
    seeds = set(config["seeds"])
    if (target / CONFIG).is_file():
        seeds |= set(read_config(target)["seeds"])
    for (network, seed), m in sorted(measurements.items()):
        path = measurement_path(target, network, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(m, indent=1))
    atomic_write_text(target / CONFIG, json.dumps({**config, "seeds": sorted(seeds)}, indent=2))
    write_page(target, experiment)
    report(f"recorded {len(measurements)} measurements of {experiment.name} in {target}")
    return target


def write_pages(results: Path) -> list[Path]:
    """Regenerate every recorded experiment's page, CSV and figures."""
    written = []
    for folder in recorded(results):
        written += write_page(folder, _experiment(folder))
    return written


def stale_pages(results: Path) -> list[Path]:
    out = []
    for folder in recorded(results):
        out += stale(folder, _experiment(folder))
    return out


def judged(results: Path) -> list[tuple[str, ClaimResult]]:
    """(experiment name, claim result) of every recorded experiment."""
    out = []
    for folder in recorded(results):
        experiment = _experiment(folder)
        config = read_config(folder)
        from dataclasses import replace
        experiment = replace(experiment, seeds=tuple(config["seeds"]))
        out += [(experiment.name, r) for r in judge(experiment, load_measurements(folder))]
    return out


def summary_section(results: Path) -> list[str]:
    """The results README's section linking every recorded experiment's page."""
    from tabulate import tabulate
    rows = []
    for name, r in judged(results):
        rows.append([f"[{name}](experiments/{name}/README.md)", r.claim.id, r.claim.source,
                     f"**{r.verdict}** ({r.tally()})"])
    if not rows:
        return []
    return ["## The papers' experiments, reproduced small", "",
            "Claims of the papers checked on the embedded digits (`bench experiment NAME`); each "
            "page has the measurements, the figures and the runs. *shown*: holds on every seed; "
            "*contradicted*: on none (fails `bench check`); *not shown*: on some; *unresolved*: "
            "the experiment file says why this scale cannot judge it.", "",
            tabulate(rows, headers=["experiment", "claim", "source", "verdict"],
                     tablefmt="github", disable_numparse=True), ""]


START, END = "<!-- experiments:start -->", "<!-- experiments:end -->"


def readme_update(results: Path) -> tuple[Path, str] | None:
    """The project README (next to ``results/``) with its generated experiments region
    (between START and END) rewritten from the recorded experiments; None when there is no
    such README (a results folder elsewhere)."""
    readme = Path(results).resolve().parent / "README.md"
    if not readme.is_file():
        return None
    text = readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        return None
    lines = summary_section(results)[2:]  # without its heading: the README has its own
    body = "\n".join(lines).replace("](experiments/", "](results/experiments/")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    return readme, f"{head}{START}\n{body}\n{END}{tail}"
