"""The results table: published numbers next to ours, generated from data, never edited.

``results/README.md`` and ``results/results.csv`` are functions of ``results/published.toml``
and ``results/runs/*.json`` only (no clock, sorted rows, fixed number formats), so regenerating
them from the same inputs gives the same bytes and ``bench table --check`` can tell when a
committed table is stale.
"""
from __future__ import annotations

import csv
import io
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabulate import tabulate

from bench.results.published import DATASETS, Published

WITHIN, OUTSIDE, NOT_RUN, UNCHECKED, NO_REFERENCE = (
    "within", "outside", "not run yet", "reference unchecked", "no published number")
STATUS_RULE = (
    "Status: *within* when the mean of our complete runs differs from the published error by at "
    "most the tolerance (top-1, and top-5 where published; for a target marked `max`, only "
    "being worse than published + tolerance counts); *outside* otherwise; *reference unchecked* "
    "when the published number has not been checked against its source (ours is shown, the "
    "gate only warns); *not run yet* when no run is recorded.")


@dataclass(frozen=True)
class Row:
    network: str
    recipe: str
    dataset: str
    protocol: str
    published: Published | None
    top1: tuple[float, float] | None  # mean, std over seeds
    top5: tuple[float, float] | None
    n: int
    incomplete: int
    train_time_s: float | None
    time_to_reference_s: float | None  # mean over runs that got within tolerance at some epoch
    hardware: str
    status: str

    @property
    def diff1(self) -> float | None:
        if self.top1 and self.published and self.published.top1_err is not None:
            return self.top1[0] - self.published.top1_err
        return None

    @property
    def diff5(self) -> float | None:
        if self.top5 and self.published and self.published.top5_err is not None:
            return self.top5[0] - self.published.top5_err
        return None


def _key(record: dict[str, Any]) -> tuple[str, str, str, str]:
    return (record["network"], record["recipe"], record["dataset"], record["protocol"])


def _mean_std(values: list[float]) -> tuple[float, float] | None:
    if not values:
        return None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def judge(published: Published | None, top1, top5, n: int) -> str:
    """The status of one row (see :data:`STATUS_RULE`)."""
    if published is None:
        return NO_REFERENCE
    if n == 0:
        return NOT_RUN
    if not published.verified:
        return UNCHECKED
    return WITHIN if within(published, top1, top5) else OUTSIDE


def within(published: Published, top1, top5) -> bool:
    checks = [(published.top1_err, top1), (published.top5_err, top5)]
    for reference, ours in checks:
        if reference is None or ours is None:
            continue
        diff = ours[0] - reference
        if diff > published.tolerance or (published.direction == "both"
                                           and -diff > published.tolerance):
            return False
    return True


def build_rows(published: list[Published], records: list[dict[str, Any]]) -> list[Row]:
    """One row per published entry, plus one per recorded key that has no entry."""
    by_key: dict[tuple, list[dict]] = {}
    for record in records:
        by_key.setdefault(_key(record), []).append(record)
    entries = {p.key: p for p in published}
    rows = []
    for key in sorted(set(entries) | set(by_key), key=_sort_key):
        runs = by_key.get(key, [])
        done = [r for r in runs if r.get("complete")]
        top1 = _mean_std([r["top1_err"] for r in done if r["top1_err"] is not None])
        top5 = _mean_std([r["top5_err"] for r in done if r["top5_err"] is not None])
        times = [r["train_time_s"] for r in done if r.get("train_time_s") is not None]
        reached = [r["reached_reference"]["train_time_s"] for r in done
                   if (r.get("reached_reference") or {}).get("train_time_s") is not None]
        hardware = sorted({_hardware(r) for r in done})
        entry = entries.get(key)
        rows.append(Row(*key, entry, top1, top5, len(done), len(runs) - len(done),
                        statistics.fmean(times) if times else None,
                        statistics.fmean(reached) if reached else None, "; ".join(hardware),
                        judge(entry, top1, top5, len(done))))
    return rows


def _sort_key(key: tuple[str, str, str, str]) -> tuple:
    dataset = DATASETS.index(key[2]) if key[2] in DATASETS else len(DATASETS)
    return (dataset, key[1], key[0], key[3])


def _hardware(record: dict[str, Any]) -> str:
    hw = record.get("hardware") or {}
    gpus = hw.get("gpus") or []
    if gpus:
        return f"{len(gpus)}x {gpus[0]}"
    return f"{hw.get('cpu', '?')} ({hw.get('cpu_cores', '?')} cores)"


