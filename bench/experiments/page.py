"""An experiment's generated page: the claims table, the figures and the runs behind them.

A folder holding ``experiment.json`` and ``measurements/<network>/seed<k>.json`` (a run under
``runs/experiments/`` or a recorded one under ``results/experiments/``) gets ``README.md``
(claims: source, what the paper shows, ours as median [min, max] over seeds, verdict),
``claims.csv`` and one PNG per figure. Everything is generated from the measurements and the
experiment file; ``bench table --check`` regenerates the text files in memory and fails when
the committed ones differ, or a figure the page shows is missing.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.experiments.schema import Experiment
from bench.experiments.verdicts import ClaimResult, Measurements, judge

PAGE, CLAIMS_CSV = "README.md", "claims.csv"


def load_measurements(folder: Path) -> Measurements:
    """Every measurement in ``folder/measurements/``, keyed by (network, seed)."""
    found: Measurements = {}
    for path in sorted((folder / "measurements").glob("*/seed*.json")):
        try:
            m = json.loads(path.read_text())
            found[(m["network"], int(m["seed"]))] = m
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BenchError(f"{path} is not a measurement ({exc}); measure it again "
                             "(delete it and rerun the experiment)") from None
    return found


def figures_of(experiment: Experiment) -> dict[str, tuple[str, Any]]:
    """File name -> (title, drawing function of the measurements list) for the analyses the
    experiment ran."""
    from bench.experiments import figures as f
    nets = list(experiment.networks)
    out: dict[str, tuple[str, Any]] = {
        "fig_training.png": ("Training (thin dashed: running training error) and test error "
                             "(bold) per epoch, He et al. 2015 Fig. 6 style",
                             lambda ms, path: f.plot_training_curves(ms, path,
                                                                     panels=_panels(nets)))}
    if "responses" in experiment.analyses:
        out["fig_responses.png"] = ("Std of each 3x3 layer's response, in depth order and "
                                    "sorted, He et al. 2015 Fig. 7 style",
                                    lambda ms, path: f.plot_responses(ms, path, networks=nets))
    if "lesion" in experiment.analyses:
        out["fig_lesion.png"] = ("Test error after deleting single units (red: downsampling "
                                 "units) and k random units, Veit et al. 2016 Figs. 3 and 5 "
                                 "style", lambda ms, path: f.plot_lesion(ms, path,
                                                                         networks=nets))
    if any(_stochastic(n) for n in nets):
        out["fig_epoch_times.png"] = ("Seconds per training epoch (median over seeds, "
                                      "min..max bars)",
                                      lambda ms, path: f.plot_epoch_times(ms, path,
                                                                          networks=nets))
    return out


def _stochastic(network: str) -> bool:
    from bench.models.registry import get_spec
    return get_spec(network).flags.get("survival_prob_last", 1.0) < 1.0


def _panels(networks: list[str]) -> dict[str, list[str]]:
    """Fig. 6's panels: plain nets on the left, residual ones on the right; pre-activation and
    stochastic-depth twins get a panel of their own so each stays readable."""
    from bench.models.registry import get_spec
    panels: dict[str, list[str]] = {}
    for n in networks:
        flags = get_spec(n).flags
        kind = ("plain" if flags.get("shortcut") == "none" else
                "pre-activation ResNet" if flags.get("preact") else
                "stochastic depth" if flags.get("survival_prob_last", 1.0) < 1 else "ResNet")
        panels.setdefault(kind, []).append(n)
    return panels


def digest(measurements: Measurements) -> str:
    text = json.dumps([measurements[k] for k in sorted(measurements)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def render(experiment: Experiment, measurements: Measurements, config: dict[str, Any]
           ) -> dict[str, str]:
    """The page and the claims CSV as text (figures are drawn by :func:`write_page`), judged
    on the seeds the folder measured (``config``'s)."""
    import dataclasses
    experiment = dataclasses.replace(experiment, seeds=tuple(config.get("seeds",
                                                                        experiment.seeds)))
    results = judge(experiment, measurements)
    return {PAGE: _markdown(experiment, measurements, config, results),
            CLAIMS_CSV: _csv(results)}


def _markdown(experiment: Experiment, measurements: Measurements, config: dict[str, Any],
              results: list[ClaimResult]) -> str:
    from tabulate import tabulate
    from bench.experiments.figures import label
    overrides = ", ".join(f"`{k} = {json.dumps(v)}`" for k, v in experiment.overrides)
    lines = [f"# {experiment.name}", "", experiment.description, "",
             "Generated by `bench table` from this folder's measurements and "
             f"`experiments/{experiment.name}.toml`; never edited by hand "
             f"(measurements digest `{digest(measurements)}`).", "",
             f"- networks: {', '.join(f'`{n}` ({label(n)})' for n in experiment.networks)}",
             f"- seeds: {', '.join(str(s) for s in experiment.seeds)}"
             f"{' (quick run: not a result)' if config.get('quick') else ''}",
             f"- training: recipe `{experiment.recipe}` with {overrides}"
             + (f", at most {config['max_steps']} steps" if config.get("max_steps") else ""),
             f"- analyses: {', '.join(experiment.analyses)}", "", "## Claims", ""]
    rows = [[r.claim.id, r.claim.claim, r.claim.source, r.claim.paper, r.ours(),
             f"**{r.verdict}** ({r.tally()})"] for r in results]
    lines.append(tabulate(rows, headers=["claim", "statement", "source", "paper",
                                         "ours: median [min, max] over seeds", "verdict"],
                          tablefmt="github"))
    unresolved = [r for r in results if r.claim.unresolved]
    if unresolved:
        lines += ["", "Unresolved at this scale (evaluated and shown, not gated):", ""]
        lines += [f"- `{r.claim.id}`: {r.claim.unresolved}" for r in unresolved]
    lines += ["", "Predicates (`experiments/README.md` defines the quantities):", ""]
    lines += [f"- `{r.claim.id}`: `{r.claim.predicate.text}`" for r in results]
    lines += ["", "## Figures", ""]
    for name, (title, _) in figures_of(experiment).items():
        lines += [f"![{title}]({name})", "", f"*{title}.*", ""]
    lines += ["## Runs", "", _runs_table(experiment, measurements), ""]
    if experiment.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in experiment.notes] + [""]
    return "\n".join(lines)


