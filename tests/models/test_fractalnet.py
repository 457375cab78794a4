"""FractalNet (Larsson et al. 2016): the fractal expansion's conv counts, the join as a mean,
local drop-path's rate and its at-least-one rule, global drop-path's single column, the
deepest-column evaluation, hybridize/export, and the parameter counts against the authors'
generator and the paper."""
from __future__ import annotations

import numpy as np
import pytest

from bench.errors import BenchError
from bench.models import get_model, get_spec
from tests.models.conftest import reloaded_output
from tests.models.source_layouts import fractalnet_code_params

EPS = 1e-5  # Gluon's BatchNorm eps (Caffe's default too)


def _net(mx, **overrides):
    from bench.models.fractalnet import FractalNet
    flags = {"columns": 3, "block_channels": (2, 3), "classes": 4, **overrides}
    net = FractalNet(**flags)
    net.initialize(mx.init.Xavier())
    return net


def _state(mx, training, use_global=0, chosen=1):
    return mx.nd.array([training, use_global, chosen, 0])


@pytest.mark.parametrize("columns", [1, 2, 3, 4])
def test_fractal_expansion_conv_counts(mx, columns):
    """Larsson et al. Sec. 2: column j has 2^(j-1) convs, a block 2^C - 1, the deepest path
    2^(C-1); every column's first conv reads the block's input."""
    from bench.models.fractalnet import active_columns
    block = _net(mx, columns=columns).blocks[0]
    per_column = [len(block.column_convs(j)) for j in range(1, columns + 1)]
    assert per_column == [2 ** (j - 1) for j in range(1, columns + 1)]
    assert len(block) == sum(per_column) == 2 ** columns - 1
    assert max(per_column) == 2 ** (columns - 1)
    # Each row of the block ends one conv in every column active there, and the last row
    # ends all of them (the block's final join takes all C columns).
    rows = [active_columns(columns, r) for r in range(2 ** (columns - 1))]
    assert [sum(j in r for r in rows) for j in range(1, columns + 1)] == per_column
    assert rows[-1] == list(range(1, columns + 1))
    firsts = [block.column_convs(j)[0][0].weight.shape[1] for j in range(1, columns + 1)]
    assert firsts == [3] * columns


def test_join_is_the_mean_of_its_inputs(mx):
    block = _net(mx).blocks[0]
    rng = np.random.RandomState(0)
    xs = [rng.normal(size=(2, 2, 3, 3)).astype("float32") for _ in range(3)]
    out = block.join(mx.nd, [mx.nd.array(x) for x in xs], [1, 2, 3], _state(mx, 0))
    np.testing.assert_allclose(out.asnumpy(), sum(xs) / 3, rtol=1e-6, atol=1e-6)


def _set_center_kernel(mx, unit, weight, bias):
    """A 1-channel conv whose 3x3 kernel is ``weight`` at the centre: the map weight*x + bias."""
    conv = unit[0]
    kernel = np.zeros((1, 1, 3, 3), dtype="float32")
    kernel[0, 0, 1, 1] = weight
    conv.weight.set_data(mx.nd.array(kernel))
    conv.bias.set_data(mx.nd.array([bias]))


def _pool(a):
    n, c, h, w = a.shape
    return a.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


@pytest.mark.parametrize("pool_before_join", [True, False])
def test_a_two_column_block_by_hand(mx, pool_before_join):
    """C = 2 with 1-channel centre-only convs and BN at its initial statistics (mean 0,
    variance 1): out = mean(pool(u_a(x)), pool(u_d(u_c(x)))), u_w(z) = ReLU((w z + b) / s);
    pool(mean(...)) in Figure 1's order."""
    block = _net(mx, columns=2, block_channels=(1,), in_channels=1,
                 pool_before_join=pool_before_join).blocks[0]
    (a,), (c, d) = block.column_convs(1), block.column_convs(2)
    params = {a: (0.7, 0.1), c: (-1.3, 0.2), d: (2.1, -0.3)}
    for unit, (w, b) in params.items():
        _set_center_kernel(mx, unit, w, b)
    s = np.sqrt(1 + EPS)
    u = lambda unit, z: np.maximum((params[unit][0] * z + params[unit][1]) / s, 0)
    x = np.random.RandomState(1).normal(size=(2, 1, 4, 4)).astype("float32")
    if pool_before_join:
        expected = (_pool(u(a, x)) + _pool(u(d, u(c, x)))) / 2
    else:
        expected = _pool((u(a, x) + u(d, u(c, x))) / 2)
        assert not np.allclose(expected, (_pool(u(a, x)) + _pool(u(d, u(c, x)))) / 2)
    out = block(mx.nd.array(x), _state(mx, 0)).asnumpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("k, rate", [(3, 0.15), (2, 0.5), (3, 0.5)])
