"""Is training still healthy? The checks the loop runs after every logging window and before
every checkpoint, so that a diverged run stops instead of reporting success and no checkpoint
holds a non-finite value.

A run has diverged when any of these holds:

* the window's loss is not finite (NaN or infinity);
* a parameter or a BatchNorm running statistic (Gluon keeps those as parameters too, with
  ``grad_req = "null"``) holds a non-finite value on any device. A finite loss does not rule
  this out: a running variance overflows to inf while the loss is still ~1e23, and the
  evaluation then sits at chance level for the rest of the run;
* the window's mean loss exceeds ``train.divergence_factor`` times :func:`loss_scale` (0 turns
  this bound off).

The parameter check is MXNet's fused ``multi_all_finite`` (the operator AMP's loss scaler uses
for gradients: many arrays, one flag) per device and dtype, read back with one synchronisation;
only when it fails are the values copied to the host to say which parameter is non-finite and
how much. Its CPU kernel (MXNet 1.9.1 ``src/operator/contrib/all_finite.cc``,
``MultiAllFiniteCPUKernel``) visits (largest array's size) x (number of arrays) positions, so the
arrays go in by size, in groups that keep that product within twice their values: on the digits
ResNet-20 (97 arrays, 270,810 values) 6 calls visit 331,680 positions instead of 3,575,808.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from bench._mxnet import require_mxnet
from bench.errors import BenchError

EXIT_DIVERGED = 3  # `bench run` exit status of a run that diverged
EXIT_CHANCE = 4  # ... of a complete run whose final top-1 error is at chance level
# MultiAllFiniteKernelParam::N in MXNet 1.9.1 (src/operator/contrib/all_finite-inl.h): the
# operator takes at most this many arrays per call (AMP's loss scaler chunks the same way).
_MAX_ARRAYS = 200


class Diverged(BenchError):
    """Training diverged: the loop stopped; nothing was saved after the last good checkpoint."""

    exit_code = EXIT_DIVERGED


class ChanceLevel(BenchError):
    """A run finished but its final top-1 error is at chance level."""

    exit_code = EXIT_CHANCE


def finite_flags(params) -> list:
    """One NDArray per (device, dtype) of ``params`` (a Gluon ``ParameterDict``), 1.0 when every
    value of every array there is finite, else 0.0. Asynchronous: nothing waits for them yet."""
    mx = require_mxnet()
    groups: dict[tuple[Any, Any], list] = {}
    for param in params.values():  # (Python attributes: no call into MXNet per array)
        size, dtype = math.prod(param.shape), np.dtype(param.dtype)
        for ctx, data in zip(param.list_ctx(), param.list_data()):
            groups.setdefault((ctx, dtype), []).append((size, data))
    flags = []
    for (ctx, _), arrays in groups.items():
        out = mx.nd.ones((1,), ctx=ctx)
        for chunk in _by_size(arrays):
            mx.nd.multi_all_finite(*chunk, num_arrays=len(chunk), init_output=False, out=out)
        flags.append(out)
    return flags


def _by_size(arrays: list[tuple[int, Any]]) -> list[list]:
    """The arrays in calls of at most ``_MAX_ARRAYS``, smallest first, each call's largest size
    times its count at most twice the values it holds (the CPU kernel's work)."""
    chunks: list[list] = []
    chunk: list = []
    total = 0
    for size, data in sorted(arrays, key=lambda pair: pair[0]):
        if chunk and (len(chunk) == _MAX_ARRAYS or size * (len(chunk) + 1) > 2 * (total + size)):
            chunks.append(chunk)
            chunk, total = [], 0
        chunk.append(data)
        total += size
    return chunks + [chunk] if chunk else chunks


def count_unhealthy(params) -> int:
    """How many (device, dtype) groups of ``params`` hold a non-finite value: one fused
    reduction per group and one synchronisation in all."""
    mx = require_mxnet()
    flags = finite_flags(params)
    if not flags:
        return 0
    cpu = mx.cpu()
    values = mx.nd.concat(*[f.as_in_context(cpu) for f in flags], dim=0).asnumpy()
    return int(len(values) - values.sum())


def nonfinite_params(params) -> list[tuple[str, int, int, str]]:
    """(name, non-finite values, size, "nan"/"inf"/"nan and inf") of every parameter that
    holds one, in the network's order; the worst device's copy counts. Copies every value to
    the host: for the error message only, once :func:`count_unhealthy` found something."""
    found = []
    for name, param in params.items():
        worst = None
        for data in param.list_data():
            values = data.asnumpy()
            nan, inf = int(np.isnan(values).sum()), int(np.isinf(values).sum())
            if nan + inf and (worst is None or nan + inf > worst[0]):
                kind = " and ".join(k for k, n in (("nan", nan), ("inf", inf)) if n)
                worst = (nan + inf, values.size, kind)
        if worst:
            found.append((name, *worst))
    return found


def describe_nonfinite(found: list[tuple[str, int, int, str]]) -> str:
    """One clause for a message: how many parameters, and the first of them in detail."""
    if not found:
        return "a parameter became non-finite on another worker"
    name, bad, size, kind = found[0]
    more = f" (and {len(found) - 1} more parameter(s))" if len(found) > 1 else ""
    return f"parameter {name} holds {bad} non-finite ({kind}) of its {size} values{more}"


def loss_scale(first_step_loss: float, classes: int) -> float:
    """What the divergence bound multiplies: the mean loss of the run's first step (computed
    before any update, so no LR can have spoiled it), but at least ln(classes), the
    cross-entropy of a uniform prediction (a floor for a run resumed from a checkpoint that
    predates the reference, whose first step after the resume may already be near zero)."""
    return max(first_step_loss, math.log(max(classes, 2)))


def loss_bound_exceeded(mean_loss: float, scale: float | None, factor: float) -> bool:
    return bool(factor) and scale is not None and mean_loss > factor * scale


def last_good_checkpoint(run_dir: Path | None) -> Path | None:
    """The newest checkpoint of ``run_dir`` whose files match their checksums and whose
    parameters all load and are finite (read back from disk, not assumed), or None."""
    if run_dir is None:
        return None
    from bench.engine.checkpoint import PARAMS, list_checkpoints, read_state
    for path in reversed(list_checkpoints(run_dir)):
        try:
            read_state(path)
        except BenchError:
            continue
        if checkpoint_is_finite(path / PARAMS):
            return path
    return None


def checkpoint_is_finite(params_file: Path) -> bool:
    """Every array of a ``net.params`` file loads and is finite."""
    mx = require_mxnet()
    try:
        loaded = mx.nd.load(str(params_file))
    except Exception:  # noqa: BLE001 - MXNetError: an unreadable file is not a good checkpoint
        return False
    arrays = loaded.values() if isinstance(loaded, dict) else loaded
    return all(np.isfinite(a.asnumpy()).all() for a in arrays)
