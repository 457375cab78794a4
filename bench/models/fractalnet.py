"""FractalNet (Larsson, Maire, Shakhnarovich 2016, arXiv:1605.07648, ICLR 2017 "FractalNet:
Ultra-Deep Neural Networks without Residuals") for CIFAR.

A fractal block with C columns is the truncated fractal of the expansion rule

    f_1(z) = conv(z),    f_{C+1}(z) = join(f_C(f_C(z)), conv(z))

where conv is a 3x3 convolution, BN and ReLU, and join is the elementwise mean of its inputs.
Column j (1 = shallowest, C = deepest) is a chain of 2^(j-1) convs, so a block has 2^C - 1
convs and 2^(C-1) along its deepest path. B blocks with a 2x2 max-pool after each, then a
linear classifier: B = 5, C = 3 is the paper's 20-layer CIFAR net (5 x 4 convs on the deepest
path), widths 64, 128, 256, 512, 512.

This module builds what the authors' released generator builds: gustavla/fractalnet@7d07da6
``generation/fractalnet.py`` (``COLUMNS = 3``, ``FILTERS``, ``DROPOUTS``) with the layer
definitions of ``generation/globals.crox`` and the join of ``caffe/src/caffe/layers/
fractal_join_layer.cpp``, "the code" below. Read off it:

* Joins. Nested joins of the expansion rule are merged into one: wherever several columns end
  a conv at the same depth they meet in one join over all of them (the paper's Figure 1), e.g.
  for C = 3 a 2-way join after depth 2 and a 3-way join at the end of the block. Every column
  taking part continues from the join's output. A join's mean is over its active inputs.
* conv = 3x3 conv (stride 1, pad 1, *with* bias), Dropout at the block's rate, BatchNorm, ReLU.
  The BatchNorm is Caffe's without a Scale layer: no learnable scale or shift (``scale=False,
  center=False``); the conv bias is the unit's only learnable shift.
* Pooling: the block's last join comes *after* the 2x2 max-pool, which is applied to each
  column's output separately (the paper's Figure 1 joins, then pools; snf/keras-fractalnet's
  README reports the paper calling the swap a convenience). Max-pool of a mean is not the
  mean of max-pools: we follow the code; ``pool_before_join=False`` gives the figure's order,
  which khanrc/pt.fractalnet@05eed3f fractal.py builds.
* Classifier: after five pools a 32x32 input is 1x1; the fc (with bias) reads the 512 values,
  no global pooling. The input side must be 2^B.
* Drop-path (``fractal_join_layer.cpp``): *local* drops each input of a join independently with
  probability 0.15 (``DROP_PATH_RATIO``), once per mini-batch; if all are dropped, one chosen
  uniformly is kept; the output is the mean of the kept inputs. The marginal drop rate of an
  input of a k-way join is therefore p - p^k / k.

Checked against khanrc/pt.fractalnet@05eed3f ``fractal.py`` (PyTorch; conv without bias, BN
with scale and shift, pools after the join) with our weights copied in (our conv bias folded
into its BN mean, its BN scale 1 and shift 0), eval mode, 10 classes: the deepest column agrees
to 5.5e-7 of the output's magnitude, and all columns with ``pool_before_join=False`` to 5.4e-7
(2e-1 in the code's pool order, the one structural difference). Its count is ours + 10 304 (a BN
shift and scale per channel where we have a conv bias).

What the paper and the code leave open, and what we chose:

* Parameter count. The paper's Table 1 names this net "FractalNet (20 layers, 38.6M params)";
  the code's net has 33 714 314 (10 classes), 12.7 % fewer, as khanrc/pt.fractalnet@05eed3f
  exp-note-kor.md also finds (33.7M against 38.6M). None of the readings of the paper's
  description we tried gives 38.6M (C = 4 at these widths is 76.1M); khanrc's ``--doubling`` (a 1x1 conv unit at the start of every block, so that
  every 3x3 conv maps the block's width to itself) gives 38 900 426, 0.8 % above. We build the
  code's net; ``transition="conv1x1"`` builds the doubling one.
* A 40-layer FractalNet (C = 4; the paper reports one on CIFAR at other widths) is
  not registered: its widths are not in the code and we could not read them in the paper.
* Global drop-path. The code leaves it unreleased ("we suggest implementing this through tying
  weights"). We follow the paper's text: one column j, drawn uniformly per mini-batch, is kept
  in every join of every block. A join the chosen column does not reach (for j = 1, the joins
  inside a block) only feeds discarded paths; it takes the mean of all its inputs, so the BN
  statistics downstream of it stay those of a live net rather than of zeros.
* Local versus global: "mix" (the paper's training) draws global with probability
  ``global_fraction`` = 0.5 for the whole mini-batch, else local, as the paper's alternation
  per mini-batch. Masks are per mini-batch, not per sample (the code's join; khanrc samples
  per sample).
* The drop-path masks are drawn inside the graph (``F.random.uniform``), so a hybridized or
  exported net keeps them; a training-mode indicator, |Dropout(1, p=0.5) - 1| (1 in training,
  0 at inference), switches them off at test time.
* Evaluation: all columns (every join is the mean of all its inputs) or ``eval_columns=
  "deepest"``: every join passes only its deepest input, which makes the net the plain chain
  of the deepest columns' 2^(C-1) x B convs (Table 1's "deepest column alone"). The other
  columns are still computed (the output does not depend on them).
* Dropout position: the code's conv - Dropout - BN - ReLU, elementwise (Caffe ``Dropout``).
* BN: Gluon's eps (1e-5, Caffe's default) and momentum 0.9 (Caffe's moving average differs in
  form; a training detail).
* The authors' tied-weights global drop-path (``GLOBAL_DROP_PATH``: every column as its own net
  with shared weights and a loss each, weighted 1/C) is a training scheme, not a layer: not here.
* Initialization (the code: Xavier for conv and fc, zero biases) and training belong to the
  recipe.

Gluon 1.x ``HybridBlock``s in the ``hybrid_forward(F, x)`` style; the per-mini-batch draws that
all blocks share (global column, global or local) travel as extra graph inputs to the blocks.
"""
from __future__ import annotations

