"""Every alias is the network its source names: same stage depths, same parameter count.

A count check is what tells timm's resnet200d (3/24/36/3, 64.7M) from PaddleClas's ResNet200_vd
(3/12/48/3, 74.7M): their multiply-adds are equal.
"""
from __future__ import annotations

import pytest

from bench.models import ALIASES, get_model, get_spec
from tests.models.source_layouts import (SOURCE_LAYOUTS, fb_preresnet_params,
                                         he2015_imagenet_params, kh_preact_cifar_params)


def _our_layout(alias: str) -> tuple[tuple[int, ...], int, int]:
    from bench.models import profile
    name = ALIASES[alias]
    net = get_model(name)
    stages = tuple(len(block) for block in net.features if block.prefix.startswith(
        f"{name}_stage"))
    size = get_spec(name).input_size
    p = profile(net, (1, 3, size, size))
    return stages, p.learnable_params, p.total_params


def test_every_alias_has_its_source_row():
    assert sorted(SOURCE_LAYOUTS) == sorted(ALIASES)


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_alias_matches_its_source(alias):
    src = SOURCE_LAYOUTS.get(alias)
    assert src is not None, f"add {alias!r} to tests/models/source_layouts.py"
    assert get_spec(alias).classes == src.classes
    stages, learnable, total = _our_layout(alias)
    assert stages == src.stages, src.source
    ours = total if src.total else learnable
    assert abs(ours - src.params - src.offset) <= src.tolerance, (
        f"{alias}: ours {ours}, source {src.params} + offset {src.offset} ({src.how})")


# The closed forms stand in for sources that cannot run here, so they are checked first against
# exact counts the sources publish or that their own code gives.
@pytest.mark.parametrize("block, layers, shortcut, stem_bias, expected", [
    ("basic", (2, 2, 2, 2), "B", 0, 11689512),  # torchvision resnet18 num_params (option B)
    ("basic", (3, 4, 6, 3), "B", 0, 21797672),  # torchvision resnet34 num_params
    ("bottleneck", (3, 4, 6, 3), "B", 64, 25557096),  # ResNet-50-deploy.prototxt, counted
    ("bottleneck", (3, 4, 23, 3), "B", 0, 44549160),  # ResNet-101 prototxt = torchvision's
    ("bottleneck", (3, 8, 36, 3), "B", 0, 60192808),  # ResNet-152 prototxt = torchvision's
])
def test_he2015_closed_form_reproduces_published_counts(block, layers, shortcut, stem_bias,
                                                        expected):
    assert he2015_imagenet_params(block, layers, shortcut, stem_bias) == expected


def test_he2015_shortcut_options_differ_by_their_projections():
    """Sec. 3.3: A adds no parameters over the plain net; B adds the three shape-changing
    projections of ResNet-34 (64->128, 128->256, 256->512, 1x1 conv + BN); C adds one more
    projection in each of the other 13 units (channels unchanged)."""
    a, b, c, plain = (he2015_imagenet_params("basic", (3, 4, 6, 3), s)
                      for s in ("A", "B", "C", "none"))
    assert a == plain
    assert b - a == sum(i * o + 2 * o for i, o in ((64, 128), (128, 256), (256, 512)))
    assert c - b == sum(n * (w * w + 2 * w) for n, w in ((3, 64), (3, 128), (5, 256), (2, 512)))


def test_preact_closed_forms_agree_with_other_counts():
    # He 2016 Table 4 prints 1.7M for ResNet-164 (its 10.2M for ResNet-1001 leaves out BN).
    assert round(kh_preact_cifar_params(164) / 1e6, 1) == 1.7
    # preresnet.lua's ResNet-200 has the convs and fc of timm's post-activation resnet200
    # (64 673 832, computed with timm==1.0.31) with its BN moved: each stage's first unit loses
    # the BN on its output and on its projection (2 x 4w each) and gains an input BN (2 x its
    # input channels, none in the very first unit); a final BN over 2048 channels is added.
    post = he2015_imagenet_params("bottleneck", (3, 24, 36, 3), "B")
    assert post == 64673832
    moved = sum(4 * 4 * w - 2 * cin for w, cin in ((64, 0), (128, 256), (256, 512), (512, 1024)))
    assert fb_preresnet_params((3, 24, 36, 3)) == post - moved + 2 * 2048
