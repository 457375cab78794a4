"""One ResNet family: every variant the suite knows is this class with different flags.

The papers and the peers name the same architectural choices differently. This table maps
them onto the constructor arguments of :class:`ResNet` (``-`` = default):

======================================  =====================================================
Paper / peer name                        Flags
======================================  =====================================================
He 2015 ResNet (GluonCV ``*_v1``)        ``stride_on="1x1"``, ``shortcut="B"``
  GluonCV's v1 bottleneck 1x1 biases     ``bottleneck_bias=True`` (the only param difference
                                          between GluonCV ``resnet50_v1`` and ``_v1b``)
He 2015 shortcut option A / B / C        ``shortcut="A"`` (subsample + zero-pad, no params),
                                          ``"B"`` (projection where the shape changes),
                                          ``"C"`` (projection in every unit)
He 2015 plain-18/34                      ``shortcut="none"``
He 2015 CIFAR net (6n+2)                 ``stem="cifar"``, ``stem_width=16``, 3 stages
  GluonCV ``cifar_resnet*_v1``           the same with ``shortcut="B"``, ``stem_post="bn"``
                                          (GluonCV's CIFAR v1 stem has no ReLU)
ResNet-B, ``v1b``, torchvision,          ``stride_on="3x3"``
  NVIDIA "v1.5", timm ``resnet50``
ResNet-C, ``v1c`` / ``v1s``              ``stem="deep"``, ``stem_width=32`` / ``64``
ResNet-D, ``v1d`` / ``v1e``              ``stem="deep"``, ``shortcut="D"``, stem width 32 / 64
Bag of Tricks zero gamma                 ``zero_init_last_bn=True``
He 2016 pre-activation (GluonCV ``v2``)  ``preact=True`` (+ ``input_bn=True`` in GluonCV's
                                          layout: a BN without scale/shift on the input)
  GluonCV ``cifar_resnet*_v2``           ``preact_shortcut=False``: projection reads the raw
                                          input, not the pre-activated one
ResNeXt (Xie 2017)                       ``cardinality``, ``base_width`` (32x4d = 32, 4)
Wide ResNet (Zagoruyko 2016)             ``width_factor``, ``block_dropout`` (between convs)
  GluonCV ``cifar_wideresnet*``          + ``input_bn=True``, ``stem_post="bn"``
Stochastic depth (Huang 2016)            ``survival_prob_last`` (p_L; 1.0 = off)
======================================  =====================================================

Everything is a Gluon 1.x ``HybridBlock`` written in the ``hybrid_forward(F, x)`` style, so
``hybridize()`` and ``export()`` work. Units execute their layers in the same order as
GluonCV's, which is what lets :mod:`bench.models.gluoncv_import` copy weights by structure.
"""
from __future__ import annotations

from typing import Literal, Sequence

from bench._mxnet import require_mxnet

mx = require_mxnet()
from mxnet import autograd  # noqa: E402
from mxnet.gluon import HybridBlock, nn  # noqa: E402

BlockKind = Literal["basic", "bottleneck"]
Shortcut = Literal["A", "B", "C", "D", "none"]
Stem = Literal["conv7", "deep", "cifar"]
StemPost = Literal["bn_relu", "bn", "none"]


def _bn(channels: int, zero_gamma: bool = False, **kwargs) -> nn.BatchNorm:
    if zero_gamma:
        kwargs["gamma_initializer"] = "zeros"
    return nn.BatchNorm(in_channels=channels, **kwargs)


def _conv(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1,
          bias: bool = False) -> nn.Conv2D:
    return nn.Conv2D(out_ch, kernel_size=kernel, strides=stride, padding=kernel // 2,
                     groups=groups, use_bias=bias, in_channels=in_ch)


