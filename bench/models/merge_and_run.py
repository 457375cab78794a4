"""Merge-and-Run nets (deep fusion nets DFN-MR; Zhao, Wang, Li, Tu, Zeng 2016, arXiv:1611.07718,
"On the Connection of Deep Fusion to Ensembling", IJCAI 2018 as "Deep Convolutional Neural
Networks with Merge-and-Run Mappings") for CIFAR.

A merge-and-run block assembles two residual branches in parallel. Each branch reads its own
stream; the *merge* averages the two streams' inputs, and the *run* adds that average to each
branch's output, giving the two streams of the next block:

    m = (s1(x1) + s2(x2)) / 2,    y1 = ReLU(m + F1(x1)),    y2 = ReLU(m + F2(x2))

This module builds exactly what the authors' MXNet code builds: zlmzju/fusenet@659e6bf
``network/cross.py`` (``CrossNet``, "cross" being DFN-MR) on ``network/base.py`` (``FuseNet``),
called "the code" below. Read off it:

* Stem: a 3x3 conv to stage 1's width, BN, ReLU; no pooling (``FuseNet.get_conv('g0')``).
* Three stages of blocks, widths 16k / 32k / 64k for ``--widen-factor`` k.
* Each branch F_i is post-activation (He 2015): 3x3 conv, BN, ReLU, 3x3 conv, BN; no conv bias
  (``get_two``). The ReLU comes after the addition, once per stream.
* The net's first block reads the stem's output on both streams (``get_group('g1', data,
  data, ...)``), so its merge is that output itself.
* Downsampling: the first block of stages 2 and 3 strides both branches' first conv by 2, and
  each stream gets its *own* projection s_i, a 1x1 conv with stride 2 and BN without ReLU
  (``get_zero('_l1')``, ``get_zero('_l2')``); the merge averages the two projected inputs.
  Elsewhere s_i is the identity.
* The net's last block has one output, ReLU(m + F1(x1) + F2(x2)) (``get_fusion(last=True)``):
  the two streams are summed into it, and global average pooling and the fc (with bias) read it.
* BN: learnable scale and shift (``fix_gamma=False``), eps 2e-5, momentum 0.9.

What the paper and the code leave open, and what we chose:

* Which flags built the published nets: the zlmzju/fusenet README table gives only depth and
  parameters. The code's ``--depth`` is a "plain network depth" that ``set_blocks(block_depth=
  4)`` turns into (depth - 2) / 12 blocks per stage; the published depth counts one path, 2 +
  2 x blocks. DFN-MR1 (56, 1.7M) is ``--depth 110`` (9 blocks a stage, width 1), DFN-MR2 (32,
  14.9M) ``--depth 62 --widen-factor 4`` (5, width 4): for each, the only flags of the code that
  give the published depth and a count within 1 %. DFN-MR3 (50, 24.8M) needs 8 blocks a stage;
  width 4 (``--depth 98 --widen-factor 4``) gives 24 151 882 parameters, 2.6 % below the
  README's 24.8M, and no flags of the code give 50 layers and 24.8M. We build the code's net.
  We found no other source for 24.8M either (issue 12). The authors' other counts are what the
  code builds: 0.3494M in tutorial.ipynb's log for ``--depth 26``, which is ours for (2, 2, 2),
  and the README's ImageNet 46.4M / 45.0M from symbol_cross.py / symbol_resnet.py. The IJCAI
  version (arXiv v2, Table 3 and Figure 2 captions) gives widths 64 / 128 / 256 and projection
  shortcuts "as in" He 2015. The single changes that do reach 24.8M are 3x3 projections (24.81M)
  or all 24 blocks C -> C without projections (24.77M), but either puts DFN-MR2 at 15.5M, not
  14.9M. An uneven split of the 24 blocks, (7, 9, 8), gives 24.59M, but the code's flags cannot
  build it.
* Where the stride sits: the code strides where the width changes (``kin != kout``); we stride
  the first block of every stage after the first and project wherever a block changes shape,
  which is the same for the code's doubling widths and keeps stage 2 and 3 downsampling if a
  caller chooses equal widths.
* The last block: the repository's first commit (783185b, whose README already had the results
  table) summed the two streams after the last block, (m + F1) + (m + F2) = 2m + F1 + F2 with
  one ReLU; 398f9f7 changed it to m + F1 + F2, as the code has it now. Same parameters; we
  follow the code at 659e6bf.
* Initialization and training (the code: MSRA-style Gaussian Xavier for convs, uniform for the
  fc, Nesterov SGD, lr 0.1, batch 64, wd 1e-4, 400 epochs) belong to the recipe, not here.

Gluon 1.x ``HybridBlock``s in the ``hybrid_forward(F, x)`` style: the two streams travel as a
pair of arguments between blocks, so ``hybridize()`` and ``export()`` see one static graph.
"""
from __future__ import annotations

from typing import Sequence

from bench._mxnet import require_mxnet
from bench.models.resnet import _bn, _conv

mx = require_mxnet()
from mxnet.gluon import HybridBlock, nn  # noqa: E402

BN_EPSILON = 2e-5  # the code's BatchNorm eps (Gluon's default is 1e-5)