from typing import Sequence

from bench._mxnet import require_mxnet
from bench.models.resnet import _conv

mx = require_mxnet()
from mxnet.gluon import HybridBlock, nn  # noqa: E402

DROP_PATH_MODES = (None, "local", "global", "mix")
EVAL_COLUMNS = ("all", "deepest")
TRANSITIONS = (None, "conv1x1")
PAPER_CHANNELS = (64, 128, 256, 512, 512)  # Sec. 4 / the code's FILTERS, per block
PAPER_DROPOUT = (0.0, 0.1, 0.2, 0.3, 0.4)  # Sec. 4 / the code's DROPOUTS, per block


def _conv_unit(in_ch: int, out_ch: int, dropout: float, kernel: int = 3,
               prefix: str = "") -> nn.HybridSequential:
    """The code's conv: conv (with bias) - Dropout - BN without scale or shift - ReLU."""
    unit = nn.HybridSequential(prefix=prefix)
    with unit.name_scope():
        unit.add(_conv(in_ch, out_ch, kernel, bias=True))
        if dropout > 0:
            unit.add(nn.Dropout(dropout))
        unit.add(nn.BatchNorm(in_channels=out_ch, scale=False, center=False),
                 nn.Activation("relu"))
    return unit


def active_columns(columns: int, row: int) -> list[int]:
    """The columns (1 = shallowest) that end a conv at depth ``row`` (0-based) of a block:
    column j convs every 2^(C-j) rows, so they are the deepest ones, a power of two apart."""
    return [j for j in range(1, columns + 1) if (row + 1) % 2 ** (columns - j) == 0]


def _constant(F, like, values: Sequence[float]):
    """A small constant vector on ``like``'s device (NDArray) or in the graph (Symbol)."""
    if F is mx.nd:
        return mx.nd.array(values, ctx=like.context, dtype=like.dtype)
    parts = [F.ones((1,)) * float(v) for v in values]
    return parts[0] if len(parts) == 1 else F.concat(*parts, dim=0)


def _pool(F, x):
    return F.Pooling(x, kernel=(2, 2), stride=(2, 2), pool_type="max")


def _uniform(F, like, shape):
    if F is mx.nd:
        return mx.nd.random.uniform(shape=shape, ctx=like.context, dtype=like.dtype)
    return F.random.uniform(shape=shape)


