"""Res2Net (Gao, Cheng, Zhao, Zhang, Yang, Torr 2019, arXiv:1904.01169, TPAMI 2021, "Res2Net:
A New Multi-scale Backbone Architecture") and Res2NeXt for ImageNet.

A Res2Net unit is a ResNet bottleneck whose 3x3 conv is replaced by a hierarchy of small ones.
The first 1x1 conv widens to ``width * scale`` channels, which are split into ``scale`` groups
x_1 .. x_s of ``width`` channels. The first ``scale - 1`` groups each go through a 3x3 conv
(with BN and ReLU), each after adding the previous group's output, so that group i sees a
receptive field grown i times:

    y_1 = K_1(x_1),   y_i = K_i(x_i + y_{i-1}) for 1 < i < s,   y_s = x_s

(the paper's Fig. 2 and eq. 1 number the groups the other way round; the code below follows the
authors' released code, gasvn/Res2Net ``res2net.py``, and timm). The outputs are concatenated
and a 1x1 conv (BN, no ReLU) restores ``4 * planes`` channels; the shortcut is added and ReLU'd
as in a ResNet-B unit. ``width = floor(planes * base_width / 64) * cardinality``: 26w4s is
``base_width=26, scale=4``; Res2NeXt-50 is ``base_width=4, cardinality=8, scale=4`` with every
3x3 a grouped conv of 8 groups.

The first unit of a stage (its "stage" type in the authors' code) adds nothing: every y_i =
K_i(x_i), the 3x3 convs carry the stage's stride, and the last group goes through a 3x3 average
pool with that stride (padding 1) instead of being passed through, so all groups reach the
output's size.

The stem, the stages and the shortcuts are :class:`bench.models.resnet.ResNet`'s: a 7x7 conv
stem and projection shortcuts (timm ``res2net50_26w_4s``), or the deep 32-32-64 stem and
avg-pool-then-1x1 shortcuts of ResNet-D (``stem="deep", stem_width=32, shortcut="D"``: timm
``res2net50d`` / ``res2net101d``, PaddleClas ``Res2Net50_vd_26w_4s``).

Where the sources differ (same parameters, different outputs), and the flags for each:

* Which units are "stage" units. The authors' code and timm: the first unit of every stage,
  including stage 1's, which keeps the resolution but changes the channels (timm:
  ``is_first = stride > 1 or downsample is not None``); its pool then has stride 1 and only
  smooths x_s. PaddleClas (ppcls/arch/backbone/model_zoo/res2net.py and res2net_vd.py,
  ``if s == 0 or self.stride == 2``): only the strided units, so stage 1's first unit is
  hierarchical and passes x_s through. ``stage_units="every_stage"`` (default) /
  ``"strided"``.
* The pool's padding. The authors' code and timm use PyTorch's ``AvgPool2d(3, s, 1)``, which
  counts the zero padding in the average (timm notes "this should probably have
  count_include_pad=False, but hurts original weights"); PaddleClas's ``AvgPool2D`` has
  ``exclusive=True``, which does not. ``pool_count_pad=True`` (default) / ``False``.

Gluon 1.x ``HybridBlock`` s in the ``hybrid_forward(F, x)`` style: ``hybridize()`` and
``export()`` work, and the units are :class:`ResidualUnit` s, so stochastic depth, zero-gamma
and lesion bypassing work as for ResNets.
"""
from __future__ import annotations

from typing import Literal, Sequence

from bench._mxnet import require_mxnet
from bench.models.resnet import ResidualUnit, ResNet, Shortcut, Stem, _bn, _conv

mx = require_mxnet()
from mxnet.gluon import HybridBlock, nn  # noqa: E402

StageUnits = Literal["every_stage", "strided"]


