"""The one vocabulary of what an experiment measures: its analyses and the quantities a claim's
predicate may name, each with how it is read from a run's measurement dict.

The runner writes one measurement dict per (network, seed) in the fixed layout below; claims,
reports and the README table all go through :data:`QUANTITIES` so that a quantity means the same
thing everywhere::

    {"network": str, "seed": int,
     "final": {"train_err": %, "test_err": %, "clean_train_err": %, "epoch_time_s": s},
     "epochs": [{"epoch": 1, "train_err": %, "test_err": %, "time_s": s}, ...],
     "responses": {"std": [one float per 3x3 layer, in depth order]},
     "lesion": {"base_err": %, "single": [{"index": 0, "stage": 1, "position": 1,
                                           "downsampling": false, "err": %}, ...],
                "k": [{"k": 1, "errs": [% per sampled deletion set]}, ...]},
     "model": {"units": int, "expected_depth": float}}

A part the run did not produce (an analysis not asked for, an empty list) reads as ``None``:
*not measured*, which a claim reports as such instead of passing or failing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

# "training" always runs; "model" is facts about the built network (no training needed).
ANALYSES = ("training", "responses", "lesion", "model")

Reader = Callable[[dict[str, Any], "int | None"], "float | None"]


@dataclass(frozen=True)
class Quantity:
    """A measured number: which analysis produces it, its unit, what it is, and whether it
    takes a ``[k]`` index (only ``lesion.k_err``: the number of deleted units)."""

    name: str
    analysis: str
    unit: str
    description: str
    indexed: bool = False


def _number(value: Any) -> float | None:
    """A measured number as float, or None for anything else (missing, a string, a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _part(measurement: dict[str, Any], *keys: str) -> Any:
    """``measurement[k1][k2]...`` or None when any level is missing or not a dict."""
    value: Any = measurement
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _numbers(values: Any) -> list[float] | None:
    """A list of measured numbers, or None if it is not a list or holds a non-number."""
    if not isinstance(values, list):
        return None
    out = [_number(v) for v in values]
    return None if any(v is None for v in out) else out  # type: ignore[misc]


def _single_errs(measurement: dict[str, Any], downsampling: bool | None) -> list[float] | None:
    """Errors after deleting one unit; ``downsampling`` True/False keeps those units only,
    None keeps all."""
    single = _part(measurement, "lesion", "single")
    if not isinstance(single, list):
        return None
    errs = []
    for row in single:
        if not isinstance(row, dict):
            return None
        if downsampling is not None and bool(row.get("downsampling")) != downsampling:
            continue
        err = _number(row.get("err"))
        if err is None:
            return None
        errs.append(err)
    return errs


def _k_means(measurement: dict[str, Any]) -> dict[int, float] | None:
    """Mean error over the sampled deletion sets, per number of deleted units k."""
    rows = _part(measurement, "lesion", "k")
    if not isinstance(rows, list):
        return None
    means = {}
    for row in rows:
        if not isinstance(row, dict) or isinstance(row.get("k"), bool) \
                or not isinstance(row.get("k"), int):
            return None
        errs = _numbers(row.get("errs"))
        if errs is None:
            return None
        mean = _mean(errs)
        if mean is not None:
            means[row["k"]] = mean
    return means


def _k_max_step(measurement: dict[str, Any], _: int | None) -> float | None:
    """Largest rise of the mean error from one measured k to the next, counting the intact
    net (``base_err``) as k = 0 when measured: small = error grows smoothly with deletions
    (Veit et al. 2016), large = one more deletion breaks the net."""
    means = _k_means(measurement)
    if means is None:
        return None
    base = _number(_part(measurement, "lesion", "base_err"))
    if base is not None:
        means.setdefault(0, base)
    curve = [means[k] for k in sorted(means)]
    if len(curve) < 2:
        return None
    return max(b - a for a, b in zip(curve, curve[1:]))


def _k_err(measurement: dict[str, Any], k: int | None) -> float | None:
    means = _k_means(measurement)
    return None if means is None else means.get(k)  # type: ignore[arg-type]


def _field(*keys: str) -> Reader:
    return lambda measurement, _: _number(_part(measurement, *keys))


def _of_singles(summary: Callable[[list[float]], float], downsampling: bool | None) -> Reader:
    def read(measurement: dict[str, Any], _: int | None) -> float | None:
        errs = _single_errs(measurement, downsampling)
        return summary(errs) if errs else None
    return read


def _responses_mean(measurement: dict[str, Any], _: int | None) -> float | None:
    stds = _numbers(_part(measurement, "responses", "std"))
    return None if stds is None else _mean(stds)


_TABLE: tuple[tuple[Quantity, Reader], ...] = (
    (Quantity("final.train_err", "training", "%", "training error of the last epoch, as "
              "measured during training (augmented batches, the net in training mode)"),
     _field("final", "train_err")),
    (Quantity("final.test_err", "training", "%", "test error after the last epoch"),
     _field("final", "test_err")),
    (Quantity("final.clean_train_err", "training", "%", "error on the training set after "
              "training, evaluated like the test set (no augmentation, inference mode)"),
     _field("final", "clean_train_err")),
    (Quantity("final.epoch_time_s", "training", "s", "median wall time of one training epoch"),
     _field("final", "epoch_time_s")),
    (Quantity("responses.mean", "responses", "1", "mean over the 3x3 layers of the standard "
              "deviation of each layer's response (He 2015 Fig. 7)"),
     _responses_mean),
    (Quantity("lesion.base_err", "lesion", "%", "test error of the intact net on the lesion "
              "test images"),
     _field("lesion", "base_err")),
    (Quantity("lesion.single_mean_err", "lesion", "%", "mean test error after deleting one "
              "non-downsampling unit, over those units (Veit et al. 2016 Fig. 3)"),
     _of_singles(lambda errs: sum(errs) / len(errs), False)),
    (Quantity("lesion.single_max_err", "lesion", "%", "worst test error after deleting one "
              "non-downsampling unit"),
     _of_singles(max, False)),
    (Quantity("lesion.downsampling_mean_err", "lesion", "%", "mean test error after deleting "
              "one downsampling unit"),
     _of_singles(lambda errs: sum(errs) / len(errs), True)),
    (Quantity("lesion.single_all_max_err", "lesion", "%", "worst test error after deleting "
              "any one unit, downsampling ones included"),
     _of_singles(max, None)),
    (Quantity("lesion.k_err", "lesion", "%", "mean test error over the random sets of k "
              "deleted units (Veit et al. 2016 Fig. 5)", indexed=True),
     _k_err),
    (Quantity("lesion.k_max_step", "lesion", "%", "largest rise of lesion.k_err from one k to "
              "the next, the intact net counting as k = 0: how smooth the decline is"),
     _k_max_step),
    (Quantity("model.units", "model", "1", "number of residual units (blocks) the lesion "
              "analysis can delete"),
     _field("model", "units")),
    (Quantity("model.expected_depth", "model", "1", "expected number of residual units a "
              "forward pass goes through in training (stochastic depth; else all units)"),
     _field("model", "expected_depth")),
)

QUANTITIES: dict[str, Quantity] = {q.name: q for q, _ in _TABLE}
_READERS: dict[str, Reader] = {q.name: read for q, read in _TABLE}


def quantity_value(measurement: dict[str, Any], name: str, index: int | None = None
                   ) -> float | None:
    """The value of quantity ``name`` (with ``index`` for an indexed one) in one measurement
    dict, or None when it was not measured. NaN (a diverged run) counts as not measured: it
    would make every comparison false and so look like a contradiction."""
    quantity = QUANTITIES[name]  # a KeyError is a bug: predicates are checked when parsed
    if quantity.indexed != (index is not None):
        raise ValueError(f"{name} {'needs' if quantity.indexed else 'takes no'} index")
    value = _READERS[name](measurement, index)
    return None if value is None or math.isnan(value) else value
