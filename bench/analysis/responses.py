"""He et al. 2015, Fig. 7: how strongly each 3x3 layer responds, plain net vs ResNet."""
from __future__ import annotations

from typing import Iterable

import numpy as np

from bench._mxnet import require_mxnet
from bench.analysis.graph import blocks
from bench.errors import BenchError

mx = require_mxnet()
from mxnet.gluon import HybridBlock, SymbolBlock, nn  # noqa: E402


def response_blocks(net: HybridBlock) -> list[HybridBlock]:
    """The block whose output is each 3x3 conv's response, in depth order.

    That is the BatchNorm directly after the conv (post-activation units, the stems), or the
    conv itself when no BN follows it inside its container: the second conv of a
    pre-activation unit, whose BN belongs to the next unit and acts after the addition."""
    found = []
    for parent in blocks(net):
        siblings = list(parent._children.values())
        for i, block in enumerate(siblings):
            if isinstance(block, nn.Conv2D) and block._kwargs["kernel"] == (3, 3):
                after = siblings[i + 1] if i + 1 < len(siblings) else None
                found.append(after if isinstance(after, nn.BatchNorm) else block)
    return found


def layer_responses(net: HybridBlock, x: np.ndarray, ctx) -> list[float]:
    """The standard deviation of every 3x3 layer's response to the batch ``x``, in depth order.

    He 2015 defines the response as "the outputs of each 3x3 layer, after BN and before other
    nonlinearity (ReLU/addition)". Where no BN follows a 3x3 conv directly (the last conv of a
    pre-activation unit) its raw conv output is used. The std is the population std over all
    N*C*H*W values. Computed in inference mode (BN on running statistics) from the net's
    symbolic graph, so a hybridized net gives the same values as an imperative one."""
    targets = response_blocks(net)
    if not targets:
        raise BenchError(f"{net.name} has no 3x3 convolution whose response could be measured")
    data = mx.sym.var("data", dtype="float32")  # x is float32; spares a type warning
    internals = net(data).get_internals()
    available = set(internals.list_outputs())
    names = [block.prefix + "fwd_output" for block in targets]
    missing = [n for n in names if n not in available]
    if missing:
        raise BenchError(f"the graph of {net.name} has no output {missing[0]}: measure "
                         "responses outside `bypass` (a bypassed unit's layers do not run)")
    probe = SymbolBlock(mx.sym.Group([internals[n] for n in names]), data,
                        params=net.collect_params())
    with mx.autograd.pause(train_mode=False):
        outputs = probe(mx.nd.array(x, ctx=ctx, dtype="float32"))
    return [float(out.asnumpy().astype(np.float64).std()) for out in outputs]


def sorted_responses(values: Iterable[float]) -> list[float]:
    """Fig. 7's lower panel: the same stds sorted in descending order."""
    return sorted((float(v) for v in values), reverse=True)