class FractalBlock(HybridBlock):
    """One fractal block of ``columns`` columns at width ``channels``, ending with the 2x2
    max-pool. ``len()`` is its number of convs, 2^C - 1 (plus one with the 1x1 transition).

    Called as ``block(x, state)``: ``state`` is the (4,)-vector the net draws once per
    mini-batch, [training?, global?, chosen column (1-based), unused]; see :class:`FractalNet`.
    """

    def __init__(self, in_channels: int, channels: int, columns: int, *, dropout: float = 0.0,
                 drop_path: str | None = None, local_drop_rate: float = 0.15,
                 eval_columns: str = "all", transition: str | None = None,
                 pool_before_join: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.columns = columns
        self.pool_before_join = pool_before_join
        self.drop_path = drop_path
        self.local_drop_rate = local_drop_rate
        self.eval_columns = eval_columns
        with self.name_scope():
            self.transition = None
            if transition == "conv1x1":
                self.transition = _conv_unit(in_channels, channels, dropout, kernel=1,
                                             prefix="transition_")
                in_channels = channels
            self.cols = []
            for j in range(1, columns + 1):
                col = nn.HybridSequential(prefix=f"col{j}_")
                with col.name_scope():
                    for i in range(2 ** (j - 1)):
                        col.add(_conv_unit(in_channels if i == 0 else channels, channels,
                                           dropout, prefix=f"conv{i + 1}_"))
                self.register_child(col, f"col{j}")
                self.cols.append(col)

    def __len__(self) -> int:
        return sum(len(c) for c in self.cols) + (self.transition is not None)

    def column_convs(self, j: int) -> list:
        """Column j's conv units, in order (j = C is the deepest column)."""
        return list(self.cols[j - 1]._children.values())

    def hybrid_forward(self, F, x, state):
        if self.transition is not None:
            x = self.transition(x)
        cur = {j: x for j in range(1, self.columns + 1)}
        done = {j: 0 for j in cur}
        rows = 2 ** (self.columns - 1)
        for row in range(rows):
            cols = active_columns(self.columns, row)
            outs = []
            for j in cols:
                outs.append(self.cols[j - 1][done[j]](cur[j]))
                done[j] += 1
            last = row == rows - 1
            if last and self.pool_before_join:
                outs = [_pool(F, o) for o in outs]
            joined = outs[0] if len(outs) == 1 else self.join(F, outs, cols, state)
            if last and not self.pool_before_join:
                joined = _pool(F, joined)
            for j in cols:
                cur[j] = joined
        return cur[self.columns]

    def join(self, F, inputs, cols, state):
        """The mean of the kept inputs; which are kept depends on the mode (module docstring).
        ``cols`` are the inputs' columns, shallowest first."""
        k = len(inputs)
        if self.drop_path is None and self.eval_columns == "all":
            return F.add_n(*inputs) / k
        keep = self.keep_mask(F, inputs[0], cols, state)  # (k,)
        total = F.sum(keep)
        weights = F.split(F.broadcast_div(keep, total), num_outputs=k, axis=0, squeeze_axis=False)
        terms = [F.broadcast_mul(x, F.reshape(w, (1, 1, 1, 1))) for x, w in zip(inputs, weights)]
        return F.add_n(*terms)

    def keep_mask(self, F, like, cols, state):
        """A (k,) vector of 0/1: which of a join's k inputs count in its mean."""
        k = len(cols)
        training = F.slice_axis(state, axis=0, begin=0, end=1)
        if self.eval_columns == "deepest":
            at_test = _constant(F, like, [0.0] * (k - 1) + [1.0])
        else:
            at_test = _constant(F, like, [1.0] * k)
        if self.drop_path is None:
            train_keep = _constant(F, like, [1.0] * k)
        else:
            train_keep = self._train_keep(F, like, cols, state)
        return (F.broadcast_mul(train_keep, training)
                + F.broadcast_mul(at_test, 1 - training))

    def _train_keep(self, F, like, cols, state):
        k = len(cols)
        local = _uniform(F, like, (k,)) >= self.local_drop_rate
        all_dropped = F.sum(local) == 0
        revived = F.one_hot(F.floor(_uniform(F, like, (1,)) * k), depth=k).reshape((k,))
        local = local + F.broadcast_mul(revived, all_dropped)
        if self.drop_path == "local":
            return local
        chosen = F.slice_axis(state, axis=0, begin=2, end=3)
        glob = F.broadcast_equal(_constant(F, like, [float(j) for j in cols]), chosen)
        absent = F.sum(glob) == 0
        glob = F.broadcast_add(glob, absent)  # the chosen column does not reach this join
        if self.drop_path == "global":
            return glob
        use_global = F.slice_axis(state, axis=0, begin=1, end=2)
        return F.broadcast_mul(glob, use_global) + F.broadcast_mul(local, 1 - use_global)


class FractalNet(HybridBlock):
    """A FractalNet for CIFAR: ``len(block_channels)`` fractal blocks (2x2 max-pool after
    each) and a linear classifier on the final 1x1 map.

    ``columns`` is C; ``block_channels`` the blocks' widths (default ``PAPER_CHANNELS``);
    ``dropout`` one rate per block (``PAPER_DROPOUT`` for the paper's
    "+ dropout" rows; default none); ``drop_path`` None (off), "local", "global" or "mix"
    (the paper's 50/50 per mini-batch, ``global_fraction``); ``eval_columns`` "all" (mean
    joins) or "deepest" (the deepest column alone), also settable with
    :meth:`set_eval_columns`. ``transition="conv1x1"`` puts a 1x1 conv unit before every block
    (khanrc's ``--doubling``; module docstring). ``pool_before_join=False`` joins, then pools
    (Figure 1's order, khanrc's). ``features`` holds the blocks (``stage1_``,
    ...; ``len()`` of one is its number of convs).
    """

    def __init__(self, *, columns: int = 3,
                 block_channels: Sequence[int] | None = None,
                 dropout: Sequence[float] | None = None, drop_path: str | None = None,
                 local_drop_rate: float = 0.15, global_fraction: float = 0.5,
                 eval_columns: str = "all", transition: str | None = None,
                 pool_before_join: bool = True, classes: int = 10, in_channels: int = 3,
                 **kwargs):
        super().__init__(**kwargs)
        block_channels = tuple(block_channels or PAPER_CHANNELS)
        dropout = tuple(dropout) if dropout is not None else (0.0,) * len(block_channels)
        _validate(columns, block_channels, dropout, drop_path, local_drop_rate,
                  global_fraction, eval_columns, transition, classes)
        self.columns = columns
        self.drop_path = drop_path
        self.global_fraction = global_fraction
        channels = in_channels
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            with self.features.name_scope():
                for b, width in enumerate(block_channels):
                    self.features.add(FractalBlock(
                        channels, width, columns, dropout=dropout[b], drop_path=drop_path,
                        local_drop_rate=local_drop_rate, eval_columns=eval_columns,
                        transition=transition, pool_before_join=pool_before_join,
                        prefix=f"stage{b + 1}_"))
                    channels = width
            self.output = nn.Dense(classes, in_units=channels)
        self.num_features = channels

    @property
    def blocks(self) -> list[FractalBlock]:
        return list(self.features._children.values())

    def set_eval_columns(self, mode: str) -> None:
        """Evaluate with all columns ("all") or the deepest column alone ("deepest"); drops a
        hybridized net's cached graph so the next call traces the new one."""
        if mode not in EVAL_COLUMNS:
            raise ValueError(f"eval_columns must be one of {EVAL_COLUMNS}, not {mode!r}")
        for block in self.blocks:
            block.eval_columns = mode
        self._clear_cached_op()
        for block in self.blocks:
            block._clear_cached_op()

    def _state(self, F, x):
        """The per-mini-batch draws every block shares: [training?, global?, chosen column
        (1..C), 0]. "training?" is |Dropout(1, p=0.5) - 1|: 1 when the graph runs in
        training, 0 at inference (MXNet's Dropout is the identity there)."""
        if F is mx.nd:
            one = mx.nd.ones((1,), ctx=x.context, dtype=x.dtype)
        else:
            one = F.ones((1,))
        training = F.abs(F.Dropout(one, p=0.5) - 1)
        use_global = _uniform(F, x, (1,)) < self.global_fraction
        chosen = F.floor(_uniform(F, x, (1,)) * self.columns) + 1
        chosen = F.minimum(chosen, one * self.columns)
        return F.concat(training, use_global, chosen, one * 0, dim=0)

    def hybrid_forward(self, F, x):
        state = self._state(F, x)
        for block in self.blocks:
            x = block(x, state)
        return self.output(F.flatten(x))


def _validate(columns, block_channels, dropout, drop_path, local_drop_rate, global_fraction,
              eval_columns, transition, classes) -> None:
    checks = [
        (int(columns) == columns and columns >= 1, f"columns must be >= 1, not {columns!r}"),
        (len(block_channels) > 0 and all(int(c) > 0 for c in block_channels),
         "block_channels must be non-empty and positive"),
        (len(dropout) == len(block_channels), "dropout needs one rate per block"),
        (all(0 <= d < 1 for d in dropout), "dropout rates must be in [0, 1)"),
        (drop_path in DROP_PATH_MODES, f"drop_path must be one of {DROP_PATH_MODES}, "
                                       f"not {drop_path!r}"),
        (0 <= local_drop_rate < 1, "local_drop_rate must be in [0, 1)"),
        (0 <= global_fraction <= 1, "global_fraction must be in [0, 1]"),
        (eval_columns in EVAL_COLUMNS, f"eval_columns must be one of {EVAL_COLUMNS}, "
                                       f"not {eval_columns!r}"),
        (transition in TRANSITIONS, f"transition must be one of {TRANSITIONS}, "
                                    f"not {transition!r}"),
        (int(classes) > 0, f"classes must be positive, not {classes!r}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)
