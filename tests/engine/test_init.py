"""train.init picks the initialiser the recipe's source used (Xavier for Bag of Tricks and
GluonCV's CIFAR scripts, MSRA otherwise): the weights have that initialiser's distribution."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from bench.engine.build import build_net
from bench.recipes import load_recipe


def _conv_weights(init: str) -> np.ndarray:
    import mxnet as mx
    recipe = load_recipe("he2015_cifar10_resnet20")
    recipe = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, init=init))
    net = build_net(recipe, classes=10, in_channels=3, ctxs=[mx.cpu()], dtype="float32")
    net(mx.nd.zeros((1, 3, 32, 32)))
    # A 3x3 conv of the last stage: 64 -> 64 channels, fan-in = fan-out = 576.
    weight = [p for name, p in net.collect_params().items()
              if name.endswith("weight") and p.shape == (64, 64, 3, 3)][0]
    return weight.data().asnumpy().ravel()


def test_xavier_is_uniform_within_glorots_bound():
    w = _conv_weights("xavier")
    bound = math.sqrt(6 / (576 + 576))
    assert np.abs(w).max() <= bound
    assert np.std(w) == pytest.approx(bound / math.sqrt(3), rel=0.05)


def test_msra_is_gluoncvs_msraprelu_gaussian():
    w = _conv_weights("msra")
    std = math.sqrt(2 / (1 + 0.25 ** 2) / 576)
    assert np.std(w) == pytest.approx(std, rel=0.05)
    # Gaussian tails: a uniform of the same spread would have no values beyond sqrt(3) std.
    assert (np.abs(w) > math.sqrt(3) * std).mean() > 0.05


def test_recipes_name_their_initialiser_where_the_source_says_xavier():
    assert load_recipe("bot_resnet50_baseline").train.init == "xavier"
    assert load_recipe("gluoncv_cifar_resnet20_v1").train.init == "xavier"
    assert load_recipe("he2015_cifar10_resnet20").train.init == "msra"
