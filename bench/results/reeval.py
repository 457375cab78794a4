"""Re-evaluations of published weights (``bench eval --record RECIPE``) as run records.

The same weights move by 0.01-0.15 points between evaluation pipelines (resize, crop fraction,
interpolation), so a re-evaluation is its own protocol, ``"<protocol> (published weights)"``,
compared with the published number under a tighter tolerance than a retraining."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

WEIGHTS_PROTOCOL = "{protocol} (published weights)"
WEIGHTS_TOLERANCE = 0.15


def weights_protocol(protocol: str) -> str:
    return WEIGHTS_PROTOCOL.format(protocol=protocol)


def reeval_record(result: dict[str, Any], recipe: str, params: Path) -> dict[str, Any]:
    """A schema-1 record of ``bench eval``'s ``result`` for the table row of ``recipe``."""
    from bench.provenance import provenance
    digest = hashlib.sha256(Path(params).read_bytes()).hexdigest()
    return {"schema": 1, "recipe": recipe, "recipe_hash": f"weights-{digest[:12]}",
            "network": result["network"], "dataset": result["dataset"],
            "protocol": weights_protocol(result["protocol"]), "top1_err": result["top1_err"],
            "top5_err": result["top5_err"], "num_eval_samples": result["num_samples"],
            "complete": True, "seed": None, "epochs_done": 0, "train_time_s": None,
            "params_file": Path(params).name, "params_sha256": digest,
            "input_size": result["input_size"], "resize": result["resize"], **provenance()}
