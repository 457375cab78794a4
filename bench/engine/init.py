"""Initialise a network as a recipe's ``[train]`` says: ``init`` (conv weights, and the
classifier's unless ``init_fc`` names another), ``init_fc`` (the classifier), ``init_bn_gamma``.

The names say what they draw, because the ResNet sources differ exactly here (fan_in = k*k*C_in,
fan_out = k*k*C_out of a k x k conv; C_in, C_out of a dense layer):

* ``he_fan_in``: N(0, 2/fan_in), He et al. 2015 (arXiv:1502.01852) Sec. 2.2's forward case and
  Caffe's MSRAFiller default; Paddle's default conv init; WRN's and stochastic depth's convs.
* ``he_fan_out``: N(0, 2/fan_out), the same paper's backward case; fb.resnet.torch's ``ConvInit``.
* ``msra_prelu``: ``mx.init.MSRAPrelu()`` as GluonCV's train_imagenet.py calls it,
  N(0, 2/(1+0.25^2) / mean(fan_in, fan_out)).
* ``xavier_uniform``: ``mx.init.Xavier()``, U(+-sqrt(6/(fan_in+fan_out))) (Glorot & Bengio 2010;
  GluonCV's CIFAR scripts, Bag of Tricks Sec. 2.1).

``init_fc``: ``same`` (the classifier's weight as ``init``, bias 0); ``torch_linear``: weight and
bias U(+-1/sqrt(fan_in)), Torch7's ``nn.Linear:reset()``; ``torch_linear_zero_bias``: that weight
with bias 0 (fb.resnet.torch, WRN, PaddleClas). ``init_bn_gamma``: ``one``, or ``uniform``:
U(0, 1), Torch7's ``BatchNormalization:reset()`` where the code never sets gamma (WRN,
stochastic depth). Other biases and BN betas start at 0 throughout.
"""
from __future__ import annotations

import math
from typing import Callable

from bench._mxnet import require_mxnet
from bench.errors import BenchError
from bench.recipes.schema import TrainSection

mx = require_mxnet()

# train.init -> the global initialiser of every weight without its own (conv and dense).
WEIGHT_INITS: dict[str, Callable[[], "mx.init.Initializer"]] = {
    "he_fan_in": lambda: mx.init.MSRAPrelu(factor_type="in", slope=0.0),
    "he_fan_out": lambda: mx.init.MSRAPrelu(factor_type="out", slope=0.0),
    "msra_prelu": lambda: mx.init.MSRAPrelu(),
    "xavier_uniform": lambda: mx.init.Xavier(),
}


class TorchLinearUniform(mx.init.Initializer):
    """U(+-1/sqrt(fan_in)) with fan_in read from the layer's weight when it is initialised (so a
    deferred ``in_units`` works too): Torch7's nn.Linear:reset() for its weight and its bias."""

    def __init__(self, weight) -> None:
        super().__init__()  # no kwargs: a hybridized graph serialises the initialiser's kwargs
        self._weight = weight

    def _init_weight(self, _, arr) -> None:
        bound = 1.0 / math.sqrt(self._weight.shape[1])
        mx.nd.random.uniform(-bound, bound, shape=arr.shape, out=arr)


class UnitUniform(mx.init.Initializer):
    """U(0, 1): Torch7's (nn and cudnn) BatchNormalization:reset() for gamma."""

    def _init_weight(self, _, arr) -> None:
        mx.nd.random.uniform(0.0, 1.0, shape=arr.shape, out=arr)


def initialize(net, train: TrainSection, ctxs: list) -> None:
    """Initialise ``net`` on ``ctxs``. Parameters that carry their own initialiser (a zero-init
    last BN gamma, a fixed BN without scale) keep it, except the classifier under ``init_fc``."""
    nn = mx.gluon.nn

    def special(block) -> None:
        if isinstance(block, nn.Dense) and train.init_fc != "same":
            block.weight.init = TorchLinearUniform(block.weight)
            if block.bias is not None and train.init_fc == "torch_linear":
                if not block.weight.shape[1]:  # the bias is initialised before the weight
                    raise BenchError(f"train.init_fc = 'torch_linear' draws the bias of "
                                     f"{block.name} from its input width, which the network "
                                     "leaves to shape inference; give the Dense its in_units")
                block.bias.init = TorchLinearUniform(block.weight)
            elif block.bias is not None:
                block.bias.init = "zeros"
        if isinstance(block, nn.BatchNorm) and train.init_bn_gamma == "uniform":
            gamma = block.gamma
            if gamma.grad_req != "null" and gamma.init == "ones":
                gamma.init = UnitUniform()

    net.apply(special)
    net.initialize(WEIGHT_INITS[train.init](), ctx=ctxs)
