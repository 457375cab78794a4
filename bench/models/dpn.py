"""Dual Path Networks (Chen, Li, Xiao, Jin, Yan, Feng 2017, arXiv:1707.01629, NIPS 2017).

A dual path block keeps two paths side by side: a *residual* path of fixed width ``bw`` that the
block adds to (ResNet-style feature re-use) and a *dense* path that grows by ``inc`` channels per
block (DenseNet-style feature exploration). Every block reads the concatenation of both:

    x   = concat(res, dense)
    out = 1x1 -> grouped 3x3 -> 1x1 (bw + inc channels), each conv pre-activated by BN-ReLU
    res' = res + out[:bw],      dense' = concat(dense, out[bw:])

This module builds what the authors' MXNet code builds: cypw/DPNs@081328f
``settings/symbol_dpn.py`` (``DualPathFactory``), ``symbol_dpn_b.py`` (DPN-68b),
``symbol_basic.py`` and the per-net files ``symbol_dpn-{68,92,98,107,131}.py``; timm 1.0.31
``timm/models/dpn.py`` ports the same net (and loads the authors' weights). Read off them:

* Stem: conv 7x7/2 pad 3 (3x3/2 pad 1 for the "small" DPN-68) without bias to ``stem_width``
  channels (10 for DPN-68, 64 / 96 / 128 / 128 for DPN-92 / 98 / 131 / 107), BN, ReLU, max-pool
  3x3/2 pad 1.
* Four stages of ``layers`` blocks; stage s (0-based) has residual width bw = 64 * 2^s, times 4
  unless "small", bottleneck width r = k_r * 2^s and dense increment ``increments[s]``.
* A stage's first block projects its input: BN-ReLU-conv1x1 (stride 1 in stage 1, "proj";
  stride 2 after, "down") to bw + 2 * inc channels, split into the residual path [:bw] and the
  dense path [bw:] (so a stage's dense path starts at 2 * inc and ends at (k + 2) * inc). The
  first block's grouped 3x3 carries the same stride. The other blocks ("normal") add to the
  incoming residual path and extend the incoming dense path.
* DPN-68b (``separate_c1x1``): the last 1x1 is BN-ReLU followed by two convs, r -> bw and
  r -> inc (``c1x1_c1`` / ``c1x1_c2``), instead of one conv r -> bw + inc and a split. Same
  parameter count; the outputs differ only because the two weights are separate parameters.
* Head: concat of the two paths, BN, activation, 7x7 average pool (global at 224), fc with bias
  (timm: a 1x1 conv with bias, the same parameters).
* BN: MXNet's ``BatchNorm`` defaults, eps 1e-3 (Gluon's default is 1e-5), learnable scale and
  shift (``fix_gamma=False``), momentum 0.9; no conv has a bias.

Where the two sources differ, and what we chose:

* The head's activation: the authors' ``BN_AC(conv5_x_x, name='conv5_x_x__relu-sp')`` is a ReLU
  (``AC``'s default ``act_type='relu'``). timm's code asks for ELU there (``fc_act_layer='elu'``,
  since its first DPN commit, unexplained), and built it until c0d7388a (2023-01-07) passed it
  straight to ``BatchNormAct2d``; in timm 1.0.31 the request goes through
  ``get_norm_act_layer`` on a partial that already binds ``act_layer=relu``, which wins
  (``setdefault``), so timm 1.0.31's ``conv5_bn_ac`` is a ReLU too. ``head_act="relu"`` (the
  default) is the authors' net and timm 1.0.31's; ``head_act="elu"`` the older timm's. The
  parameters are the same.
* Nothing else differs: with timm 1.0.31's random-init weights (BN statistics randomized)
  copied in order into ours, all six nets give timm's logits at 64x64 to within 1.3e-7
  (``head_act="relu"``; ``"elu"`` against timm with its head act replaced by ``nn.ELU``):
  scripts/dpn_vs_timm.py, run where torch and timm are installed.
* Counting: the nets have exactly timm 1.0.31's learnable parameters (tests/models/
  source_layouts.py). The authors' README "GFLOPs" (2.5 / 6.5 / 11.7 / 16.0 / 18.3 for DPN-68 /
  92 / 98 / 131 / 107) are multiply-adds: ours are 6.50 / 11.67 / 16.01 / 18.30 GMACs at 224;
  DPN-68 gives 2.33, 7 % below its printed 2.5, with the parameters exact, so we build the
  code's net.

Gluon 1.x ``HybridBlock``s in the ``hybrid_forward(F, x)`` style; the two paths travel as a
pair of arguments between blocks (``_Streams``), so ``hybridize()`` and ``export()`` see one
static graph.
"""
from __future__ import annotations