def _f(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _ours(stat: tuple[float, float] | None, n: int) -> str:
    if stat is None:
        return ""
    return f"{stat[0]:.2f} ± {stat[1]:.2f} (n={n})"


def _published(p: Published | None) -> str:
    if p is None:
        return ""
    return " / ".join(_f(v) if v is not None else "–" for v in (p.top1_err, p.top5_err))


def _time(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


HEADERS = ["network", "recipe", "protocol", "published top-1 / top-5 err (%)", "source",
           "checked",
           "ours top-1 err (%)", "ours top-5 err (%)", "diff top-1", "status", "params (M)",
           "GMACs", "train time", "time to reference", "hardware"]


def _cells(row: Row) -> list[str]:
    p = row.published
    status = row.status + (f" ({row.incomplete} incomplete not counted)" if row.incomplete
                           else "")
    checked = "" if p is None else ("yes" if p.verified else "no")
    return [row.network, row.recipe, row.protocol, _published(p), p.source if p else "", checked,
            _ours(row.top1, row.n), _ours(row.top5, row.n), _f(row.diff1), status,
            _f(p.params_m if p else None), _f(p.gmacs if p else None, 3),
            _time(row.train_time_s), _time(row.time_to_reference_s), row.hardware]


def render_markdown(rows: list[Row], records: list[dict[str, Any]]) -> str:
    out = ["# Results", "",
           "Generated by `bench table` from `results/runs/*.json` (real runs recorded with "
           "`bench record RUN_DIR`) and `results/published.toml` (published numbers with their "
           "sources). Do not edit by hand: run `bench table` after recording a run.", "",
           STATUS_RULE, "",
           "Errors are percentages; ours is the mean ± standard deviation over seeds of complete "
           "runs. *checked*: the published number was read in its source (no: recalled, to be "
           "checked). Params and GMACs are counted by `bench.models.profile` at the recipe's input "
           "size. *Time to reference*: training time until the first epoch within tolerance of the "
           "published error.", ""]
    titles = {"imagenet": "ImageNet-1k", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
              "digits": "scikit-learn digits (the embedded demo)"}
    for dataset in [*DATASETS, *sorted({r.dataset for r in rows} - set(DATASETS))]:
        selected = [r for r in rows if r.dataset == dataset]
        if not selected:
            continue
        counts = {s: sum(r.status == s for r in selected) for s in
                  (WITHIN, OUTSIDE, UNCHECKED, NOT_RUN, NO_REFERENCE)}
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        out += [f"## {titles.get(dataset, dataset)}", "", f"{len(selected)} rows: {summary}.", "",
                tabulate([_cells(r) for r in selected], headers=HEADERS, tablefmt="github",
                         disable_numparse=True), ""]
    out += ["## Runs", ""]
    if records:
        run_rows = [[r["_file"], r["recipe"], str(r["seed"]), str(r["date"])[:10],
                     _commit(r), _f(r["top1_err"]), "yes" if r["complete"] else "no",
                     _hardware(r)] for r in records]
        out += [tabulate(run_rows, headers=["record", "recipe", "seed", "date", "commit",
                                            "top-1 err", "complete", "hardware"],
                         tablefmt="github", disable_numparse=True), ""]
    else:
        out += ["No runs recorded yet.", ""]
    return "\n".join(out)


def _commit(record: dict[str, Any]) -> str:
    git = record.get("git") or {}
    commit = (git.get("commit") or "unknown")[:10]
    return commit + (" (dirty)" if git.get("dirty") else "")


def render_csv(rows: list[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["network", "recipe", "dataset", "protocol", "published_top1_err",
                     "published_top5_err", "tolerance", "verified", "source", "ours_top1_err",
                     "ours_top1_std", "ours_top5_err", "ours_top5_std", "n", "incomplete",
                     "diff_top1", "status", "params_m", "gmacs", "train_time_s", "hardware"])
    for r in rows:
        p = r.published
        writer.writerow([r.network, r.recipe, r.dataset, r.protocol,
                         _f(p.top1_err if p else None), _f(p.top5_err if p else None),
                         _f(p.tolerance if p else None), "" if p is None else str(p.verified).lower(),
                         p.source if p else "", _f(r.top1[0] if r.top1 else None, 4),
                         _f(r.top1[1] if r.top1 else None, 4), _f(r.top5[0] if r.top5 else None, 4),
                         _f(r.top5[1] if r.top5 else None, 4), r.n, r.incomplete,
                         _f(r.diff1, 4), r.status, _f(p.params_m if p else None, 3),
                         _f(p.gmacs if p else None, 3), _f(r.train_time_s, 1),
                         _f(r.time_to_reference_s, 1), r.hardware])
    return buffer.getvalue()


def generate(results: Path) -> dict[Path, str]:
    """The generated files and their contents (nothing written)."""
    from bench.results.published import load_published
    from bench.results.records import load_records
    published = load_published(results / "published.toml")
    records = load_records(results)
    rows = build_rows(published, records)
    return {results / "README.md": render_markdown(rows, records),
            results / "results.csv": render_csv(rows)}


def stale_files(results: Path) -> list[Path]:
    """Generated files whose committed content differs from a fresh generation."""
    return [path for path, text in generate(results).items()
            if not path.is_file() or path.read_text(encoding="utf-8") != text]


def write_table(results: Path) -> list[Path]:
    from bench.files import atomic_write_text
    written = []
    for path, text in generate(results).items():
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            atomic_write_text(path, text)
            written.append(path)
    return written
