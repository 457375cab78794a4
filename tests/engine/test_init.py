"""train.init / init_fc / init_bn_gamma draw what their names say. The oracle is each closed form
worked out here by hand from a layer's shape (fan_in = k*k*C_in, fan_out = k*k*C_out), never
MXNet's own fan arithmetic; every recipe names the initialiser its source used, and the old names
are refused with a pointer to the new ones."""
from __future__ import annotations

import math
import textwrap

import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

from bench.engine.init import WEIGHT_INITS, initialize
from bench.errors import BenchError
from bench.recipes import (list_recipes, load_recipe, recipe_from_dict, recipe_hash,
                           recipe_to_dict)
from bench.recipes.loader import read_toml, recipe_path
from bench.recipes.schema import INIT_BN_GAMMAS, INIT_FCS, INITS, TrainSection

# The layers and their fans, by hand: a 3x3 conv 16 -> 32 and an expanding 1x1 conv 64 -> 256.
FAN_3x3 = (3 * 3 * 16, 3 * 3 * 32)  # (144, 288)
FAN_1x1 = (64, 256)
DENSE_IN = 256


def _closed_form_std(init: str, fan_in: int, fan_out: int) -> float:
    return {
        "he_fan_in": math.sqrt(2 / fan_in),
        "he_fan_out": math.sqrt(2 / fan_out),
        "msra_prelu": math.sqrt(2 / (1 + 0.25 ** 2) / ((fan_in + fan_out) / 2)),
        # U(-a, a) with a = sqrt(6 / (fan_in + fan_out)) has std a / sqrt(3)
        "xavier_uniform": math.sqrt(6 / (fan_in + fan_out)) / math.sqrt(3),
    }[init]


def _net(dense_in_units: int = DENSE_IN, zero_gamma: bool = False) -> nn.HybridSequential:
    net = nn.HybridSequential()
    net.add(nn.Conv2D(32, 3, padding=1, in_channels=16, use_bias=True),
            nn.BatchNorm(in_channels=32),
            nn.Conv2D(256, 1, in_channels=64, use_bias=False),
            nn.BatchNorm(in_channels=256, gamma_initializer="zeros" if zero_gamma else "ones"),
            nn.BatchNorm(in_channels=256, scale=False, center=False),
            nn.Dense(100, in_units=dense_in_units))
    return net


def _params(seed: int = 0, **train) -> dict[str, np.ndarray]:
    mx.random.seed(seed)
    net = _net(zero_gamma=train.pop("zero_gamma", False))
    initialize(net, TrainSection(**train), [mx.cpu()])
    blocks = [net[i] for i in range(len(net))]
    convs = [b for b in blocks if isinstance(b, nn.Conv2D)]
    bns = [b for b in blocks if isinstance(b, nn.BatchNorm)]
    dense = net[-1]
    get = lambda p: p.data().asnumpy()  # noqa: E731
    return {"w3": get(convs[0].weight), "b3": get(convs[0].bias), "w1": get(convs[1].weight),
            "g0": get(bns[0].gamma), "be0": get(bns[0].beta), "g1": get(bns[1].gamma),
            "g_fixed": get(bns[2].gamma), "wd": get(dense.weight), "bd": get(dense.bias)}


def test_every_vocabulary_name_is_built():
    assert set(WEIGHT_INITS) == set(INITS)
    for fc in INIT_FCS:
        for gamma in INIT_BN_GAMMAS:
            _params(init="he_fan_in", init_fc=fc, init_bn_gamma=gamma)


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("layer,fans", [("w3", FAN_3x3), ("w1", FAN_1x1)])
def test_conv_weight_std_is_the_closed_form(init, layer, fans):
    w = _params(init=init)[layer].ravel()
    expected = _closed_form_std(init, *fans)
    assert abs(w.mean()) < 0.05 * expected
    # 5 %: over 4.8 standard errors of a sample std from 4608 (3x3) or 16384 (1x1) values, and
    # well short of the nearest other convention (msra_prelu vs he_fan_out on the 3x3: 12 %;
    # fan_in vs fan_out on the 1x1: 2x in std, 4x in variance).
    assert np.std(w) == pytest.approx(expected, rel=0.05)
    for other in INITS:
        other_std = _closed_form_std(other, *fans)
        if abs(other_std / expected - 1) > 0.1:
            assert np.std(w) != pytest.approx(other_std, rel=0.05)


