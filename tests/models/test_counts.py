"""Parameter and multiply-add counts against the papers' tables and GluonCV's own nets."""
from __future__ import annotations

import pytest

from bench.models import get_model, get_spec, list_models

GLUONCV = [n for n in list_models() if get_spec(n).gluoncv]


def _profile(net, size):
    from bench.models import profile
    return profile(net, (1, 3, size, size))


# He et al. 2015 Table 1, "FLOPs" = multiply-adds, x 10^9, at 224x224.
HE2015_TABLE1 = {"resnet18_v1": 1.8, "resnet34_v1": 3.6, "resnet50_v1": 3.8,
                 "resnet101_v1": 7.6, "resnet152_v1": 11.3}


@pytest.mark.parametrize("name, gmacs", HE2015_TABLE1.items())
def test_imagenet_macs_match_he2015_table1(name, gmacs):
    assert _profile(get_model(name), 224).gmacs == pytest.approx(gmacs, rel=0.02)


# Learnable parameters in millions. The papers round to 2 significant digits, and He 2016's
# 10.2M for ResNet-1001 leaves out BN (conv weights alone are 10.18M; with BN 10.33M), so
# compare within 2 %.
PAPER_PARAMS_M = {
    "cifar_resnet20_v1_a": 0.27, "cifar_resnet32_v1_a": 0.46, "cifar_resnet44_v1_a": 0.66,
    "cifar_resnet56_v1_a": 0.85, "cifar_resnet110_v1_a": 1.7,
    "cifar_resnet1202_v1_a": 19.4,  # He et al. 2015 Table 6
    "cifar_resnet164_v2": 1.7, "cifar_resnet1001_v2": 10.2,  # He et al. 2016 Table 2
    "cifar_wrn28_10": 36.5,  # Zagoruyko & Komodakis 2016 Table 4
}


@pytest.mark.parametrize("name, millions", PAPER_PARAMS_M.items())
def test_cifar_params_match_the_papers(name, millions):
    assert _profile(get_model(name), 32).learnable_params / 1e6 == pytest.approx(millions,
                                                                                rel=0.02)


@pytest.mark.parametrize("name", GLUONCV)
def test_same_parameter_count_and_macs_as_gluoncv(name):
    from bench.models.gluoncv_import import build_gluoncv
    size = get_spec(name).input_size
    ours, theirs = _profile(get_model(name), size), _profile(build_gluoncv(name), size)
    assert ours.total_params == theirs.total_params
    assert ours.learnable_params == theirs.learnable_params
    assert ours.macs == theirs.macs


def test_profile_counts_a_tiny_net_by_hand(mx):
    from mxnet.gluon import nn
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, 3, padding=1, in_channels=2, use_bias=False),
            nn.BatchNorm(in_channels=4), nn.Dense(5, in_units=4 * 8 * 8))
    net.initialize()
    from bench.models import profile
    p = profile(net, (1, 2, 8, 8))
    conv, bn, dense = 4 * 2 * 9, 4 * 4, 4 * 8 * 8 * 5 + 5
    assert p.total_params == conv + bn + dense
    assert p.learnable_params == conv + 8 + dense
    assert p.macs == conv * 8 * 8 + 4 * 8 * 8 * 5
    assert p.activation_bytes == 4 * (4 * 64 + 4 * 64 + 5)
    # Predict mode: at the BN the conv's output and the BN's are alive, the input already freed.
    assert p.inference_bytes == 4 * (4 * 64 + 4 * 64)


def test_inference_memory_keeps_a_shortcut_alive(mx):
    """y = conv2(relu(conv1(x))) + x: the input stays alive until the addition reads it, so at
    relu and at conv2 three 2x8x8 tensors are alive at once (by hand: x, the reader's input and
    its output); without the shortcut two would be."""
    from mxnet.gluon import nn

    class Unit(nn.HybridBlock):
        def __init__(self, shortcut: bool):
            super().__init__()
            self.shortcut = shortcut
            self.conv1 = nn.Conv2D(2, 3, padding=1, in_channels=2, use_bias=False)
            self.conv2 = nn.Conv2D(2, 3, padding=1, in_channels=2, use_bias=False)

        def hybrid_forward(self, F, x):
            y = self.conv2(F.relu(self.conv1(x)))
            return y + x if self.shortcut else y

    from bench.models import profile
    tensor = 4 * 2 * 8 * 8
    for shortcut, alive in ((True, 3), (False, 2)):
        net = Unit(shortcut)
        net.initialize()
        assert profile(net, (2, 2, 8, 8)).inference_bytes == alive * tensor


def test_option_a_and_plain_nets_have_fewer_parameters_than_projections():
    a, b, c, plain = (_profile(get_model(n), 224).learnable_params for n in
                      ("resnet34_v1_a", "resnet34_v1", "resnet34_v1_c", "plain34_v1"))
    assert plain == a < b < c


def test_profile_is_the_function_after_its_module_was_imported(mx):
    """`from bench.models import profile` once returned the module of the same name whenever
    something had imported that module first (the README's example raised TypeError)."""
    import importlib
    importlib.import_module("bench.models.counting")
    from bench.models import profile
    assert callable(profile) and profile.__name__ == "profile"
    assert profile(get_model("cifar_resnet20_v1"), (1, 3, 32, 32)).learnable_params > 0
