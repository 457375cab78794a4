"""A small net overfits a handful of images; `bench eval` reads ours and GluonCV's weights."""
from __future__ import annotations

import json

import pytest

from bench.engine.step import train_step
from tests.cli import invoke
from tests.data.helpers import write_cifar


def test_a_small_resnet_overfits_a_handful_of_digits():
    import mxnet as mx
    from bench.data.small import digits_split
    from bench.models import get_model
    images, labels = digits_split()[:2]
    x, y = mx.nd.array(images[:16]), labels[:16]
    net = get_model("cifar_resnet20_v1_a", in_channels=1, classes=10)
    net.initialize(mx.init.MSRAPrelu())
    net.hybridize()
    trainer = mx.gluon.Trainer(net.collect_params(), "nag",
                               {"learning_rate": 0.05, "momentum": 0.9})
    loss = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    for _ in range(80):
        train_step(net, trainer, loss, x, y, [mx.cpu()], global_batch=16)
    predicted = net(x).argmax(axis=1).asnumpy()  # inference mode: BN running statistics
    assert (predicted == y).mean() == 1.0


@pytest.fixture
def cifar_dir(tmp_path):
    write_cifar(tmp_path / "cifar", "cifar10", "bin", per_batch=3, test=7)
    return tmp_path / "cifar"


def _eval(*args):
    result = invoke("eval", *args, "--format", "json", "--loader-workers", "0")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_eval_reads_gluoncv_params_and_matches_gluoncvs_own_predictions(cifar_dir, tmp_path):
    import mxnet as mx
    from bench.data import DataSpec, build_eval
    from bench.models.gluoncv_import import build_gluoncv
    theirs = build_gluoncv("cifar_resnet20_v1")
    theirs.initialize(mx.init.Xavier(magnitude=3))
    theirs(mx.nd.zeros((1, 3, 32, 32)))
    for name, p in theirs.collect_params().items():  # random BN statistics too
        if name.endswith(("running_mean", "running_var")):
            p.set_data(mx.nd.random.uniform(0.5, 1.5, shape=p.shape))
    path = tmp_path / "gluoncv.params"
    theirs.save_parameters(str(path))

    result = _eval("cifar_resnet20_v1", "--params", str(path), "--dataset", "cifar10",
                   "--data-dir", str(cifar_dir))
    data = build_eval(DataSpec(dataset="cifar10", train_augment="none", input_size=32,
                               protocol="full"), str(cifar_dir), batch_size=4)
    wrong = total = 0
    for x, y in data.batches():
        predicted = theirs(mx.nd.array(x)).argmax(axis=1).asnumpy()
        wrong += int((predicted != y).sum())
        total += len(y)
    assert result["num_samples"] == total == 7
    assert result["top1_err"] == pytest.approx(100.0 * wrong / total)


def test_eval_reads_weights_saved_by_a_run(tmp_path):
    runner_out = tmp_path / "runs"
    # (33 steps, not --epochs 3: a complete 3-epoch digits run ends at chance level, ~90 %
    # error, and `bench run` fails it; the first 33 steps of the 40-epoch schedule stop cleanly.)
    trained = invoke("run", "recipe", "digits_resnet", "--max-steps", "33", "--no-progress",
                     "--loader-workers", "0", "--out", str(runner_out))
    assert trained.exit_code == 0, trained.stderr
    run_dir = next((runner_out / "digits_resnet").iterdir())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    params = sorted(run_dir.glob("checkpoints/*/net.params"))[-1]
    result = _eval("cifar_resnet20_v1_a", "--params", str(params), "--dataset", "digits")
    assert result["num_samples"] == 360
    assert result["top1_err"] == pytest.approx(metrics["top1_err"])