def _runs_table(experiment: Experiment, measurements: Measurements) -> str:
    from tabulate import tabulate
    rows = []
    for seed in experiment.seeds:
        for network in experiment.networks:
            m = measurements.get((network, seed))
            if m is None:
                rows.append([network, seed, "not measured yet"] + [""] * 7)
                continue
            t, f = m.get("training", {}), m["final"]
            git = t.get("git") or {}
            hw = t.get("hardware") or {}
            rows.append([network, seed, t.get("epochs_done"), _num(f.get("train_err")),
                         _num(f.get("clean_train_err")), _num(f.get("test_err")),
                         _num(f.get("epoch_time_s")), (git.get("commit") or "?")[:10]
                         + (" (dirty)" if git.get("dirty") else ""),
                         (t.get("date") or "?")[:10],
                         f"{hw.get('cpu', '?')}, {hw.get('cpu_cores', '?')} cores"])
    return tabulate(rows, headers=["network", "seed", "epochs", "train err (running) %",
                                   "clean train err %", "test err %", "s / epoch", "commit",
                                   "date", "hardware"], tablefmt="github")


def _num(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def _csv(results: list[ClaimResult]) -> str:
    buffer = io.StringIO()
    w = csv.writer(buffer, lineterminator="\n")
    w.writerow(["claim", "source", "verdict", "holds_per_seed", "ours"])
    for r in results:
        w.writerow([r.claim.id, r.claim.source, r.verdict,
                    " ".join({True: "1", False: "0", None: "-"}[h] for h in r.holds), r.ours()])
    return buffer.getvalue()


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / "experiment.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BenchError(f"{path} is missing or unreadable ({exc}): {folder} is not an "
                         "experiment's folder") from None


def write_page(folder: Path, experiment: Experiment, figures: bool = True) -> list[Path]:
    """Write the page, the CSV and (``figures``) the PNGs into ``folder``; returns the files
    whose content changed."""
    from bench.files import atomic_write_text
    measurements = load_measurements(folder)
    changed = []
    for name, text in render(experiment, measurements, read_config(folder)).items():
        if not (folder / name).is_file() or (folder / name).read_text() != text:
            atomic_write_text(folder / name, text)
            changed.append(folder / name)
    if figures and measurements:
        ms = list(measurements.values())
        for name, (_, draw) in figures_of(experiment).items():
            old = (folder / name).read_bytes() if (folder / name).is_file() else None
            if draw(ms, folder / name).read_bytes() != old:
                changed.append(folder / name)
    return changed


def stale(folder: Path, experiment: Experiment) -> list[Path]:
    """The generated files of ``folder`` that differ from what would be generated now, and
    the figures the page shows that are missing."""
    measurements = load_measurements(folder)
    out = [folder / name for name, text in render(experiment, measurements,
                                                  read_config(folder)).items()
           if not (folder / name).is_file() or (folder / name).read_text() != text]
    out += [folder / name for name in figures_of(experiment) if not (folder / name).is_file()]
    return out
