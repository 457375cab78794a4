"""The rows of the results table: published numbers next to the statistics of our runs, and
each row's status (see :data:`STATUS_RULE`)."""
from __future__ import annotations

import dataclasses
import fnmatch
import statistics
from dataclasses import dataclass

from bench.results.published import DATASETS, Published, split_precision
from bench.runrecord import RunRecord

WITHIN, OUTSIDE, CHANCE, NOT_RUN, UNCHECKED, NO_REFERENCE, PEER, MODIFIED = (
    "within", "outside", "at chance level", "not run yet", "reference unchecked",
    "no published number", "reference (no recipe here)", "modified recipe")
STATUSES = (WITHIN, OUTSIDE, CHANCE, UNCHECKED, NOT_RUN, PEER, NO_REFERENCE, MODIFIED)
FAILED = (OUTSIDE, CHANCE)  # what the gate fails
STATUS_RULE = (
    "Status: *within* when the mean of our complete runs differs from the published error by at "
    "most the tolerance (top-1, and top-5 where published; for a target marked `max`, only "
    "being worse than published + tolerance counts); *outside* otherwise; *at chance level* when "
    "a complete run ended at chance-level error while the published one is far lower (a failed "
    "run, whatever the mean and whether the reference is checked); *reference unchecked* "
    "when the published number has not been checked against its source (ours is shown, the "
    "gate only warns); *not run yet* when no run is recorded; *reference (no recipe here)* for "
    "a published row (a peer's: torchvision, timm, mmpretrain, a paper's variant...) that no "
    "recipe in `recipes/` trains, shown for comparison only; *modified recipe* for runs of a "
    "shipped recipe with something changed (`--epochs`, `--set`, another global batch or "
    "precision, a `--max-steps` stop), listed in brackets after the recipe's name: their own "
    "row, never compared with the published number nor counted in the recipe's row.")


def recipe_label(recipe: str, changed: list[str] | tuple[str, ...]) -> str:
    """The recipe column of a row: the name, and what changed from the shipped recipe, e.g.
    ``digits_resnet [--epochs 20, optim.lr=0.1]``."""
    return f"{recipe} [{', '.join(changed)}]" if changed else recipe


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
    runnable: bool  # a shipped recipe trains it (`bench run recipe RECIPE`)
    modified: tuple[str, ...] = ()  # what the row's runs changed from the shipped recipe

    @property
    def recipe_name(self) -> str:
        """The recipe's name without the label of what was modified."""
        return self.recipe.removesuffix(recipe_label("", self.modified))

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


def _key(record: RunRecord) -> tuple[str, str, str, str]:
    """A modified run's row is keyed by its label, so it never meets the published entry."""
    return (record.network, recipe_label(record.recipe, record.changed()), record.dataset,
            record.protocol)


def matches(row: Row, pattern: str) -> bool:
    """Whether ``pattern`` (fnmatch, or the exact label) names the row's recipe, its recipe's
    name (a modified recipe's rows go with it) or its network."""
    return pattern == row.recipe or any(fnmatch.fnmatchcase(name, pattern) for name in
                                        (row.recipe, row.recipe_name, row.network))


def _mean_std(values: list[float]) -> tuple[float, float] | None:
    if not values:
        return None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def judge(published: Published | None, top1, top5, n: int, runnable: bool = True,
          chance: bool = False) -> str:
    """The status of one row (see :data:`STATUS_RULE`); ``chance``: one of its ``n`` complete
    runs ended at chance level (``RunRecord.outcome``)."""
    if published is None:
        return NO_REFERENCE
    if n == 0:
        return NOT_RUN if runnable else PEER
    if chance:
        return CHANCE
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


def build_rows(published: list[Published], records: list[RunRecord],
               shipped: set[str] | None = None) -> list[Row]:
    """One row per published entry, plus one per recorded key that has no entry. A row is
    runnable when its recipe is one of ``shipped`` (default: the recipes in ``recipes/``); the
    others are the peers' published numbers (``build_published.py`` names them "CODE / model")."""
    if shipped is None:
        from bench.recipes import list_recipes
        shipped = set(list_recipes())
    by_key: dict[tuple, list[RunRecord]] = {}
    changed: dict[tuple, tuple[str, ...]] = {}
    for record in records:
        by_key.setdefault(_key(record), []).append(record)
        changed[_key(record)] = tuple(record.changed())
    entries = {p.key: p for p in published}
    rows = []
    for key in sorted(set(entries) | set(by_key), key=_sort_key):
        runs = by_key.get(key, [])
        done = [r for r in runs if r.complete]
        top1 = _mean_std([r.top1_err for r in done if r.top1_err is not None])
        top5 = _mean_std([r.top5_err for r in done if r.top5_err is not None])
        times = [r.train_time_s for r in done if r.train_time_s is not None]
        reached = [r.reached_reference["train_time_s"] for r in done if r.reached_reference]
        hardware = sorted({hardware_label(r) for r in done})
        modified = changed.get(key, ())
        entry = None if modified else entries.get(key) or _precision_entry(key, entries)
        name = runs[0].recipe if modified else key[1]
        runnable = name in shipped
        rows.append(Row(*key, entry, top1, top5, len(done), len(runs) - len(done),
                        statistics.fmean(times) if times else None,
                        statistics.fmean(reached) if reached else None, "; ".join(hardware),
                        MODIFIED if modified else
                        judge(entry, top1, top5, len(done), runnable,
                              any(r.outcome == "chance" for r in done)), runnable, modified))
    return rows


def _precision_entry(key: tuple[str, str, str, str],
                     entries: dict[tuple, Published]) -> Published | None:
    """A converted net's row (``full (int8 naive, 10 calib batches)``, from ``bench eval
    --dtype --record``) is judged against the recipe's fp32 entry for the base protocol, with
    its tolerance: a precision that costs more than the recipe allows fails the gate."""
    base, precision = split_precision(key[3])
    fp32 = entries.get((*key[:3], base)) if precision else None
    return None if fp32 is None else dataclasses.replace(fp32, protocol=key[3])


def _sort_key(key: tuple[str, str, str, str]) -> tuple:
    dataset = DATASETS.index(key[2]) if key[2] in DATASETS else len(DATASETS)
    return (dataset, key[1], key[0], key[3])


def hardware_label(record: RunRecord) -> str:
    hw = record.hardware or {}
    gpus = hw.get("gpus") or []
    if gpus:
        return f"{len(gpus)}x {gpus[0]}"
    return f"{hw.get('cpu', '?')} ({hw.get('cpu_cores', '?')} cores)"