class ZeroPadShortcut(HybridBlock):
    """He 2015 option A: subsample by the stride and append zero channels; no parameters."""

    def __init__(self, in_channels: int, channels: int, stride: int, **kwargs):
        super().__init__(**kwargs)
        if channels < in_channels:
            raise ValueError(f"option A cannot shrink channels ({in_channels} -> {channels})")
        self._stride = stride
        self._extra = channels - in_channels
        self._in = in_channels

    def hybrid_forward(self, F, x):
        if self._stride > 1:
            # A 1x1 max-pool with stride s is x[:, :, ::s, ::s] and sizes odd maps like a conv.
            x = F.Pooling(x, kernel=(1, 1), stride=(self._stride,) * 2, pool_type="max")
        if not self._extra:
            return x
        zeros = F.zeros_like(x)
        pads = [zeros] * (self._extra // self._in)
        if self._extra % self._in:
            pads.append(F.slice_axis(zeros, axis=1, begin=0, end=self._extra % self._in))
        return F.concat(x, *pads, dim=1)


class ResidualUnit(HybridBlock):
    """One residual unit (basic or bottleneck, post- or pre-activation) with its shortcut.

    ``survival`` < 1 enables stochastic depth: in training the whole branch is dropped for the
    mini-batch with probability ``1 - survival`` (the unit is then the identity map of its
    shortcut); at test time the branch is scaled by ``survival`` (Huang et al. 2016, eq. 5).

    Run on NDArrays (also hybridized: :meth:`ResNet.hybridize` keeps the units' ancestors
    imperative), a dropped branch is not computed at all, which is where the paper's
    training-time saving comes from, and a kept one is not multiplied by anything (a broadcast
    multiply in the graph cost 25 % of a step on CPU). Traced into a Symbol (export, analysis)
    the branch is multiplied by a Dropout gate: 1 or 0 per mini-batch when the graph runs in
    training, ``survival`` at test time.

    ``bypassed = True`` removes the branch for lesion studies (Veit et al. 2016): the unit
    then outputs its shortcut (ReLU'd for post-activation units), and a plain unit that keeps
    the shape outputs its input. A hybridized net caches its graph, so after flipping it call
    :func:`bench.analysis.rebuild_graph` (or use :func:`bench.analysis.bypass`).
    """

    def __init__(self, in_channels: int, channels: int, stride: int, *, kind: BlockKind,
                 preact: bool, stride_on: str, shortcut: Shortcut, mid_channels: int,
                 groups: int = 1, bottleneck_bias: bool = False, zero_init_last_bn: bool = False,
                 block_dropout: float = 0.0, survival: float = 1.0, preact_shortcut: bool = True,
                 **kwargs):
        super().__init__(**kwargs)
        self._preact_flag = preact
        self._preact_shortcut = preact_shortcut
        self._survival = survival
        self._ungated = False  # a kept unit in training: the branch as it is (see forward)
        self._dtype = "float32"
        self._residual = shortcut != "none"
        self._changes_shape = stride != 1 or in_channels != channels
        self._bypassed = False
        with self.name_scope():
            self.preact = None
            if preact:
                self.preact = nn.HybridSequential(prefix="preact_")
                with self.preact.name_scope():
                    self.preact.add(_bn(in_channels), nn.Activation("relu"))
            self.body = self._make_body(in_channels, channels, stride, kind, stride_on,
                                        mid_channels, groups, bottleneck_bias,
                                        zero_init_last_bn, block_dropout)
            self.shortcut = self._make_shortcut(in_channels, channels, stride, shortcut)

    def _make_body(self, in_ch, out_ch, stride, kind, stride_on, mid, groups, bias, zero_gamma,
                   dropout):
        post = not self._preact_flag
        body = nn.HybridSequential(prefix="body_")
        if kind == "basic":
            plan = [(in_ch, mid, 3, stride, 1, False), (mid, out_ch, 3, 1, 1, False)]
        else:
            s1, s3 = (stride, 1) if stride_on == "1x1" else (1, stride)
            plan = [(in_ch, mid, 1, s1, 1, bias), (mid, mid, 3, s3, groups, False),
                    (mid, out_ch, 1, 1, 1, bias)]
        with body.name_scope():
            for i, (cin, cout, k, s, g, b) in enumerate(plan):
                last = i == len(plan) - 1
                if last and dropout > 0:
                    body.add(nn.Dropout(dropout))  # WRN: dropout between the convolutions
                body.add(_conv(cin, cout, k, s, g, b))
                if post:  # v1: conv-BN-ReLU, the last ReLU comes after the addition
                    body.add(_bn(cout, zero_gamma and last))
                    if not last:
                        body.add(nn.Activation("relu"))
                elif not last:  # v2: BN-ReLU before the next conv; zero gamma on the last BN
                    body.add(_bn(cout, zero_gamma and i == len(plan) - 2))
                    body.add(nn.Activation("relu"))
        return body

    def _make_shortcut(self, in_ch, out_ch, stride, shortcut):
        changes_shape = stride != 1 or in_ch != out_ch
        if shortcut == "none" or (shortcut in "ABD" and not changes_shape):
            return None
        if shortcut == "A":
            return ZeroPadShortcut(in_ch, out_ch, stride, prefix="shortcut_")
        seq = nn.HybridSequential(prefix="shortcut_")
        with seq.name_scope():
            if shortcut == "D" and stride > 1:
                seq.add(nn.AvgPool2D(pool_size=stride, strides=stride, ceil_mode=True,
                                     count_include_pad=False))
                seq.add(_conv(in_ch, out_ch, 1))
            else:
                seq.add(_conv(in_ch, out_ch, 1, stride))
            if not self._preact_flag:  # pre-activation projections carry no BN (He 2016)
                seq.add(_bn(out_ch))
        return seq

    @property
    def changes_shape(self) -> bool:
        """Whether the unit's output differs from its input in channels or resolution."""
        return self._changes_shape

    @property
    def removable(self) -> bool:
        """A residual unit always keeps its shortcut; a plain one only without its layers
        when its input already has the output's shape."""
        return self._residual or not self._changes_shape

    @property
    def bypassed(self) -> bool:
        return self._bypassed

    @bypassed.setter
    def bypassed(self, value: bool) -> None:
        if value and not self.removable:
            raise ValueError(f"unit {self.name} is plain and changes the shape of its input, so "
                             "it has no path without its layers: it cannot be bypassed")
        self._bypassed = bool(value)

    def _bypass_forward(self, F, x):
        """What the unit computes without its residual branch: its shortcut path, or for a
        plain unit (which has none) its input."""
        return self._shortcut_path(F, x) if self._residual else x

    def forward(self, x, *args):
        """Stochastic depth on NDArrays: in training a dropped unit runs only its shortcut path
        and a kept one its full graph (cached if hybridized) without any gate; at test time the
        sub-blocks run with the branch scaled by ``survival``."""
        if self._survival == 1.0 or not isinstance(x, mx.nd.NDArray):
            return super().forward(x, *args)
        if not autograd.is_training():
            return self.hybrid_forward(mx.nd, x)
        if self._drops(x):
            return self._dropped(x)
        self._ungated = True  # also while the cached graph is traced, on the first call
        try:
            return super().forward(x)
        finally:
            self._ungated = False

    def hybrid_forward(self, F, x):
        if self._bypassed:
            return self._bypass_forward(F, x)
        if self.preact is None:
            branch = self.body(x)
            identity = x if self.shortcut is None else self.shortcut(x)
        else:
            pre = self.preact(x)
            source = pre if self._preact_shortcut else x
            # Order of evaluation follows GluonCV's v2 units (matters for weight import only).
            identity = None
            if self.shortcut is not None and self._preact_shortcut:
                identity = self.shortcut(source)
            branch = self.body(pre)
            if identity is None:
                identity = x if self.shortcut is None else self.shortcut(source)
        if self._survival < 1.0 and not self._ungated:
            branch = (branch * self._survival if F is mx.nd
                      else F.broadcast_mul(branch, self._gate(F)))
        out = branch + identity if self._residual else branch
        return out if self._preact_flag else F.Activation(out, act_type="relu")

    def _shortcut_path(self, F, x):
        """The unit's output without its residual branch: the shortcut (identity, option-A
        pad or projection; pre-activated if the projection reads the pre-activation), then
        the post-addition ReLU of a v1 unit. Only the shortcut's layers run."""
        source = x
        if self.shortcut is not None and self.preact is not None and self._preact_shortcut:
            source = self.preact(x)
        identity = x if self.shortcut is None else self.shortcut(source)
        return identity if self._preact_flag else F.Activation(identity, act_type="relu")

    def _skipped_blocks(self) -> list:
        """The sub-blocks :meth:`_shortcut_path` does not run."""
        reads_preact = self.shortcut is not None and self._preact_shortcut
        return [self.body] + ([self.preact] if self.preact is not None and not reads_preact
                              else [])

    def _drops(self, x) -> bool:
        """One keep/drop draw for the mini-batch from MXNet's generator (``mx.random.seed``
        replays it); the only host sync it costs is this scalar."""
        draw = mx.nd.random.uniform(ctx=x.context).asscalar()
        return bool(draw >= self._survival)

    def _dropped(self, x):
        """A dropped unit in training: its shortcut path, the branch not run. The skipped
        parameters get an exactly zero, fresh gradient, as in Huang et al.'s Torch code
        (momentum and weight decay still act on them, and ``Trainer.step`` sees no stale
        gradient)."""
        if autograd.is_recording():
            self._zero_skipped_grads(x.context)
        return self._shortcut_path(mx.nd, x)

    def _zero_skipped_grads(self, ctx) -> None:
        """Written directly, not by autograd: tying a zero to the unit's output costs a
        broadcast reduction in backward, about half of a kept unit's time on CPU. Backward
        leaves these gradients alone, as the parameters are not in its graph."""
        with autograd.pause():
            for block in self._skipped_blocks():
                for param in block.collect_params().values():
                    if param.grad_req == "null":
                        continue
                    if param.grad_req == "write":  # "add" accumulates: adding 0 is a no-op
                        param.grad(ctx)[:] = 0
                    param.data(ctx)._fresh_grad = True  # what autograd sets for Trainer.step

    def cast(self, dtype):
        self._dtype = dtype  # the symbolic gate is built from scratch, so it needs the dtype
        super().cast(dtype)

    def _gate(self, F):
        """A symbolic graph's branch scale: Dropout is 1 or 0 per mini-batch when the graph
        runs in training and ``survival`` at test time (the graph :meth:`ResNet.export`
        writes)."""
        # Not sliced out of `branch`: slicing a oneDNN-layout tensor crashed MXNet 1.9.1 (SIGFPE).
        one = F.ones((1, 1, 1, 1), dtype=self._dtype)
        return F.Dropout(one, p=1.0 - self._survival) * self._survival


class ResNet(HybridBlock):
    """The ResNet family. See the module docstring for how papers' names map to the flags.

    ``stage_channels`` are the output channels of each stage before ``width_factor``;
    ``stem_width`` is the stem's width (its output for ``conv7``/``cifar``, half of it for
    the deep stem, whose last conv doubles it as in Bag of Tricks).

    With stochastic depth (``survival_prob_last`` < 1) :meth:`hybridize` leaves the path down
    to the units imperative, so that dropped branches are skipped, and :meth:`export` writes
    the test-time graph.
    """

    def __init__(self, *, block: BlockKind, layers: Sequence[int], stage_channels: Sequence[int],
                 classes: int = 1000, in_channels: int = 3, stem: Stem = "conv7",
                 stem_width: int = 64, stem_post: StemPost | None = None, preact: bool = False,
                 input_bn: bool = False, stride_on: Literal["1x1", "3x3"] = "1x1",
                 shortcut: Shortcut = "B", cardinality: int = 1, base_width: int = 64,
                 width_factor: int = 1, bottleneck_bias: bool = False,
                 zero_init_last_bn: bool = False, dropout: float = 0.0,
                 block_dropout: float = 0.0, survival_prob_last: float = 1.0,
                 preact_shortcut: bool = True, **kwargs):
        super().__init__(**kwargs)
        _validate(block, layers, stage_channels, stem, shortcut, stride_on, survival_prob_last,
                  dropout, block_dropout)
        if stem_post is None:
            stem_post = "none" if preact and stem == "cifar" else "bn_relu"
        total_units = sum(layers)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            with self.features.name_scope():
                if input_bn:
                    self.features.add(nn.BatchNorm(scale=False, center=False,
                                                   in_channels=in_channels))
                channels = self._add_stem(in_channels, stem, stem_width, stem_post)
                unit_index = 0
                for stage, depth in enumerate(layers):
                    out = stage_channels[stage] * width_factor
                    stage_seq = nn.HybridSequential(prefix=f"stage{stage + 1}_")
                    with stage_seq.name_scope():
                        for i in range(depth):
                            unit_index += 1
                            # Huang 2016: p_l = 1 - l / L * (1 - p_L), linear in the unit index.
                            survival = 1.0 - unit_index / total_units * (1.0 - survival_prob_last)
                            stride = 2 if stage > 0 and i == 0 else 1
                            mid = (cardinality * int(out // 4 * base_width / 64)
                                   if block == "bottleneck" else out)
                            stage_seq.add(self._make_unit(
                                channels, out, stride, kind=block, preact=preact,
                                stride_on=stride_on, shortcut=shortcut, mid_channels=mid,
                                groups=cardinality, bottleneck_bias=bottleneck_bias,
                                zero_init_last_bn=zero_init_last_bn, block_dropout=block_dropout,
                                survival=survival, preact_shortcut=preact_shortcut,
                                prefix=f"unit{i + 1}_"))
                            channels = out
                    self.features.add(stage_seq)
                if preact:
                    self.features.add(_bn(channels), nn.Activation("relu"))
                self.features.add(nn.GlobalAvgPool2D(), nn.Flatten())
                if dropout > 0:
                    self.features.add(nn.Dropout(dropout))
            self.output = nn.Dense(classes, in_units=channels)
        self.num_features = channels

    def _make_unit(self, in_channels: int, channels: int, stride: int,
                   **kwargs) -> ResidualUnit:
        """One unit of a stage; a family built on these stages (Res2Net) returns its own
        :class:`ResidualUnit` subclass here."""
        return ResidualUnit(in_channels, channels, stride, **kwargs)

    def _add_stem(self, in_channels: int, stem: Stem, width: int, post: StemPost) -> int:
        f = self.features
        if stem == "deep":
            f.add(_conv(in_channels, width, 3, 2), _bn(width), nn.Activation("relu"),
                  _conv(width, width, 3), _bn(width), nn.Activation("relu"),
                  _conv(width, 2 * width, 3))
            out = 2 * width
        elif stem == "conv7":
            f.add(_conv(in_channels, width, 7, 2))
            out = width
        else:
            f.add(_conv(in_channels, width, 3))
            out = width
        if post != "none":
            f.add(_bn(out))
        if post == "bn_relu":
            f.add(nn.Activation("relu"))
        if stem != "cifar":
            f.add(nn.MaxPool2D(pool_size=3, strides=2, padding=1))
        return out

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))

    def hybridize(self, active: bool = True, **kwargs) -> None:
        """Hybridize as Gluon does; with stochastic depth, the ancestors of the units that can
        be dropped (this net, ``features``, the stages) stay imperative, so that each unit
        decides per mini-batch whether to run its branch (a static graph of the whole net would
        compute every branch). Everything below them (stem layers, each unit, the classifier)
        is hybridized with ``kwargs``."""
        super().hybridize(active, **kwargs)
        if active:
            for block in _stochastic_depth_path(self):
                if not isinstance(block, ResidualUnit):
                    block._active = False
                    block._clear_cached_op()

    def export(self, path: str, epoch: int = 0, remove_amp_cast: bool = True) -> None:
        """Gluon's export. A stochastic-depth net writes its test-time graph (Huang eq. 5:
        each branch scaled by its survival probability, through a Dropout gate that would drop
        whole branches only if the graph were run in training mode) and needs no forward pass
        first, since it is never hybridized as a whole."""
        if not _stochastic_depth_path(self):
            return super().export(path, epoch, remove_amp_cast)
        sym = self(mx.sym.var("data"))
        sym.save(f"{path}-symbol.json", remove_amp_cast=remove_amp_cast)
        args, aux = set(sym.list_arguments()), set(sym.list_auxiliary_states())
        saved = {f"{'arg' if p.name in args else 'aux'}:{p.name}":
                 p.data(p.list_ctx()[0]).as_in_context(mx.cpu())
                 for p in self.collect_params().values() if p.name in args | aux}
        mx.nd.save(f"{path}-{epoch:04d}.params", saved)


