"""Results: published numbers (:mod:`.published`), run records (:mod:`.records`), the generated
table (:mod:`.table`), the regression gate (:mod:`.gate`) and plots (:mod:`.plots`).

This layer reads run records (``result.json``), never the engine's internals."""
from __future__ import annotations

import os
from pathlib import Path


def results_dir(path: str | Path | None = None) -> Path:
    """``path``, ``$BENCH_RESULTS`` or the checkout's ``results/``."""
    if path:
        return Path(path)
    env = os.environ.get("BENCH_RESULTS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "results"
