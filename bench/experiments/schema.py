"""Typed experiment objects. Everything here is already validated by :mod:`.loader`; these
classes only hold the result and derive what the runner needs (the quick version, the recipe
overrides of one run)."""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

from bench.experiments.predicate import Predicate


@dataclass(frozen=True)
class Claim:
    """One statement of a paper and the predicate that judges it on our measurements.
    ``unresolved`` is the written reason our small scale cannot judge it: the verdict is then
    'unresolved' whatever the predicate says, so it is never passed silently."""

    id: str
    claim: str
    source: str
    paper: str
    predicate: Predicate
    unresolved: str | None = None


@dataclass(frozen=True)
class LesionParams:
    """Veit et al. 2016 lesion study: ``samples`` random deletion sets per k, for k = 1 ..
    ``max_k`` (0: up to the number of removable units), each scored on the first ``images``
    test images (0: all of them)."""

    samples: int = 20
    max_k: int = 0
    images: int = 0


@dataclass(frozen=True)
class ResponseParams:
    """He 2015 Fig. 7: layer responses measured on ``images`` test images."""

    images: int = 256


@dataclass(frozen=True)
class Quick:
    """What ``--quick`` runs instead: fewer seeds, at most ``max_steps`` training steps in all
    (None: as many as the quick overrides' schedule has), extra recipe overrides (merged over the full ones), and the analysis parameters
    already merged with the full ones."""

    seeds: tuple[int, ...]
    max_steps: int | None
    overrides: tuple[tuple[str, Any], ...] = ()
    lesion: LesionParams = LesionParams()
    responses: ResponseParams = ResponseParams()


@dataclass(frozen=True)
class Experiment:
    """A small-scale reproduction: train ``networks`` x ``seeds`` from ``recipe`` with
    ``overrides``, run ``analyses`` and judge ``claims``. ``max_steps`` is a step limit (only
    :meth:`quick_version` may set one); ``is_quick`` marks that version, whose numbers are never
    results."""

    name: str
    description: str
    recipe: str
    networks: tuple[str, ...]
    seeds: tuple[int, ...]
    analyses: tuple[str, ...]
    overrides: tuple[tuple[str, Any], ...]
    lesion: LesionParams
    responses: ResponseParams
    notes: tuple[str, ...]
    claims: tuple[Claim, ...]
    quick: Quick
    max_steps: int | None = None
    is_quick: bool = False

    def quick_version(self) -> Experiment:
        """The experiment ``--quick`` runs: quick seeds, step limit and parameters, the quick
        overrides replacing full ones of the same key (others kept, in order)."""
        merged = dict(self.overrides)
        merged.update(self.quick.overrides)
        return dataclasses.replace(self, seeds=self.quick.seeds, max_steps=self.quick.max_steps,
                                   is_quick=True,
                                   overrides=tuple(merged.items()), lesion=self.quick.lesion,
                                   responses=self.quick.responses)

    def recipe_overrides(self, network: str, seed: int | None = None) -> list[str]:
        """The ``key=value`` strings for :func:`bench.recipes.load_recipe` that make this
        experiment's recipe train ``network`` (and, when given, with ``train.seed = seed``);
        values are written as TOML so they read back exactly."""
        items = [*self.overrides, ("network", network)]
        if seed is not None:
            items.append(("train.seed", seed))
        return [f"{key}={toml_value(value)}" for key, value in items]


def toml_value(value: Any) -> str:
    """One TOML value on one line (``repr`` is not TOML: ``True``, ``'it''s'``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        # JSON's escapes are TOML's too; TOML also wants DEL escaped, and no surrogate pairs
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML spelling for {type(value).__name__}")
