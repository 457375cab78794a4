"""Shared helpers for the model tests: small inputs so every registered net runs on 2 cores."""
from __future__ import annotations

import pytest

from bench.models import get_spec


def small_input_size(name: str) -> int:
    """32x32 reaches a 1x1 map after an ImageNet net's five stride-2 steps: the smallest input
    that exercises every layer of every registered net."""
    return 32 if get_spec(name).input_size == 224 else get_spec(name).input_size


@pytest.fixture
def mx():
    from bench._mxnet import require_mxnet
    return require_mxnet()


def reloaded_output(mx, net, x, directory, stem: str = "net"):
    """``net`` exported to ``directory/stem`` and loaded back as a SymbolBlock, run on ``x``:
    what a user of the exported files gets (numpy)."""
    net.export(str(directory / stem))
    reloaded = mx.gluon.SymbolBlock.imports(str(directory / f"{stem}-symbol.json"), ["data"],
                                            str(directory / f"{stem}-0000.params"))
    return reloaded(x).asnumpy()
