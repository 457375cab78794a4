"""Results: published numbers (:mod:`.published`), run records (:mod:`.records`, of
:class:`bench.runrecord.RunRecord`), the rows and their status (:mod:`.rows`), the generated
table (:mod:`.table`), the regression gate (:mod:`.gate`) and plots (:mod:`.plots`).

This layer reads run records (``result.json``) and run directories' files, never the engine's
internals; the record type and the file helpers (:mod:`bench.files`) live below both layers."""
from __future__ import annotations

import os
from pathlib import Path


def results_dir(path: str | Path | None = None) -> Path:
    """``path``, ``$BENCH_RESULTS`` or the checkout's ``results/``."""
    if path:
        return Path(path)
    env = os.environ.get("BENCH_RESULTS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "results"
