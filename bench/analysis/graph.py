"""Making a (hybridized) net forget its cached graph after its structure changed."""
from __future__ import annotations

from typing import Iterator

from bench._mxnet import require_mxnet

mx = require_mxnet()
from mxnet.gluon import Block, HybridBlock  # noqa: E402


def blocks(net: Block) -> Iterator[Block]:
    """``net`` and every block below it, parents before children, in registration order."""
    yield net
    for child in net._children.values():  # Gluon 1.x holds the children themselves
        yield from blocks(child)


def rebuild_graph(net: Block) -> None:
    """Drop every cached graph below ``net`` so its next call traces ``hybrid_forward`` anew.

    A hybridized Gluon block replays the graph it traced on its first call; flipping a Python
    attribute that ``hybrid_forward`` reads (``ResidualUnit.bypassed``) is invisible to it
    until the cache is cleared. Hybridization flags (``static_alloc``...) are kept."""
    for block in blocks(net):
        if isinstance(block, HybridBlock):
            block._clear_cached_op()