def test_local_drop_path_keeps_one_and_drops_at_its_rate(mx, k, rate):
    """fractal_join_layer.cpp: each input dropped with probability p per mini-batch, one
    chosen uniformly revived if all were: every draw keeps >= 1, and an input's drop rate is
    p - p^k / k (the revival is visible at p = 0.5: 0.375 for k = 2, not 0.5)."""
    block = _net(mx, drop_path="local", local_drop_rate=rate).blocks[0]
    mx.random.seed(7)
    like = mx.nd.zeros((1,))
    draws = np.stack([block.keep_mask(mx.nd, like, list(range(1, k + 1)),
                                      _state(mx, 1)).asnumpy() for _ in range(1000)])
    assert set(np.unique(draws)) <= {0.0, 1.0}
    assert draws.sum(axis=1).min() >= 1
    expected = rate - rate ** k / k
    np.testing.assert_allclose(1 - draws.mean(axis=0), expected, atol=0.04)  # ~3.5 sd
    # Inference: everything is kept, whatever the mode.
    at_test = block.keep_mask(mx.nd, like, list(range(1, k + 1)), _state(mx, 0)).asnumpy()
    assert at_test.tolist() == [1.0] * k


def _deepest_chain(mx, net, x, j=None):
    """The net as a plain chain: in every block column j's convs (default the deepest), then
    the 2x2 max-pool, then the fc."""
    for block in net.blocks:
        for unit in block.column_convs(j or block.columns):
            x = unit(x)
        x = mx.nd.Pooling(x, kernel=(2, 2), stride=(2, 2), pool_type="max")
    return net.output(mx.nd.flatten(x))


def _through_blocks(mx, net, x, state):
    for block in net.blocks:
        x = block(x, state)
    return net.output(mx.nd.flatten(x))


@pytest.mark.parametrize("column", [1, 2, 3])
def test_global_drop_path_runs_exactly_one_column(mx, column):
    """With the column drawn, every join of every block passes only that column, so in
    training the net is column j's plain chain (BN on batch statistics in both)."""
    net = _net(mx, drop_path="global")
    x = mx.nd.random.normal(shape=(4, 3, 4, 4))
    with mx.autograd.train_mode():
        ours = _through_blocks(mx, net, x, _state(mx, 1, use_global=1, chosen=column))
        chain = _deepest_chain(mx, net, x, column)
    np.testing.assert_allclose(ours.asnumpy(), chain.asnumpy(), rtol=1e-4, atol=1e-5)


def test_the_net_draws_one_column_per_mini_batch_uniformly(mx):
    net = _net(mx, drop_path="mix")
    x = mx.nd.zeros((1, 3, 4, 4))
    mx.random.seed(3)
    with mx.autograd.train_mode():
        states = np.stack([net._state(mx.nd, x).asnumpy() for _ in range(1500)])
    assert (states[:, 0] == 1).all()  # the in-graph training indicator
    np.testing.assert_allclose(states[:, 1].mean(), 0.5, atol=0.05)  # global half the time
    counts = np.bincount(states[:, 2].astype(int), minlength=4)[1:]
    assert counts.sum() == 1500 and (np.abs(counts / 1500 - 1 / 3) < 0.05).all()
    assert (net._state(mx.nd, x).asnumpy()[0] == 0)  # inference