from typing import Literal, Sequence

from bench._mxnet import require_mxnet
from bench.models.merge_and_run import _Streams
from bench.models.resnet import _bn, _conv

mx = require_mxnet()
from mxnet.gluon import HybridBlock, nn  # noqa: E402

BN_EPSILON = 1e-3  # MXNet's BatchNorm default, which the authors' symbols use; timm's eps=.001
HeadAct = Literal["relu", "elu"]
BlockKind = Literal["proj", "down", "normal"]


def _bn_relu(channels: int) -> list:
    return [_bn(channels, epsilon=BN_EPSILON), nn.Activation("relu")]


def _bn_relu_conv(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1,
                  prefix: str | None = None) -> nn.HybridSequential:
    """The authors' ``BN_AC_Conv``: pre-activation BN - ReLU - conv (no bias)."""
    seq = nn.HybridSequential(prefix=prefix)
    with seq.name_scope():
        seq.add(*_bn_relu(in_ch), _conv(in_ch, out_ch, kernel, stride, groups))
    return seq


class DualPathBlock(HybridBlock):
    """One dual path block (module docstring). Called as ``block(res, dense)`` it reads their
    concatenation; a "proj"/"down" block may be called with one tensor (the stem's output).
    Returns the new ``(res, dense)`` pair: ``res`` has ``res_channels`` channels, ``dense``
    ``inc`` more than it came in with (2 * ``inc`` after a projection)."""

    def __init__(self, in_channels: int, mid_channels: int, res_channels: int, inc: int,
                 groups: int, kind: BlockKind = "normal", *, separate_c1x1: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        if kind not in ("proj", "down", "normal"):
            raise ValueError(f"kind must be 'proj', 'down' or 'normal', not {kind!r}")
        stride = 2 if kind == "down" else 1
        self.kind, self.res_channels, self.inc = kind, res_channels, inc
        self.separate_c1x1 = separate_c1x1
        with self.name_scope():
            self.proj = None
            if kind != "normal":
                self.proj = _bn_relu_conv(in_channels, res_channels + 2 * inc, 1, stride,
                                          prefix="c1x1_w_")
            self.c1x1_a = _bn_relu_conv(in_channels, mid_channels, 1, prefix="c1x1_a_")
            self.c3x3_b = _bn_relu_conv(mid_channels, mid_channels, 3, stride, groups,
                                        prefix="c3x3_b_")
            if separate_c1x1:
                self.c1x1_c = nn.HybridSequential(prefix="c1x1_c_")
                with self.c1x1_c.name_scope():
                    self.c1x1_c.add(*_bn_relu(mid_channels))
                self.c1x1_c1 = nn.Conv2D(res_channels, 1, use_bias=False,
                                         in_channels=mid_channels, prefix="c1x1_c1_")
                self.c1x1_c2 = nn.Conv2D(inc, 1, use_bias=False, in_channels=mid_channels,
                                         prefix="c1x1_c2_")
            else:
                self.c1x1_c = _bn_relu_conv(mid_channels, res_channels + inc, 1,
                                            prefix="c1x1_c_")

    def hybrid_forward(self, F, res, dense=None):
        bw = self.res_channels
        x = res if dense is None else F.concat(res, dense, dim=1)
        if self.proj is not None:
            shortcut = self.proj(x)
            res = F.slice_axis(shortcut, axis=1, begin=0, end=bw)
            dense = F.slice_axis(shortcut, axis=1, begin=bw, end=bw + 2 * self.inc)
        out = self.c1x1_c(self.c3x3_b(self.c1x1_a(x)))
        if self.separate_c1x1:
            out_res, out_dense = self.c1x1_c1(out), self.c1x1_c2(out)
        else:
            out_res = F.slice_axis(out, axis=1, begin=0, end=bw)
            out_dense = F.slice_axis(out, axis=1, begin=bw, end=bw + self.inc)
        return res + out_res, F.concat(dense, out_dense, dim=1)


class _CatBnAct(HybridBlock):
    """The head's ``conv5_x_x_cat-final`` + ``BN_AC``: concat the two paths, BN, activation."""

    def __init__(self, channels: int, act: HeadAct, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.bn = _bn(channels, epsilon=BN_EPSILON)
            self.act = nn.Activation("relu") if act == "relu" else nn.ELU(alpha=1.0)

    def hybrid_forward(self, F, res, dense):
        return self.act(self.bn(F.concat(res, dense, dim=1)))


class DPN(HybridBlock):
    """A Dual Path Network for ImageNet: stem, four stages of :class:`DualPathBlock`, head.

    ``layers`` are the blocks per stage (the sources' ``k_sec``), ``increments`` each stage's
    dense increment (``inc_sec``), ``k_r`` the bottleneck width of stage 1 (doubling per stage),
    ``groups`` the 3x3's groups, ``stem_width`` the stem's channels (``num_init_features``).
    ``small`` (DPN-68) uses a 3x3 stem conv and residual widths 64..512 instead of 256..2048.
    ``separate_c1x1`` is the b variant (DPN-68b); ``head_act`` the head's activation ("relu":
    the authors' code, "elu": timm's). ``features`` holds the stem, the stages (``stage1_``, ...;
    ``len()`` of one is its number of blocks), the head BN-activation and the pooling.
    """

    def __init__(self, *, layers: Sequence[int] = (3, 4, 20, 3),
                 increments: Sequence[int] = (16, 32, 24, 128), k_r: int = 96, groups: int = 32,
                 stem_width: int = 64, small: bool = False, separate_c1x1: bool = False,
                 head_act: HeadAct = "relu", classes: int = 1000, in_channels: int = 3,
                 **kwargs):
        super().__init__(**kwargs)
        _validate(layers, increments, k_r, groups, stem_width, head_act, classes)
        width_factor = 1 if small else 4
        with self.name_scope():
            self.features = _Streams(prefix="")
            with self.features.name_scope():
                kernel = 3 if small else 7
                self.features.add(_conv(in_channels, stem_width, kernel, 2),
                                  *_bn_relu(stem_width), nn.MaxPool2D(3, 2, 1))
                channels = stem_width
                self.stage_widths: list[tuple[int, int]] = []  # (residual, dense) per stage
                for stage, (depth, inc) in enumerate(zip(layers, increments)):
                    bw = 64 * 2 ** stage * width_factor
                    r = k_r * 2 ** stage
                    seq = _Streams(prefix=f"stage{stage + 1}_")
                    with seq.name_scope():
                        for i in range(depth):
                            kind = "normal" if i else ("proj" if stage == 0 else "down")
                            seq.add(DualPathBlock(channels, r, bw, inc, groups, kind,
                                                  separate_c1x1=separate_c1x1,
                                                  prefix=f"unit{i + 1}_"))
                            channels = bw + 3 * inc if i == 0 else channels + inc
                    self.features.add(seq)
                    self.stage_widths.append((bw, channels - bw))
                self.features.add(_CatBnAct(channels, head_act, prefix="head_"),
                                  nn.GlobalAvgPool2D(), nn.Flatten())
            self.output = nn.Dense(classes, in_units=channels)
        self.num_features = channels

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


def _validate(layers, increments, k_r, groups, stem_width, head_act, classes) -> None:
    checks = [
        (len(layers) == len(increments) and len(layers) > 0,
         "layers and increments must be non-empty and of equal length"),
        (all(int(n) > 0 for n in layers), "every stage needs at least one block"),
        (all(int(c) > 0 for c in increments), "increments must be positive"),
        (int(groups) > 0 and int(k_r) > 0 and int(k_r) % int(groups) == 0,
         f"k_r ({k_r!r}) must be a positive multiple of groups ({groups!r})"),
        (int(stem_width) > 0, f"stem_width must be positive, not {stem_width!r}"),
        (head_act in ("relu", "elu"), f"head_act must be 'relu' or 'elu', not {head_act!r}"),
        (int(classes) > 0, f"classes must be positive, not {classes!r}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)