@pytest.mark.parametrize("init", INITS)
def test_gaussian_or_uniform_as_named(init):
    w = _params(init=init)["w1"].ravel()
    std = _closed_form_std(init, *FAN_1x1)
    beyond = (np.abs(w) > math.sqrt(3) * std).mean()  # a uniform has nothing beyond sqrt(3) std
    if init == "xavier_uniform":
        assert np.abs(w).max() <= math.sqrt(6 / sum(FAN_1x1))
        assert beyond == 0
    else:
        assert beyond > 0.05  # a Gaussian: 8.3 %


@pytest.mark.parametrize("init", INITS)
def test_biases_zero_bn_gamma_one_beta_zero_and_the_dense_as_the_convs(init):
    p = _params(init=init)
    assert not p["b3"].any() and not p["bd"].any() and not p["be0"].any()
    assert (p["g0"] == 1).all() and (p["g1"] == 1).all()
    # init_fc = "same": the 256 -> 100 classifier from the same closed form (fan_out = 100)
    assert np.std(p["wd"]) == pytest.approx(_closed_form_std(init, DENSE_IN, 100), rel=0.05)


@pytest.mark.parametrize("init_fc", ["torch_linear", "torch_linear_zero_bias"])
def test_torch_linear_classifier(init_fc):
    p = _params(init="he_fan_out", init_fc=init_fc)
    bound = 1 / math.sqrt(DENSE_IN)  # Torch7 nn.Linear:reset(): stdv = 1/sqrt(inputSize)
    assert np.abs(p["wd"]).max() <= bound
    assert np.std(p["wd"]) == pytest.approx(bound / math.sqrt(3), rel=0.05)
    if init_fc == "torch_linear":  # the bias too, 100 values in (-bound, bound)
        assert np.abs(p["bd"]).max() <= bound and np.unique(p["bd"]).size == 100
        assert np.abs(p["bd"]).mean() == pytest.approx(bound / 2, rel=0.25)
    else:
        assert not p["bd"].any()
    # the convs keep train.init
    assert np.std(p["w1"]) == pytest.approx(_closed_form_std("he_fan_out", *FAN_1x1), rel=0.05)


def test_torch_linear_zero_bias_with_a_deferred_input_width():
    mx.random.seed(0)
    net = nn.HybridSequential()
    net.add(nn.Conv2D(64, 3, in_channels=3), nn.GlobalAvgPool2D(), nn.Flatten(), nn.Dense(500))
    initialize(net, TrainSection(init_fc="torch_linear_zero_bias"), [mx.cpu()])
    net(mx.nd.zeros((1, 3, 8, 8)))
    w = net[-1].weight.data().asnumpy()
    assert w.shape == (500, 64) and np.abs(w).max() <= 1 / 8
    assert np.std(w) == pytest.approx(1 / 8 / math.sqrt(3), rel=0.05)


def test_torch_linear_bias_needs_the_input_width():
    net = nn.HybridSequential()
    net.add(nn.Dense(10))
    with pytest.raises(BenchError, match="in_units"):
        initialize(net, TrainSection(init_fc="torch_linear"), [mx.cpu()])


def test_uniform_bn_gamma_keeps_zero_init_and_fixed_gammas():
    p = _params(init="he_fan_in", init_bn_gamma="uniform", zero_gamma=True)
    g = p["g0"]  # 32 values of U(0, 1)
    assert g.min() >= 0 and g.max() < 1 and np.unique(g).size == 32
    assert 0.3 < g.mean() < 0.7
    assert not p["g1"].any()  # a zero-initialised (last) BN gamma keeps its zeros
    assert (p["g_fixed"] == 1).all()  # BN without scale has no learnable gamma
    assert not p["be0"].any()


def test_uniform_bn_gamma_mean_over_many_channels():
    p = _params(init="he_fan_in", init_bn_gamma="uniform")
    assert p["g1"].mean() == pytest.approx(0.5, abs=0.06)  # 256 values: 3.3 standard errors
    assert p["g1"].std() == pytest.approx(math.sqrt(1 / 12), rel=0.15)


def test_same_seed_same_weights_on_every_device():
    mx.random.seed(3)
    net = _net()
    initialize(net, TrainSection(init_fc="torch_linear", init_bn_gamma="uniform"),
               [mx.cpu(0), mx.cpu(1)])
    for param in net.collect_params().values():
        a, b = (param.data(c).asnumpy() for c in (mx.cpu(0), mx.cpu(1)))
        assert np.array_equal(a, b), param.name


# ---- recipes -------------------------------------------------------------------------------

