"""Knowledge distillation ([distill], bench/engine/distill.py): the loss against GluonCV's
DistillationSoftmaxCrossEntropyLoss (an independent implementation), its gradient against finite
differences, hard_weight 1 as plain training, a teacher that never changes, a bit-exact resume,
and the one-line refusals."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

from bench.engine.distill import Distiller, soft_term
from bench.engine.step import train_step
from bench.errors import BenchError
from bench.recipes import load_recipe
from tests.cli import assert_one_line_error, invoke
from tests.engine.test_training import _bench

QUICK = ("--no-progress", "--loader-workers", "0")
TEACHER = "cifar_resnet20_v1_a"


def _logits(seed: int, n: int = 6, k: int = 5) -> mx.nd.NDArray:
    return mx.nd.array(np.random.default_rng(seed).normal(size=(n, k)) * 3)


@pytest.mark.parametrize("hard_weight", [0.0, 0.3, 0.5])
@pytest.mark.parametrize("sparse", [True, False])
def test_loss_equals_gluoncv_less_the_teacher_entropy(hard_weight, sparse):
    gcv_loss = pytest.importorskip("gluoncv.loss")
    s, t, T = _logits(0), _logits(1), 20.0
    labels = mx.nd.array([0, 1, 2, 3, 4, 0])
    target = labels if sparse else mx.nd.one_hot(labels, 5) * 0.9 + 0.02
    ours = Distiller(None, gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=sparse), T,
                     hard_weight, "kl").loss(s, target, t)
    oracle = gcv_loss.DistillationSoftmaxCrossEntropyLoss(
        temperature=T, hard_weight=hard_weight, sparse_label=sparse)(
        s, target, mx.nd.softmax(t / T))
    pt = mx.nd.softmax(t / T).asnumpy()
    entropy = -(pt * np.log(pt)).sum(axis=1)
    np.testing.assert_allclose(ours.asnumpy() + (1 - hard_weight) * T ** 2 * entropy,
                               oracle.asnumpy(), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("kind", ["kl", "js"])
def test_soft_term_is_zero_for_a_copy_of_the_teacher_and_positive_otherwise(kind):
    # KL is exactly 0 (log p - log p); JS's mixture log((p + p) / 2) rounds.
    t = _logits(2)
    same = soft_term(t.copy(), t, 4.0, kind).asnumpy()
    assert np.all(same == 0) if kind == "kl" else np.all(np.abs(same) < 1e-6)
    assert np.all(soft_term(_logits(3), t, 4.0, kind).asnumpy() > 0)


def test_js_is_symmetric_and_bounded_by_ln2():
    a, b = _logits(4) * 10, _logits(5) * 10
    ab, ba = soft_term(a, b, 1.0, "js").asnumpy(), soft_term(b, a, 1.0, "js").asnumpy()
    np.testing.assert_allclose(ab, ba, rtol=1e-5)
    assert np.all(ab <= np.log(2) + 1e-6)


@pytest.mark.parametrize("kind", ["kl", "js"])
def test_gradient_of_the_soft_term_matches_finite_differences(kind):
    # A tiny net (one Dense layer) in float64: d(T^2 * D)/dW by autograd against central
    # differences of the same loss.
    rng = np.random.default_rng(0)
    x = mx.nd.array(rng.normal(size=(4, 3)), dtype="float64")
    t = mx.nd.array(rng.normal(size=(4, 5)) * 2, dtype="float64")
    net = gluon.nn.Dense(5, in_units=3, dtype="float64")
    net.initialize(mx.init.Normal(0.5))
    T = 3.0

    def loss() -> mx.nd.NDArray:
        return (T ** 2 * soft_term(net(x), t, T, kind)).sum()

    with autograd.record():
        value = loss()
    value.backward()
    w = net.weight
    grad = w.grad().asnumpy()
    base, eps, numeric = w.data().asnumpy(), 1e-6, np.zeros_like(grad)
    for idx in np.ndindex(*base.shape):
        for sign in (1, -1):
            moved = base.copy()
            moved[idx] += sign * eps
            w.set_data(mx.nd.array(moved, dtype="float64"))
            numeric[idx] += sign * loss().asscalar() / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def _tiny(seed: int):
    mx.random.seed(seed)
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Conv2D(4, 3, padding=1, in_channels=1), gluon.nn.BatchNorm(in_channels=4),
            gluon.nn.Activation("relu"), gluon.nn.GlobalAvgPool2D(), gluon.nn.Dense(5, in_units=4))
    net.initialize(mx.init.Xavier())
    return net


def _steps(distiller, steps: int = 3):
    """A student trained ``steps`` steps (with or without ``distiller``): its losses, weights."""
    net = _tiny(0)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1,
                                                         "momentum": 0.9})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    rng = np.random.default_rng(1)
    losses = []
    for _ in range(steps):
        data = mx.nd.array(rng.normal(size=(8, 1, 6, 6)))
        labels = rng.integers(0, 5, 8)
        loss, _ = train_step(net, trainer, loss_fn, data, labels, [mx.cpu()], 8,
                             distiller=distiller)
        losses.append(loss.asscalar())
    return losses, [v.data().asnumpy() for v in net.collect_params().values()]


def test_hard_weight_one_is_plain_training_and_the_teacher_never_changes():
    teacher = _tiny(7)
    before = {k: v.data().asnumpy().copy() for k, v in teacher.collect_params().items()}
    plain_loss, plain = _steps(None)
    ce = gluon.loss.SoftmaxCrossEntropyLoss()
    hw1_loss, hw1 = _steps(Distiller(teacher, ce, 20.0, 1.0, "kl"))
    assert plain_loss == hw1_loss
    assert len(plain) == len(hw1) and all(np.array_equal(a, b) for a, b in zip(plain, hw1))
    half_loss, half = _steps(Distiller(teacher, ce, 20.0, 0.5, "kl"))
    assert half_loss != plain_loss  # (so the comparison above could fail)
    for k, v in teacher.collect_params().items():  # BN running statistics included
        assert np.array_equal(v.data().asnumpy(), before[k]), k


# --- runs -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory) -> Path:
    from bench.models import get_model
    net = get_model(TEACHER, classes=10, in_channels=1)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 1, 8, 8)))
    path = tmp_path_factory.mktemp("teacher") / "teacher.params"
    net.save_parameters(str(path))
    return path


def _distill_args(weights) -> tuple[str, ...]:
    return ("--set", f"distill.teacher={TEACHER}", "--set", f"distill.weights={weights}",
            "--set", "train.checkpoint_every=1")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_resume_with_a_teacher_is_bit_exact(tmp_path, teacher_file):
    common = ("run", "recipe", "digits_resnet", *QUICK, *_distill_args(teacher_file),
              "--set", "train.mixup_alpha=0.2")
    straight = _bench(*common, "--max-steps", "14", "--out", str(tmp_path / "a"), threads=1)
    assert straight.returncode == 0, straight.stderr
    half = _bench(*common, "--max-steps", "7", "--out", str(tmp_path / "b"), threads=1)
    assert half.returncode == 0, half.stderr
    run_a, run_b = (next((tmp_path / x / "digits_resnet").iterdir()) for x in "ab")
    rest = _bench("run", "recipe", "--resume", str(run_b), "--max-steps", "14", *QUICK,
                  threads=1)
    assert rest.returncode == 0, rest.stderr
    teacher = json.loads((run_b / "run.json").read_text())["teacher"]
    assert teacher["file"] == str(teacher_file) and teacher["sha256"] == _sha(teacher_file)
    a, b = (sorted((r / "checkpoints").glob("ckpt-*-00000014"))[0] for r in (run_a, run_b))
    for fname in ("net.params", "trainer.states"):
        assert _sha(a / fname) == _sha(b / fname), fname


def test_resume_refuses_a_changed_or_missing_teacher(tmp_path, teacher_file):
    weights = tmp_path / "t.params"
    weights.write_bytes(teacher_file.read_bytes())
    result = invoke("run", "recipe", "digits_resnet", *QUICK, *_distill_args(weights),
                    "--max-steps", "3", "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.stderr
    run_dir = next((tmp_path / "o" / "digits_resnet").iterdir())
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    resume = ("run", "recipe", "--resume", str(run_dir), "--max-steps", "4", *QUICK)
    assert_one_line_error(invoke(*resume), f"teacher weights {weights} changed since the run "
                          "started", "restore the original file")
    weights.unlink()
    assert_one_line_error(invoke(*resume), f"teacher weights {weights} are missing",
                          "put that file back")


def test_a_run_directory_as_weights_uses_its_newest_checkpoint(tmp_path):
    result = invoke("run", "recipe", "digits_resnet", *QUICK, "--set",
                    f"network={TEACHER}", "--max-steps", "2", "--out", str(tmp_path / "t"))
    assert result.exit_code == 0, result.stderr
    teacher_run = next((tmp_path / "t" / "digits_resnet").iterdir())
    from bench.engine.distill import teacher_record
    recipe = load_recipe("digits_resnet", [f"distill.teacher={TEACHER}",
                                           f"distill.weights={teacher_run}"])
    record = teacher_record(recipe)
    assert record["file"] == str(teacher_run / "checkpoints" / "ckpt-0000-00000002" /
                                 "net.params")
    wrong = load_recipe("digits_resnet", ["distill.teacher=cifar_resnet56_v1",
                                          f"distill.weights={teacher_run}"])
    with pytest.raises(BenchError, match="is a run of cifar_resnet20_v1_a, not of the teacher"):
        teacher_record(wrong)


def test_missing_weights_are_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = ("run", "recipe", "digits_resnet", *QUICK, "--set", f"distill.teacher={TEACHER}",
            "--out", str(tmp_path / "o"))
    planned = invoke(*base, "--dry-run")  # the plan is shown, saying what a run needs
    assert planned.exit_code == 0, planned.stderr
    assert "a run needs --set distill.weights=PATH" in planned.stdout
    assert_one_line_error(invoke(*base), "names no teacher weights", "--set distill.weights=PATH")
    assert_one_line_error(invoke(*base, "--set", "distill.weights=nope.params"),
                          "distill.weights nope.params: no such file",
                          f"relative paths are taken from the current directory, {tmp_path}")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("sets, shown", [
    (["distill.teacher=cifar_resnet20_v1_a", "distill.tempreature=4"],
     "unknown key (did you mean: temperature?); valid keys of [distill]"),
    (["distill.teacher=cifar_resnet20_v1_a", "distill.loss=mse"],
     "distill.loss = 'mse' is not one of kl, js"),
    (["distill.teacher=cifar_resnet20_v1_a", "distill.hard_weight=1.5"],
     "distill.hard_weight = 1.5 must be between 0.0 and 1.0"),
    (["distill.teacher=cifar_resnet20_v1_a", "distill.temperature=0"],
     "distill.temperature = 0.0 must be positive"),
    (["distill.temperature=4"], "distill.temperature is set but distill.teacher is not"),
    (["distill.teacher=no_such_net"], "distill.teacher: unknown model 'no_such_net'"),
    (["distill.teacher=cifar_resnet20_v1_a", "distill.teacher_args.bogus=1"],
     "distill.teacher: unknown model option 'bogus'"),
    (["distill.teacher=cifar_resnet20_v1_a", "distill.loss=js", "train.label_smoothing=0.1"],
     "set train.label_smoothing = 0"),
])
def test_recipe_errors_are_one_line(sets, shown):
    with pytest.raises(BenchError, match=None) as info:
        load_recipe("digits_resnet", sets)
    assert shown in str(info.value) and "\n" not in str(info.value)


def test_unknown_key_in_a_recipe_file_names_the_closest(tmp_path):
    from tests.engine.test_training import ROOT
    text = (ROOT / "recipes" / "digits_resnet.toml").read_text()
    (tmp_path / "r.toml").write_text(
        text + '\n[distill]\nteacher = "cifar_resnet20_v1_a"\nhard_wieght = 1\n')
    with pytest.raises(BenchError, match=r"unknown key 'distill.hard_wieght'.*hard_weight"):
        load_recipe("r", directory=tmp_path)
