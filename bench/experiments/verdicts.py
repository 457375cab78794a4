"""Judging an experiment's claims on its measurements, seed by seed.

A claim's predicate is evaluated once per seed, on that seed's measurement of every network it
names (so "plain-56 trains worse than plain-20" compares nets trained with the same seed):

- *shown*: it holds on every seed;
- *contradicted*: it fails on every seed (the gate fails);
- *not shown*: it holds on some seeds only, or a value it needs was not measured;
- *unresolved*: the experiment file gives a written reason the small scale cannot judge the
  claim; it is still evaluated and shown, never gated, never silently passed.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from bench.experiments.predicate import Ref
from bench.experiments.quantities import QUANTITIES, quantity_value
from bench.experiments.schema import Claim, Experiment

SHOWN, NOT_SHOWN, CONTRADICTED, UNRESOLVED = "shown", "not shown", "contradicted", "unresolved"
VERDICTS = (SHOWN, NOT_SHOWN, CONTRADICTED, UNRESOLVED)
Measurements = dict[tuple[str, int], dict[str, Any]]  # (network, seed) -> measurement


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    verdict: str
    holds: tuple[bool | None, ...]  # per seed, in ``seeds`` order (None: not measured)
    seeds: tuple[int, ...]
    values: tuple[tuple[Ref, tuple[float | None, ...]], ...]  # per reference, per seed

    @property
    def failed(self) -> bool:
        return self.verdict == CONTRADICTED

    def ours(self) -> str:
        """Each quantity the claim reads: median [min, max] over seeds (n = seeds measured)."""
        return "; ".join(f"{_ref_text(ref)} = {spread(vals)}" for ref, vals in self.values)

    def tally(self) -> str:
        held = sum(1 for h in self.holds if h)
        return f"holds on {held} of {len(self.holds)} seeds"


def spread(values: tuple[float | None, ...] | list[float | None]) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "not measured"
    med = statistics.median(got)
    if len(got) == 1:
        return f"{med:.3g}"
    return f"{med:.3g} [{min(got):.3g}, {max(got):.3g}]"


def _ref_text(ref: Ref) -> str:
    from bench.experiments.figures import label
    unit = QUANTITIES[ref.quantity].unit
    index = f"[{ref.index}]" if ref.index is not None else ""
    return f"{ref.quantity}{index} {label(ref.network)}" + (f" ({unit})" if unit != "1" else "")


def judge(experiment: Experiment, measurements: Measurements) -> list[ClaimResult]:
    """Every claim of ``experiment`` on ``measurements`` (what is missing counts as not
    measured, so a half-finished experiment is *not shown*, never *shown*)."""
    seeds = tuple(experiment.seeds)
    results = []
    for claim in experiment.claims:
        refs = claim.predicate.references()
        holds = []
        for seed in seeds:
            def lookup(ref: Ref, seed: int = seed) -> float | None:
                m = measurements.get((ref.network, seed))
                return None if m is None else quantity_value(m, ref.quantity, ref.index)
            holds.append(claim.predicate.evaluate(lookup))
        values = tuple((ref, tuple(_value(measurements, ref, s) for s in seeds)) for ref in refs)
        results.append(ClaimResult(claim, _verdict(claim, holds), tuple(holds), seeds, values))
    return results


def _value(measurements: Measurements, ref: Ref, seed: int) -> float | None:
    m = measurements.get((ref.network, seed))
    return None if m is None else quantity_value(m, ref.quantity, ref.index)


def _verdict(claim: Claim, holds: list[bool | None]) -> str:
    if claim.unresolved:
        return UNRESOLVED
    if holds and all(h is True for h in holds):
        return SHOWN
    if holds and all(h is False for h in holds):
        return CONTRADICTED
    return NOT_SHOWN
