"""Lesion studies (Veit et al. 2016): the error of a trained net with residual units removed.

Removing a unit means :attr:`ResidualUnit.bypassed`: the unit passes on its shortcut only.
Units are numbered 0.. in depth order, the numbering :func:`units` reports.

Every :class:`ResNet` is supported: the ResNets, wide ResNets and ResNeXts, and Res2Net /
Res2NeXt, whose :class:`bench.models.res2net.Res2NetUnit` is a :class:`ResidualUnit` with a
hierarchical branch, so it is bypassed by the same mechanism. The other families have no
single residual branch whose removal leaves a path around it, and are refused with the reason
(:data:`NO_RESIDUAL_UNITS`).
"""
from __future__ import annotations

import contextlib
import itertools
import math
import warnings
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from bench.analysis.errors import clean_error
from bench.analysis.graph import rebuild_graph
from bench.errors import BenchError
from bench.models.resnet import ResidualUnit, ResNet

Batches = Iterable[tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Unit:
    """One residual unit of a net: where it sits and whether it can be removed."""

    index: int  # 0-based in depth order
    stage: int  # 1-based
    position: int  # 1-based within its stage
    downsampling: bool  # stride > 1 or a change of channels
    name: str
    removable: bool


SUPPORTED = "a resnet, wide resnet, resnext or res2net network"

# Why each registered family without deletable residual units (ModelSpec.arch) is refused.
NO_RESIDUAL_UNITS: dict[str, str] = {
    "dpn": "a DPN block adds to the residual path and also extends the dense path with new "
           "channels that every later block reads, so there is no branch to delete alone",
    "fractalnet": "FractalNet has no shortcuts, only columns joined by means (its own lesion "
                  "is the deepest column alone: --set network_args.eval_columns=deepest)",
    "merge_and_run": "a merge-and-run block's two branches are coupled (each stream gets the "
                     "mean of both inputs), so no single residual branch can be deleted",
}


def refusal(arch: str) -> str | None:
    """The one-line refusal for a network of ``arch`` (``ModelSpec.arch``), None if supported."""
    if arch not in NO_RESIDUAL_UNITS:
        return None
    return (f"lesion analysis deletes residual units (Veit et al. 2016), and {arch} has "
            f"none: {NO_RESIDUAL_UNITS[arch]}; use {SUPPORTED}")


def _arch_of(net) -> str | None:
    """The registry's ``arch`` whose class built ``net``, None for a class not registered."""
    from bench.models.registry import ARCHITECTURES
    built = f"{type(net).__module__}:{type(net).__name__}"
    return next((arch for arch, path in ARCHITECTURES.items() if path == built), None)


def _unit_blocks(net) -> list[tuple[int, int, ResidualUnit]]:
    """(stage, position, unit) for every residual unit of ``net`` in depth order."""
    if not isinstance(net, ResNet):
        arch = _arch_of(net)
        raise BenchError(refusal(arch) if arch in NO_RESIDUAL_UNITS else
                         f"lesion analysis deletes the residual units of {SUPPORTED} of this "
                         f"suite, not of a {type(net).__name__}")
    found, stage = [], 0
    for child in net.features._children.values():
        members = [b for b in child._children.values() if isinstance(b, ResidualUnit)]
        if members:
            stage += 1
            found += [(stage, pos, unit) for pos, unit in enumerate(members, start=1)]
    return found


def units(net) -> list[Unit]:
    """Every residual unit of ``net`` (a :class:`bench.models.resnet.ResNet`, Res2Net included)
    in depth order."""
    return [Unit(index=i, stage=stage, position=pos, downsampling=unit.changes_shape,
                 name=unit.name, removable=unit.removable)
            for i, (stage, pos, unit) in enumerate(_unit_blocks(net))]


def _pick(net, indices: Iterable[int]) -> list[ResidualUnit]:
    blocks = [unit for _, _, unit in _unit_blocks(net)]
    picked = []
    for i in indices:
        if not isinstance(i, (int, np.integer)) or not 0 <= i < len(blocks):
            raise BenchError(f"no unit {i!r}: the net has {len(blocks)} units, numbered 0 to "
                             f"{len(blocks) - 1}")
        if not blocks[i].removable:
            raise BenchError(f"unit {i} ({blocks[i].name}) is plain and changes the shape, so it "
                             "cannot be removed; exclude it from the deletion sets")
        picked.append(blocks[i])
    return picked


@contextlib.contextmanager
def bypass(net, indices: Iterable[int]) -> Iterator[None]:
    """Run ``net`` with the units ``indices`` removed; everything is restored on exit.

    A hybridized net's graph is rebuilt on entry and on exit. While inside, the parameters of
    removed branches feed nothing; MXNet's warning saying so is silenced."""
    picked = _pick(net, list(indices))
    before = [unit.bypassed for _, _, unit in _unit_blocks(net)]
    try:
        for unit in picked:
            unit.bypassed = True
        rebuild_graph(net)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Parameter .* is not used by any "
                                                      r"computation")
            yield
    finally:
        for (_, _, unit), was in zip(_unit_blocks(net), before):
            unit.bypassed = was
        rebuild_graph(net)


def deletion_sets(n_units: int, k: int, samples: int, seed: int,
                  exclude: Iterable[int] = ()) -> list[tuple[int, ...]]:
    """Up to ``samples`` distinct sets of ``k`` unit indices (sorted tuples) from
    ``range(n_units)`` minus ``exclude``; all of them, in sorted order, when there are no more
    than ``samples``. The generator is seeded by (seed, k): the sets for one k do not change
    when other k are added to a study."""
    excluded = set(exclude)
    outside = sorted(i for i in excluded if not 0 <= i < n_units)
    if outside:
        raise BenchError(f"cannot exclude unit {outside[0]}: the net has units 0 to {n_units - 1}")
    pool = [i for i in range(n_units) if i not in excluded]
    if not 1 <= k <= len(pool):
        raise BenchError(f"cannot delete {k} units at once: choose k from 1 to {len(pool)} "
                         f"(the removable units)")
    if samples < 1:
        raise BenchError(f"the number of deletion sets must be positive, got {samples}")
    total = math.comb(len(pool), k)
    if total <= samples:
        return list(itertools.combinations(pool, k))
    rng = np.random.default_rng([seed, k])
    if total <= 4 * samples:  # rejection would keep drawing the few sets left: choose directly
        every = list(itertools.combinations(pool, k))
        return sorted(every[i] for i in rng.choice(total, size=samples, replace=False))
    chosen: set[tuple[int, ...]] = set()
    while len(chosen) < samples:
        chosen.add(tuple(sorted(int(i) for i in rng.choice(pool, size=k, replace=False))))
    return sorted(chosen)


def lesion_errors(net, batches_fn: Callable[[], Batches], sets: Iterable[Iterable[int]],
                  ctx) -> list[float]:
    """Top-1 error (%) with each set of units removed; the eval set is read once per set."""
    errors = []
    for removed in sets:
        with bypass(net, removed):
            errors.append(clean_error(net, batches_fn(), ctx))
    return errors


def single_deletions(net, batches_fn: Callable[[], Batches], ctx) -> list[tuple[Unit, float]]:
    """Veit et al. Fig. 3: every removable unit removed on its own, with the error it leaves."""
    removable = [u for u in units(net) if u.removable]
    errors = lesion_errors(net, batches_fn, [(u.index,) for u in removable], ctx)
    return list(zip(removable, errors))