def _stochastic_depth_path(block) -> list:
    """``block`` and its descendants that are, or contain, a unit with survival < 1."""
    below = [b for child in block._children.values() for b in _stochastic_depth_path(child)]
    own = isinstance(block, ResidualUnit) and block._survival < 1.0
    return [block] + below if own or below else []


def _validate(block, layers, stage_channels, stem, shortcut, stride_on, survival_last, dropout,
              block_dropout) -> None:
    checks = [
        (block in ("basic", "bottleneck"), f"block must be 'basic' or 'bottleneck', not {block!r}"),
        (len(layers) == len(stage_channels) and len(layers) > 0,
         "layers and stage_channels must be non-empty and of equal length"),
        (all(int(n) > 0 for n in layers), "every stage needs at least one unit"),
        (stem in ("conv7", "deep", "cifar"), f"stem must be conv7, deep or cifar, not {stem!r}"),
        (shortcut in ("A", "B", "C", "D", "none"), f"shortcut must be A, B, C, D or none, "
                                                   f"not {shortcut!r}"),
        (stride_on in ("1x1", "3x3"), f"stride_on must be '1x1' or '3x3', not {stride_on!r}"),
        (0.0 < survival_last <= 1.0, f"survival_prob_last must be in (0, 1], not {survival_last}"),
        (survival_last == 1.0 or shortcut != "none",
         "stochastic depth drops residual branches: survival_prob_last < 1 needs shortcuts"),
        (0.0 <= dropout < 1.0 and 0.0 <= block_dropout < 1.0, "dropout rates must be in [0, 1)"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)
