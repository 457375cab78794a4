"""The regression gate: exit 1 when a recorded result lies outside its published tolerance.

Rows whose published number is unchecked only warn: a gate that fails on a number nobody has
read in its source would teach people to ignore it. Rows of a modified recipe (``--epochs``,
``--set``... :meth:`RunRecord.changed`) are listed as skipped, never judged against the shipped
recipe's number; a run directory of a modified recipe is refused with one line saying what
changed (exit 2): the gate passes only what it judged.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError
from bench.results.published import Published
from bench.results.rows import (CHANCE, FAILED, MODIFIED, UNCHECKED, WITHIN, Row,
                                judge, matches)
from bench.runrecord import RunRecord


@dataclass(frozen=True)
class Verdict:
    name: str  # network / recipe / protocol, or the run directory
    status: str  # within | outside | at chance level | reference unchecked | modified recipe
    published_top1: float | None
    measured_top1: float | None
    diff_top1: float | None
    published_top5: float | None
    measured_top5: float | None
    tolerance: float | None
    n: int
    source: str

    @property
    def failed(self) -> bool:
        return self.status in FAILED

    @property
    def judged(self) -> bool:
        return self.status != MODIFIED


def check_rows(rows: list[Row], pattern: str = "*") -> list[Verdict]:
    """Verdicts for every row with runs whose network or recipe matches ``pattern``; a row of a
    modified recipe is a verdict that is not judged (status *modified recipe*)."""
    verdicts = []
    for row in rows:
        if row.n == 0 or not matches(row, pattern):
            continue
        if row.modified:
            verdicts.append(Verdict(f"{row.network} / {row.recipe} / {row.protocol}", MODIFIED,
                                    None, row.top1[0] if row.top1 else None, None, None,
                                    row.top5[0] if row.top5 else None, None, row.n, ""))
            continue
        if row.published is None:
            continue
        p = row.published
        verdicts.append(Verdict(f"{row.network} / {row.recipe} / {row.protocol}", row.status,
                                p.top1_err, row.top1[0] if row.top1 else None, row.diff1,
                                p.top5_err, row.top5[0] if row.top5 else None, p.tolerance,
                                row.n, p.source))
    return verdicts


def check_run(record: RunRecord, name: str) -> Verdict:
    """One fresh run against its recipe's reference (carried in its result.json); a run of a
    modified recipe is refused, naming what changed, unless it ended at chance level (failed)."""
    ref = record.reference
    # A run that learned nothing fails whatever was changed: chance level needs no reference.
    if record.changed() and record.outcome != "chance":
        measured = "–" if record.top1_err is None else f"{record.top1_err:.2f} %"
        raise BenchError(f"{name}: not judged: a modified {record.recipe} "
                         f"({', '.join(record.changed())}), not the recipe as shipped, so its "
                         f"published number does not apply (measured top-1 {measured}"
                         f"{'' if record.complete else ', incomplete'}); `bench record` keeps "
                         "it as its own row")
    if ref.get("top1_err") is None and ref.get("top5_err") is None:
        raise BenchError(f"{name}: its recipe has no published number to check against")
    if not record.complete:
        raise BenchError(f"{name}: the run did not finish (complete = false); resume it first")
    published = Published(network=record.network, recipe=record.recipe,
                          dataset=record.dataset, protocol=record.protocol,
                          source=ref["source"], verified=ref["verified"],
                          tolerance=ref["tolerance"], top1_err=ref["top1_err"],
                          top5_err=ref["top5_err"], direction=ref["direction"])
    top1 = (record.top1_err, 0.0) if record.top1_err is not None else None
    top5 = (record.top5_err, 0.0) if record.top5_err is not None else None
    status = judge(published, top1, top5, 1, chance=record.outcome == "chance")
    diff = None if top1 is None or published.top1_err is None else top1[0] - published.top1_err
    return Verdict(name, status, published.top1_err, record.top1_err, diff,
                   published.top5_err, record.top5_err, published.tolerance, 1,
                   published.source)


def _f(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def render_text(verdicts: list[Verdict]) -> str:
    lines = []
    for v in verdicts:
        if not v.judged:
            lines.append(f"skipped {v.name}: a modified recipe, not judged against a published "
                         f"number (measured top-1 {_f(v.measured_top1)} %, n={v.n})")
            continue
        mark = ("FAILED" if v.failed else
                {WITHIN: "ok", UNCHECKED: "warning"}.get(v.status, v.status))
        lines.append(f"{mark} {v.name}: measured top-1 {_f(v.measured_top1)} % vs published "
                     f"{_f(v.published_top1)} % (diff {_f(v.diff_top1)}, tolerance "
                     f"{v.tolerance:g}, n={v.n})" + _NOTES.get(v.status, ""))
    failed = sum(v.failed for v in verdicts)
    skipped = sum(not v.judged for v in verdicts)
    chance = sum(v.status == CHANCE for v in verdicts)
    lines.append(f"{len(verdicts) - skipped} checked: {sum(v.status == WITHIN for v in verdicts)}"
                 f" within, {failed} outside" + (f" ({chance} at chance level)" if chance else "")
                 + f", {sum(v.status == UNCHECKED for v in verdicts)} unchecked"
                 + (f"; {skipped} modified skipped" if skipped else ""))
    return "\n".join(lines)


_NOTES = {UNCHECKED: " - published number not checked against its source",
          CHANCE: " - a run ended at chance level: the network learned nothing"}


def render_json(verdicts: list[Verdict]) -> str:
    return json.dumps([dict(v.__dict__, failed=v.failed) for v in verdicts], indent=2)


def render_junit(verdicts: list[Verdict],
                 extra: list[tuple[str, bool, str, str]] = ()) -> str:
    """JUnit XML, one test case per checked row, for CI dashboards; ``extra`` are more cases
    as (name, failed, status, text) (the experiments' claims)."""
    suite = ET.Element("testsuite", name="bench check", tests=str(len(verdicts) + len(extra)),
                       failures=str(sum(v.failed for v in verdicts) + sum(e[1] for e in extra)),
                       skipped=str(sum(v.status in (UNCHECKED, MODIFIED) for v in verdicts)))
    for name, failed, status, text in extra:
        case = ET.SubElement(suite, "testcase", classname="bench.check.claims", name=name)
        ET.SubElement(case, "failure" if failed else "system-out",
                      **({"message": status} if failed else {})).text = text
    for v in verdicts:
        case = ET.SubElement(suite, "testcase", classname="bench.check", name=v.name)
        if not v.judged:
            ET.SubElement(case, "skipped", message="modified recipe: not judged").text = (
                f"measured top-1 {_f(v.measured_top1)} (n={v.n}); no published number")
            continue
        text = (f"measured top-1 {_f(v.measured_top1)} vs published {_f(v.published_top1)} "
                f"(diff {_f(v.diff_top1)}, tolerance {v.tolerance:g}); source: {v.source}")
        if v.failed:
            ET.SubElement(case, "failure", message=(
                "at chance level" if v.status == CHANCE else "outside tolerance")).text = text
        elif v.status == UNCHECKED:
            ET.SubElement(case, "skipped", message="published number unchecked").text = text
        else:
            ET.SubElement(case, "system-out").text = text
    return ET.tostring(suite, encoding="unicode")


def gate(targets: list[str] | tuple[str, ...], results: Path) -> list[Verdict]:
    """Verdicts for each target: a run directory (checked against its files first) or a
    pattern over the recorded rows' recipes and networks. A target that matches nothing is an
    error: a gate that checks nothing must not pass."""
    targets = list(targets) or ["*"]
    verdicts: list[Verdict] = []
    rows = None
    for target in targets:
        path = Path(target)
        if path.is_dir():
            from bench.results.records import check_run_dir
            verdicts.append(check_run(check_run_dir(path), str(path)))
            continue
        if rows is None:
            from bench.results.table import current_rows
            rows = current_rows(results)[0]
        found = check_rows(rows, target)
        if not any(v.judged for v in found):
            raise BenchError(_nothing(target, rows, results, bool(found)))
        verdicts += found
    return verdicts


def _nothing(target: str, rows: list[Row], results: Path, modified: bool = False) -> str:
    if modified:
        return (f"nothing to check for {target!r}: it matches only rows of modified recipes, "
                "which have no published number to judge them against")
    if not any(r.n for r in rows):
        return (f"nothing to check for {target!r}: no complete run is recorded in "
                f"{results / 'runs'} (record one with `bench record RUN_DIR`)")
    return (f"nothing to check for {target!r}: it is neither a run directory nor a pattern "
            "matching the recipe or network of a recorded row with a published number "
            "(`bench table` lists them)")