def test_deepest_column_evaluation_is_the_plain_deepest_chain(mx):
    net = _net(mx, columns=3, drop_path="mix", dropout=(0.1, 0.2))
    x = mx.nd.random.normal(shape=(2, 3, 4, 4))
    everything = net(x).asnumpy()
    net.set_eval_columns("deepest")
    np.testing.assert_allclose(net(x).asnumpy(), _deepest_chain(mx, net, x).asnumpy(),
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(everything, net(x).asnumpy())
    net.set_eval_columns("all")
    np.testing.assert_allclose(net(x).asnumpy(), everything, rtol=1e-6)


@pytest.mark.parametrize("drop_path", [None, "mix"])
def test_hybridize_export_reload_in_eval(mx, tmp_path, drop_path):
    net = _net(mx, drop_path=drop_path, dropout=(0.0, 0.3))
    x = mx.nd.random.normal(shape=(2, 3, 4, 4))
    imperative = net(x).asnumpy()
    net.hybridize(static_alloc=True, static_shape=True)
    np.testing.assert_allclose(net(x).asnumpy(), imperative, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net(x).asnumpy(), imperative, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(reloaded_output(mx, net, x, tmp_path), imperative,
                               rtol=1e-5, atol=1e-6)
    # The deepest column on the hybridized net: the cached graph is re-traced.
    net.set_eval_columns("deepest")
    np.testing.assert_allclose(net(x).asnumpy(), _deepest_chain(mx, net, x).asnumpy(),
                               rtol=1e-5, atol=1e-6)


def test_hybridized_training_redraws_the_paths_and_backward_reaches_every_block(mx):
    net = _net(mx, drop_path="global")
    net.hybridize()
    x = mx.nd.random.normal(shape=(4, 3, 4, 4))
    mx.random.seed(0)
    outs = []
    for _ in range(6):
        with mx.autograd.record():
            out = net(x)
            loss = mx.gluon.loss.SoftmaxCrossEntropyLoss()(out, mx.nd.array([0, 1, 2, 3]))
        loss.backward()
        outs.append(out.asnumpy())
        grads = [p.grad().asnumpy() for p in net.collect_params().values()
                 if p.grad_req != "null"]
        assert all(np.isfinite(g).all() for g in grads)
        assert np.abs(net.output.weight.grad().asnumpy()).sum() > 0
    assert len({o.round(5).tobytes() for o in outs}) > 1  # different columns were drawn


# --- the registered net ---------------------------------------------------------------------
def _learnable(net) -> int:
    from bench.models import profile
    return profile(net, (1, 3, 32, 32)).learnable_params


@pytest.mark.parametrize("columns, classes, counted", [
    (3, 10, 33714314), (3, 100, 33760484), (4, 10, 76084554)])
def test_code_closed_form_matches_the_generator(columns, classes, counted):
    """``counted``: the parameters of the layers gustavla/fractalnet@7d07da6
    generation/fractalnet.py prints (COLUMNS and CLASSES set, run with Python 3), summed per
    conv from its bottom's channels (k x k x Cin x Cout + Cout bias; BatchNorm has no
    Scale layer) and the InnerProduct."""
    assert fractalnet_code_params(columns, classes=classes) == counted


# Larsson et al. 2016 Table 1: "FractalNet (20 layers, 38.6M params)".
PAPER_PARAMS_M = 38.6


def test_registered_net_is_the_authors_code_and_the_papers_depth():
    spec = get_spec("FractalNet-20")
    assert spec.name == "cifar_fractalnet20" and spec.classes == 10
    net = get_model("cifar_fractalnet20")
    assert _learnable(net) == fractalnet_code_params(3)
    columns, blocks = spec.flags["columns"], len(spec.flags["block_channels"])
    assert spec.depth == 20 == blocks * 2 ** (columns - 1)


def test_params_against_the_paper():
    """The code's net is 12.7 % below the paper's 38.6M; the 1x1-transition variant
    (khanrc/pt.fractalnet --doubling) is within 1 % of it."""
    code = _learnable(get_model("cifar_fractalnet20")) / 1e6
    assert code / PAPER_PARAMS_M - 1 == pytest.approx(-0.127, abs=0.002)
    doubling = _learnable(get_model("cifar_fractalnet20", transition="conv1x1")) / 1e6
    assert doubling == pytest.approx(PAPER_PARAMS_M, rel=0.01)
    # The registered row for the paper's count is that variant, in khanrc's pool order.
    registered = get_model("cifar_fractalnet20_doubling")
    assert _learnable(registered) / 1e6 == pytest.approx(PAPER_PARAMS_M, rel=0.01)
    assert get_spec("cifar_fractalnet20_doubling").flags["pool_before_join"] is False


@pytest.mark.parametrize("overrides, fragment", [
    (dict(columns=0), "columns"), (dict(dropout=(0.1,)), "one rate per block"),
    (dict(drop_path="sometimes"), "drop_path"), (dict(eval_columns="shallowest"),
                                                 "eval_columns"),
    (dict(transition="conv3x3"), "transition"), (dict(classes=0), "classes")])
def test_bad_options_are_one_line_errors(overrides, fragment):
    with pytest.raises(BenchError, match=fragment) as err:
        get_model("cifar_fractalnet20", **overrides)
    assert "\n" not in str(err.value)
