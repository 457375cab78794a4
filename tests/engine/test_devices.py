"""Device parsing and the GPU checks (every branch without a GPU), kvstores, batch splitting."""
from __future__ import annotations

import numpy as np
import pytest

from bench.engine import devices
from bench.engine.devices import (capability_supported, check_gpus, choose_kvstore, contexts,
                                  gpu_problem, parse_gpus, split_batch)
from bench.errors import BenchError


@pytest.fixture
def mx():
    from bench._mxnet import require_mxnet
    return require_mxnet()


@pytest.mark.parametrize("text, expected", [
    (None, []), ("", []), ("  ", []), ("0", [0]), ("0,1", [0, 1]), (" 2, 3 ", [2, 3]),
])
def test_parse_gpus(text, expected):
    assert parse_gpus(text) == expected


@pytest.mark.parametrize("text, words", [
    ("-1", "0 or more"), ("a", "got 'a'"), ("0,,1", "got ''"), ("0,0", "listed twice"),
    ("1.5", "got '1.5'"), ("²", "got '²'"), ("٣", "ASCII digits"), ("0,¹", "got '¹'"),
    ("1024", "0-1023"), ("9" * 400, "ASCII digits"),
])
def test_parse_gpus_rejects(text, words):
    with pytest.raises(BenchError) as info:
        parse_gpus(text)
    assert words in str(info.value) and "\n" not in str(info.value)


def _problem(gpus, cuda=True, count=8, caps=None):
    return gpu_problem(gpus, cuda_enabled=cuda, num_gpus=count, capabilities=caps)


def test_no_gpus_asked_is_never_a_problem():
    assert _problem([], cuda=False, count=0) is None


def test_cpu_wheel():
    msg = _problem([0], cuda=False, count=0)
    assert msg.startswith("--gpus 0 asks for a GPU, but the installed MXNet is the CPU wheel")
    assert "pip install -e '.[cu112]'" in msg and "drop --gpus" in msg


def test_too_few_gpus():
    assert _problem([0, 1], count=1) == "--gpus 0,1 asks for 2 GPUs, this machine has 1"
    assert _problem([0], count=0) == "--gpus 0 asks for 1 GPU, this machine has 0"
    assert "asks for GPU 3, but this machine has 2 (indices 0-1)" in _problem([3], count=2)


def test_hopper_is_unsupported_with_advice():
    msg = _problem([0], caps=[("NVIDIA H100 80GB HBM3", "9.0")])
    assert "GPU 0 (NVIDIA H100 80GB HBM3) has compute capability 9.0" in msg
    assert "no PTX" in msg and "A100" in msg
    assert "CUDA >= 11.8 and -DMXNET_CUDA_ARCH=9.0" in msg and "\n" not in msg


@pytest.mark.parametrize("cc", ["5.0", "5.2", "6.0", "6.1", "7.0", "7.5", "8.0", "8.6", "8.9"])
def test_supported_capabilities(cc):
    # Turing 7.5 runs 7.0 code, Ada 8.9 runs 8.6 code: same major, minor at least the built one.
    assert capability_supported(cc)
    assert _problem([0, 1], caps=[("A", cc), ("B", cc)]) is None


@pytest.mark.parametrize("cc", ["3.7", "9.0", "10.0", "12.0"])
def test_unsupported_capabilities(cc):
    assert not capability_supported(cc)
    msg = _problem([0], caps=[("X", cc)])
    assert f"compute capability {cc}" in msg
    assert ("newer GPU" in msg) == (cc == "3.7")


def test_only_the_chosen_gpus_are_checked():
    caps = [("NVIDIA A100", "8.0"), ("NVIDIA H100", "9.0")]
    assert _problem([0], caps=caps) is None
    assert "GPU 1 (NVIDIA H100)" in _problem([0, 1], caps=caps)


def test_unknown_capabilities_skip_the_check():
    assert _problem([0], caps=None) is None
    assert _problem([0], caps=[("odd", "n/a")]) is None


def test_nvidia_smi_absent_means_unknown(monkeypatch):
    monkeypatch.setattr(devices.shutil, "which", lambda name: None)
    assert devices.gpu_capabilities() is None


def test_nvidia_smi_output_is_mapped_through_cuda_visible_devices(monkeypatch, tmp_path):
    smi = tmp_path / "nvidia-smi"
    rows = "NVIDIA A100, 8.0\\nNVIDIA A100, 8.0\\nNVIDIA H100, 9.0\\n"
    smi.write_text(f"#!/bin/sh\nprintf '{rows}'\n")
    smi.chmod(0o755)
    monkeypatch.setattr(devices.shutil, "which", lambda name: str(smi))
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    assert devices.gpu_capabilities() == [("NVIDIA H100", "9.0"), ("NVIDIA A100", "8.0")]
    monkeypatch.delenv("CUDA_DEVICE_ORDER")  # mixed GPUs, fastest-first order: unknown
    assert devices.gpu_capabilities() is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-1234")
    assert devices.gpu_capabilities() is None


