"""Fixtures shared by every test; nothing model-specific belongs here."""
from __future__ import annotations

import random

import numpy as np
import pytest


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