def _branch(in_ch: int, out_ch: int, stride: int, prefix: str) -> nn.HybridSequential:
    """One residual branch: 3x3 conv (strided) - BN - ReLU - 3x3 conv - BN."""
    body = nn.HybridSequential(prefix=prefix)
    with body.name_scope():
        body.add(_conv(in_ch, out_ch, 3, stride), _bn(out_ch, epsilon=BN_EPSILON),
                 nn.Activation("relu"),
                 _conv(out_ch, out_ch, 3), _bn(out_ch, epsilon=BN_EPSILON))
    return body


def _projection(in_ch: int, out_ch: int, stride: int, prefix: str) -> nn.HybridSequential:
    """A stream's shortcut where the block changes shape: 1x1 conv (strided) - BN."""
    seq = nn.HybridSequential(prefix=prefix)
    with seq.name_scope():
        seq.add(_conv(in_ch, out_ch, 1, stride), _bn(out_ch, epsilon=BN_EPSILON))
    return seq


class MergeRunBlock(HybridBlock):
    """Two residual branches run in parallel on two streams, joined by the merge-and-run
    mapping (module docstring). Called with one input, both streams are that input (the net's
    first block). ``last`` makes it return the single ReLU(m + F1(x1) + F2(x2)) that feeds the
    classifier instead of the pair of streams."""

    def __init__(self, in_channels: int, channels: int, stride: int, *, last: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.last = last
        self.changes_shape = stride != 1 or in_channels != channels
        with self.name_scope():
            self.branch1 = _branch(in_channels, channels, stride, "branch1_")
            self.branch2 = _branch(in_channels, channels, stride, "branch2_")
            self.proj1 = self.proj2 = None
            if self.changes_shape:
                self.proj1 = _projection(in_channels, channels, stride, "proj1_")
                self.proj2 = _projection(in_channels, channels, stride, "proj2_")

    def merge(self, F, x1, x2):
        """The average of the two streams' inputs (each projected where the shape changes)."""
        if self.proj1 is not None:
            x1, x2 = self.proj1(x1), self.proj2(x2)
        return (x1 + x2) * 0.5

    def hybrid_forward(self, F, x1, x2=None):
        if x2 is None:
            x2 = x1
        merged = self.merge(F, x1, x2)
        deep1, deep2 = self.branch1(x1), self.branch2(x2)
        if self.last:
            return F.Activation(merged + deep1 + deep2, act_type="relu")
        return (F.Activation(merged + deep1, act_type="relu"),
                F.Activation(merged + deep2, act_type="relu"))


class _Streams(nn.HybridSequential):
    """A HybridSequential whose children may pass on two streams: a child's tuple output is
    its successor's arguments, a single output its one argument."""

    def hybrid_forward(self, F, x, *more):
        streams = (x, *more)
        for block in self._children.values():
            out = block(*streams)
            streams = tuple(out) if isinstance(out, (tuple, list)) else (out,)
        return streams if len(streams) > 1 else streams[0]


class MergeAndRun(HybridBlock):
    """A DFN-MR for CIFAR: stem, stages of :class:`MergeRunBlock` and a linear classifier.

    ``layers`` are the blocks per stage, ``stage_channels`` each stage's width before
    ``width_factor`` (the code's ``--widen-factor``); the stem has stage 1's width. Every stage
    after the first halves the resolution in its first block. ``features`` holds the stem, the
    stages (``stage1_``, ...; ``len()`` of one is its number of blocks) and the pooling.
    """

    def __init__(self, *, layers: Sequence[int], stage_channels: Sequence[int],
                 width_factor: int = 1, classes: int = 10, in_channels: int = 3, **kwargs):
        super().__init__(**kwargs)
        _validate(layers, stage_channels, width_factor, classes)
        channels = stage_channels[0] * width_factor
        with self.name_scope():
            self.features = _Streams(prefix="")
            with self.features.name_scope():
                self.features.add(_conv(in_channels, channels, 3),
                                  _bn(channels, epsilon=BN_EPSILON), nn.Activation("relu"))
                for stage, depth in enumerate(layers):
                    out = stage_channels[stage] * width_factor
                    stage_seq = _Streams(prefix=f"stage{stage + 1}_")
                    with stage_seq.name_scope():
                        for i in range(depth):
                            last = stage == len(layers) - 1 and i == depth - 1
                            stride = 2 if stage > 0 and i == 0 else 1
                            stage_seq.add(MergeRunBlock(channels, out, stride, last=last,
                                                        prefix=f"unit{i + 1}_"))
                            channels = out
                    self.features.add(stage_seq)
                self.features.add(nn.GlobalAvgPool2D(), nn.Flatten())
            self.output = nn.Dense(classes, in_units=channels)
        self.num_features = channels

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


def _validate(layers, stage_channels, width_factor, classes) -> None:
    checks = [
        (len(layers) == len(stage_channels) and len(layers) > 0,
         "layers and stage_channels must be non-empty and of equal length"),
        (all(int(n) > 0 for n in layers), "every stage needs at least one block"),
        (all(int(c) > 0 for c in stage_channels), "stage_channels must be positive"),
        (int(width_factor) == width_factor and width_factor > 0,
         f"width_factor must be a positive integer, not {width_factor!r}"),
        (int(classes) > 0, f"classes must be positive, not {classes!r}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)
