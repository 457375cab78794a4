"""Fixtures shared by every test; nothing model-specific belongs here."""
from __future__ import annotations

import os
import random

import numpy as np
import pytest

# Under pytest-xdist (`make test` runs `-n 2`), each worker gets its share of the cores: left
# to bench._mxnet's default every worker would start one OpenMP thread per core, 2 workers x 2
# threads on CI's 2 cores. Set before any test module imports MXNet (it reads it at import);
# subprocesses the tests start inherit it. A user-set OMP_NUM_THREADS wins.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(
        1, len(os.sched_getaffinity(0)) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))))


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks into node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep the tests of one module-scoped fixture on one xdist worker (``--dist loadgroup``).

    Such fixtures train runs or write data sets once for their module; spread over two workers
    each would build its own copy, so parallel tests would cost more than serial ones. Without
    xdist the mark is inert."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        for argname in info.names_closure:
            defs = info.name2fixturedefs.get(argname)
            if defs and defs[-1].scope == "module":
                item.add_marker(pytest.mark.xdist_group(f"{item.module.__name__}::{argname}"))
                break


@pytest.fixture(autouse=True)
def _seed():
    """Seed random, numpy and (when installed) MXNet with 0 before every test."""
    random.seed(0)
    np.random.seed(0)
    try:
        import mxnet
    except ImportError:
        return
    mxnet.random.seed(0)