class HierarchicalBottleneck(HybridBlock):
    """A Res2Net unit's residual branch (module docstring): 1x1 to ``width * scale``, the
    hierarchy of ``scale - 1`` 3x3 convs over the groups, concat, 1x1 to ``out_ch``, BN.

    ``stage_unit`` makes it the first unit of a stage: no additions between groups, the
    stride on every 3x3, and a 3x3 average pool (stride ``stride``, padding 1; counting the
    padding if ``pool_count_pad``) on the last group.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, *, width: int, scale: int,
                 groups: int, stage_unit: bool, pool_count_pad: bool, zero_gamma: bool,
                 **kwargs):
        super().__init__(**kwargs)
        self._scale = scale
        self._stage_unit = stage_unit
        with self.name_scope():
            self.reduce = nn.HybridSequential(prefix="reduce_")
            with self.reduce.name_scope():
                self.reduce.add(_conv(in_ch, width * scale, 1), _bn(width * scale),
                                nn.Activation("relu"))
            self.convs = nn.HybridSequential(prefix="scales_")
            with self.convs.name_scope():
                for i in range(scale - 1):
                    seq = nn.HybridSequential(prefix=f"k{i + 1}_")
                    with seq.name_scope():
                        seq.add(_conv(width, width, 3, stride, groups), _bn(width),
                                nn.Activation("relu"))
                    self.convs.add(seq)
            self.pool = None
            if stage_unit:
                self.pool = nn.AvgPool2D(pool_size=3, strides=stride, padding=1,
                                         count_include_pad=pool_count_pad)
            self.expand = nn.HybridSequential(prefix="expand_")
            with self.expand.name_scope():
                self.expand.add(_conv(width * scale, out_ch, 1), _bn(out_ch, zero_gamma))

    def hybrid_forward(self, F, x):
        reduced = self.reduce(x)
        groups = F.split(reduced, num_outputs=self._scale, axis=1)
        outs, y = [], None
        for i, conv in enumerate(self.convs._children.values()):
            y = conv(groups[i] if y is None or self._stage_unit else groups[i] + y)
            outs.append(y)
        last = groups[self._scale - 1]
        outs.append(last if self.pool is None else self.pool(last))
        # The channel concat, as a stack on a new axis folded back into the channels (the same
        # tensor): MXNet 1.9.1's oneDNN concat fails in backward ("could not construct a
        # sub-memory") when the passed-through group joins the convs' outputs at widths such as
        # 26 or 14; the 5-D stack does not go through oneDNN. The fold takes its channel count
        # from ``reduced`` (width * scale) with reshape_like, not reshape's (0, -3, -2), which
        # MXNet's ONNX exporter rejects.
        stacked = F.stack(*outs, axis=1)
        return self.expand(F.reshape_like(stacked, reduced, lhs_begin=1, lhs_end=3,
                                          rhs_begin=1, rhs_end=2))


class Res2NetUnit(ResidualUnit):
    """A post-activation :class:`ResidualUnit` whose branch is a
    :class:`HierarchicalBottleneck` (``mid_channels`` is its group width)."""

    def __init__(self, in_channels: int, channels: int, stride: int, *, scale: int,
                 stage_unit: bool, pool_count_pad: bool, **kwargs):
        # Read by _make_body, which ResidualUnit.__init__ calls.
        self._res2 = dict(scale=scale, stage_unit=stage_unit, pool_count_pad=pool_count_pad)
        super().__init__(in_channels, channels, stride, **kwargs)

    @property
    def stage_unit(self) -> bool:
        """Whether this is its stage's first ("stage" type) unit: no hierarchical additions."""
        return self._res2["stage_unit"]

    def _make_body(self, in_ch, out_ch, stride, kind, stride_on, mid, groups, bias, zero_gamma,
                   dropout):
        return HierarchicalBottleneck(in_ch, out_ch, stride, width=mid, groups=groups,
                                      zero_gamma=zero_gamma, prefix="body_", **self._res2)


class Res2Net(ResNet):
    """Res2Net / Res2NeXt on :class:`ResNet`'s stem, stages and shortcuts (module docstring).

    ``base_width`` and ``scale`` are the paper's w and s (26w4s: 26, 4); ``cardinality`` > 1
    gives Res2NeXt. ``stage_units`` and ``pool_count_pad`` choose between the authors' /
    timm's and PaddleClas's stage units. ``layers`` are bottleneck units per stage,
    ``stage_channels`` each stage's output (4 x planes).
    """

    def __init__(self, *, layers: Sequence[int],
                 stage_channels: Sequence[int] = (256, 512, 1024, 2048), classes: int = 1000,
                 in_channels: int = 3, stem: Stem = "conv7", stem_width: int = 64,
                 shortcut: Shortcut = "B", base_width: int = 26, scale: int = 4,
                 cardinality: int = 1, stage_units: StageUnits = "every_stage",
                 pool_count_pad: bool = True, zero_init_last_bn: bool = False,
                 dropout: float = 0.0, survival_prob_last: float = 1.0, **kwargs):
        _validate(stem, shortcut, base_width, scale, cardinality, stage_units)
        self._res2 = dict(scale=scale, pool_count_pad=pool_count_pad)
        self._stage_units = stage_units
        super().__init__(block="bottleneck", layers=layers, stage_channels=stage_channels,
                         classes=classes, in_channels=in_channels, stem=stem,
                         stem_width=stem_width, stride_on="3x3", shortcut=shortcut,
                         cardinality=cardinality, base_width=base_width,
                         zero_init_last_bn=zero_init_last_bn, dropout=dropout,
                         survival_prob_last=survival_prob_last, **kwargs)

    def _make_unit(self, in_channels: int, channels: int, stride: int,
                   **kwargs) -> Res2NetUnit:
        if self._stage_units == "strided":
            stage_unit = stride > 1
        else:  # the units that change the shape (and so carry a projection): each stage's first
            stage_unit = stride > 1 or in_channels != channels
        return Res2NetUnit(in_channels, channels, stride, stage_unit=stage_unit, **self._res2,
                           **kwargs)


def _validate(stem, shortcut, base_width, scale, cardinality, stage_units) -> None:
    checks = [
        (stem in ("conv7", "deep"), f"Res2Net's stem is conv7 or deep, not {stem!r}"),
        (shortcut in ("B", "D"), f"Res2Net's shortcut is B (projection) or D (avg-pool + "
                                 f"projection), not {shortcut!r}"),
        (int(scale) == scale and scale >= 2, f"scale must be an integer >= 2, not {scale!r}"),
        (int(base_width) == base_width and base_width > 0,
         f"base_width must be a positive integer, not {base_width!r}"),
        (int(cardinality) == cardinality and cardinality > 0,
         f"cardinality must be a positive integer, not {cardinality!r}"),
        (stage_units in ("every_stage", "strided"),
         f"stage_units must be 'every_stage' or 'strided', not {stage_units!r}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)
