"""Import MXNet once, with the thread setting that makes the CPU wheel use every core."""
from __future__ import annotations

import os

from bench.errors import BenchError


def require_mxnet():
    """Return the ``mxnet`` module, or raise :class:`BenchError` saying how to install it."""
    # MXNet 1.9.1's CPU wheel otherwise ran like one thread on this 2-core machine (resnet50_v1d
    # inference 19-20 img/s vs 33-36 with 2 threads); it reads the variable at import.
    os.environ.setdefault("OMP_NUM_THREADS", str(len(os.sched_getaffinity(0))))
    try:
        import mxnet
    except ImportError:
        raise BenchError("MXNet is not installed: run `pip install -e '.[cpu]'` (CPU) or "
                         "`pip install -e '.[cu112]'` (CUDA 11.2 GPUs)") from None
    return mxnet