# What each family's source does (see each base recipe's notes for the file read at a commit).
FAMILY_INIT = {
    "he2015_": ("he_fan_in", "same", "one"),  # He 2015 -> arXiv:1502.01852 Sec. 2.2
    "he2016_": ("he_fan_out", "torch_linear_zero_bias", "one"),  # resnet-1k-layers ConvInit
    "huang2016_": ("he_fan_in", "torch_linear", "uniform"),  # Stochastic_Depth + nninit
    "zagoruyko2016_": ("he_fan_in", "torch_linear_zero_bias", "uniform"),  # WRN utils.lua
    "gluoncv_cifar_": ("xavier_uniform", "same", "one"),  # train_(mixup_)cifar10.py
    "gluoncv_resnet": ("msra_prelu", "same", "one"),  # train_imagenet.py
    "bot_": ("xavier_uniform", "same", "one"),  # Bag of Tricks Sec. 2.1
    "paddleclas_": ("he_fan_in", "torch_linear_zero_bias", "one"),  # Paddle Conv2D default
    "digits_": ("msra_prelu", "same", "one"),  # ours
    "mnist5k_": ("msra_prelu", "same", "one"),  # ours (the distillation demo, as digits_)
    # zlmzju/fusenet@659e6bf train_model.py mx.init.Mixed: convs Xavier(gaussian, in, 2),
    # the classifier Xavier(uniform, in, 1) with its bias 0
    "zhao2016_": ("he_fan_in", "torch_linear_zero_bias", "one"),
}


@pytest.mark.parametrize("name", list_recipes())
def test_every_recipe_names_its_initialiser(name):
    raw = read_toml(recipe_path(name))
    stated = [raw.get("train", {}).get("init")]
    if raw.get("base"):
        stated.append(read_toml(recipe_path(raw["base"])).get("train", {}).get("init"))
    assert any(stated), f"{name}: train.init is stated neither in the file nor in its base"
    family = [prefix for prefix in FAMILY_INIT if name.startswith(prefix)]
    assert len(family) == 1, f"{name}: no source family for its initialiser"
    t = load_recipe(name).train
    assert (t.init, t.init_fc, t.init_bn_gamma) == FAMILY_INIT[family[0]]


@pytest.mark.parametrize("old,new", [("msra", "msra_prelu"), ("xavier", "xavier_uniform")])
def test_old_names_are_refused_with_a_pointer(old, new, tmp_path):
    with pytest.raises(BenchError) as err:
        load_recipe("digits_resnet", [f"train.init={old}"])
    message = str(err.value)
    assert "\n" not in message and f"old name of {new!r}" in message
    assert "mx.init." in message  # what the old name meant
    (tmp_path / "r.toml").write_text(textwrap.dedent(f"""
        description = "x"
        network = "cifar_resnet20_v1"
        [train]
        init = "{old}"
        [reference]
        source = "a test fixture"
        top1_err = 10.0
        """))
    with pytest.raises(BenchError, match=f"r.toml: train.init = '{old}' is the old name of"):
        load_recipe("r", directory=tmp_path)


def test_a_stored_recipe_json_with_the_old_name_resumes_with_the_same_hash():
    recipe = load_recipe("digits_resnet")
    stored = recipe_to_dict(recipe)
    stored["train"]["init"] = "msra"  # as runs before the rename wrote recipe.json
    for key in ("init_fc", "init_bn_gamma"):  # and without the keys added since
        del stored["train"][key]
    back = recipe_from_dict(stored)
    assert back.train.init == "msra_prelu"
    # The recipe_hash of digits_resnet (seed 0) in the run records made before the rename, at
    # 1588686 (results/runs/digits_resnet--20261201T093711--seed0--1c429a90.json in 2d793b4).
    assert recipe_hash(back) == recipe_hash(recipe) == "1c429a90b048ed0e"


def test_the_rename_keeps_the_hash_of_a_xavier_recipe(tmp_path):
    (tmp_path / "tiny.toml").write_text(textwrap.dedent("""
        description = "a tiny recipe"
        network = "cifar_resnet20_v1"
        [train]
        init = "xavier_uniform"
        [reference]
        source = "test"
        top1_err = 10.0
        """))
    recipe = load_recipe("tiny", directory=tmp_path)
    # recipe_hash of this file with init = "xavier", computed by the code before the rename
    assert recipe_hash(recipe) == "c5e43f614f3f757d"
    stored = recipe_to_dict(recipe)
    stored["train"]["init"] = "xavier"
    assert recipe_from_dict(stored).train.init == "xavier_uniform"
    other = recipe_to_dict(recipe)
    other["train"]["init"] = "he_fan_in"
    assert recipe_hash(recipe_from_dict(other)) != recipe_hash(recipe)