def test_check_gpus_on_this_machine():
    check_gpus([])  # CPU runs need nothing
    cuda = devices.gpu_facts()[0]
    if not cuda:
        with pytest.raises(BenchError, match="CPU wheel"):
            check_gpus([0])


def test_contexts(mx):
    assert contexts([], 1) == [mx.cpu(0)]
    assert contexts([], 2) == [mx.cpu(0), mx.cpu(1)]
    assert contexts([0, 1]) == [mx.gpu(0), mx.gpu(1)]  # creating a context needs no GPU
    with pytest.raises(BenchError):
        contexts([], 0)


def test_choose_kvstore(monkeypatch):
    monkeypatch.delenv("DMLC_ROLE", raising=False)
    assert choose_kvstore("device", 2) == "device"
    assert choose_kvstore("local", 4) == "local"
    assert choose_kvstore("device", 1) is None  # one device needs no kvstore
    assert choose_kvstore("nccl", 2, on_gpu=True) == "nccl"
    with pytest.raises(BenchError, match="did you mean: device"):
        choose_kvstore("devise", 2)
    with pytest.raises(BenchError, match="nccl needs GPUs"):
        choose_kvstore("nccl", 2, on_gpu=False)
    # A dist kvstore is named even for one device: the job has other workers. Whether this
    # process was launched as one is checked when it joins (tests/engine/test_distributed.py).
    assert choose_kvstore("dist_sync", 1) == "dist_sync"
    assert choose_kvstore("dist_device_sync", 2) == "dist_device_sync"
    from bench.engine.cluster import join_cluster
    with pytest.raises(BenchError, match="DMLC_ROLE"):
        join_cluster("dist_sync")


def test_nccl_on_the_cpu_wheel_is_refused():
    from bench._mxnet import require_mxnet
    if require_mxnet().runtime.Features().is_enabled("NCCL"):
        pytest.skip("this MXNet has NCCL")
    with pytest.raises(BenchError, match="nccl needs GPUs"):
        choose_kvstore("nccl", 2)


def test_horovod_without_horovod_explains():
    try:
        import horovod.mxnet  # noqa: F401
    except ImportError:
        with pytest.raises(BenchError) as info:
            choose_kvstore("horovod", 2)
        assert "DistributedTrainer" in str(info.value) and "\n" not in str(info.value)
    else:
        assert choose_kvstore("horovod", 2) == "horovod"


def test_split_batch_uneven(mx):
    ctxs = [mx.cpu(0), mx.cpu(1)]
    data = mx.nd.arange(5 * 3).reshape((5, 3))
    label = mx.nd.arange(5)
    xs, ys = split_batch(data, label, ctxs)
    assert [x.shape[0] for x in xs] == [3, 2] and [y.shape[0] for y in ys] == [3, 2]
    assert [x.context for x in xs] == ctxs and [y.context for y in ys] == ctxs
    np.testing.assert_array_equal(np.concatenate([x.asnumpy() for x in xs]), data.asnumpy())
    np.testing.assert_array_equal(np.concatenate([y.asnumpy() for y in ys]), label.asnumpy())
    only_data, none = split_batch(data, None, ctxs)
    assert none is None and len(only_data) == 2
    single, _ = split_batch(data, label, [mx.cpu(0)])
    assert len(single) == 1 and single[0].shape == (5, 3)


@pytest.mark.parametrize("kvstore", ["device", "local"])
def test_kvstore_keeps_the_copies_on_two_contexts_equal(mx, kvstore):
    from mxnet.gluon import nn
    ctxs = [mx.cpu(0), mx.cpu(1)]
    net = nn.Dense(3, in_units=4)
    net.initialize(mx.init.Xavier(), ctx=ctxs)
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd",
                               {"learning_rate": 0.5, "momentum": 0.9},
                               kvstore=choose_kvstore(kvstore, len(ctxs)))
    before = net.weight.data(ctxs[0]).asnumpy()
    rng = np.random.default_rng(0)
    loss_fn = mx.gluon.loss.L2Loss()
    for _ in range(3):
        # Different data on each device: the copies only stay equal if gradients are summed.
        xs, ys = split_batch(mx.nd.array(rng.normal(size=(6, 4))),
                             mx.nd.array(rng.normal(size=(6, 3))), ctxs)
        with mx.autograd.record():
            losses = [loss_fn(net(x), y) for x, y in zip(xs, ys)]
        mx.autograd.backward(losses)
        trainer.step(6)
    for param in net.collect_params().values():
        a, b = (param.data(c).asnumpy() for c in ctxs)
        np.testing.assert_array_equal(a, b)
    assert np.abs(net.weight.data(ctxs[0]).asnumpy() - before).max() > 1e-3
