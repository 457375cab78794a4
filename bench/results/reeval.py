"""Re-evaluations of published weights (``bench eval --record RECIPE``) as run records.

The same weights move by 0.01-0.15 points between evaluation pipelines (resize, crop fraction,
interpolation), so a re-evaluation is its own protocol, ``"<protocol> (published weights)"``,
compared with the published number under a tighter tolerance than a retraining.

The same weights converted (``bench eval --dtype int8|bfloat16 --record``) are a row of their
own too, ``"<protocol> (int8 naive, 10 calib batches)"``
(:func:`bench.results.published.precision_protocol`), judged against the recipe's fp32
reference and tolerance (:mod:`bench.results.rows`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import dataclasses
import hashlib

from bench.files import sha256_file
from bench.results.published import precision_label, precision_protocol
from bench.runrecord import RunRecord

WEIGHTS_PROTOCOL = "{protocol} (published weights)"
WEIGHTS_TOLERANCE = 0.15


def weights_protocol(protocol: str) -> str:
    return WEIGHTS_PROTOCOL.format(protocol=protocol)


def reeval_record(result: dict[str, Any], recipe: str, params: Path) -> RunRecord:
    """The record of ``bench eval``'s ``result`` for the table row of ``recipe``."""
    from bench.provenance import provenance
    digest = sha256_file(Path(params))
    return RunRecord(
        kind="weights", recipe=recipe, recipe_hash=f"weights-{digest[:12]}",
        shipped_recipe_hash=None, network=result["network"], dataset=result["dataset"],
        protocol=weights_protocol(result["protocol"]), seed=None, top1_err=result["top1_err"],
        top5_err=result["top5_err"], num_eval_samples=result["num_samples"], complete=True,
        epochs_done=0, epochs=None, iterations=None, total_iterations=None, train_time_s=None,
        train_images_per_s=None, global_batch=None, workers=None, lr=None, dtype=None,
        wall_time_s=None, reference={}, reached_reference=None, history=[], files={},
        changes=[], started=None, params_file=Path(params).name, params_sha256=digest,
        input_size=result["input_size"], resize=result["resize"], **provenance())


def precision_record(result: dict[str, Any], recipe: str, params: Path) -> RunRecord:
    """The record of the converted net in ``bench eval --dtype``'s ``result``: its own protocol
    row (the precision and calibration named in it), the converted net's errors, its dtype."""
    converted = result["converted"]
    protocol = precision_protocol(result["protocol"], precision_label(
        converted["dtype"], converted["fused"], converted["calibration"]))
    base = reeval_record(result, recipe, params)
    # Another precision of the same weights is another measurement: its own name and hash.
    key = hashlib.sha256(f"{base.params_sha256} {protocol}".encode()).hexdigest()
    return dataclasses.replace(
        base, protocol=protocol, recipe_hash=f"{key[:12]}-{converted['dtype']}",
        top1_err=converted["top1_err"], top5_err=converted["top5_err"],
        num_eval_samples=converted["num_samples"], dtype=converted["dtype"])
