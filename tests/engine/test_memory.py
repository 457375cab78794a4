"""The memory facts behind the batch rule, and how prepare() uses them, without a GPU."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from bench.engine import memory
from bench.engine.runplan import RunOptions, prepare
from bench.recipes import DeviceMemory, load_recipe

GIB = 2 ** 30


def test_fixed_bytes_follow_the_papers_parameter_count():
    # He 2015 Table 6: CIFAR ResNet-20 has 0.27 M parameters; 16 bytes each.
    per_image, fixed = memory.training_bytes(load_recipe("he2015_cifar10_resnet20"), "float32")
    assert fixed / memory.BYTES_PER_PARAMETER == pytest.approx(0.27e6, rel=0.01)
    half, _ = memory.training_bytes(load_recipe("he2015_cifar10_resnet20"), "float16")
    assert half * 2 == per_image > 0


def test_cpu_capacity_is_the_ram_shared_by_contexts_and_workers(monkeypatch):
    monkeypatch.setattr(memory, "machine_ram", lambda: 24 * GIB)
    recipe = load_recipe("he2015_cifar10_resnet20")
    alone = memory.device_memory(recipe, "float32", [], contexts=1)
    assert (alone.capacity, alone.what) == (24 * GIB, "this machine's RAM")
    shared = memory.device_memory(recipe, "float32", [], contexts=2, workers=3)
    assert shared.capacity == 4 * GIB and "1/6 share" in shared.what


def test_gpu_capacity_is_the_smallest_free_memory_or_unknown(monkeypatch):
    mx = pytest.importorskip("mxnet")
    free = {0: 10 * GIB, 1: 6 * GIB}
    monkeypatch.setattr(mx.context, "gpu_memory_info", lambda i: (free[i], 16 * GIB))
    recipe = load_recipe("he2015_cifar10_resnet20")
    facts = memory.device_memory(recipe, "float32", [0, 1], contexts=2)
    assert facts.capacity == 6 * GIB and facts.what == "the smallest free memory of GPUs 0, 1"

    def no_gpu(i):
        raise mx.base.MXNetError("no GPU")

    monkeypatch.setattr(mx.context, "gpu_memory_info", no_gpu)
    assert memory.device_memory(recipe, "float32", [0], contexts=1).capacity is None


class _Job:
    """Three workers; this one is ``rank``; the others report ``others`` MiB (-1: unknown)."""

    def __init__(self, rank, others):
        self.rank, self.size, self.others = rank, 3, others

    def allreduce(self, values):
        out = np.asarray(values, dtype=np.float32)
        slots = [i for i in range(self.size) if i != self.rank]
        for i, mib in zip(slots, self.others):
            out[i] += mib
        return out


def test_workers_agree_on_the_smallest_capacity():
    mine = DeviceMemory(8 * GIB, 1, 0, "GPU 0's free memory")
    agreed = memory.agree(mine, _Job(1, [5 * 1024, 9 * 1024]))
    assert agreed.capacity == 5 * GIB and "(the smallest of the 3 workers')" in agreed.what
    assert memory.agree(mine, _Job(0, [5 * 1024, -1])).capacity is None
    assert memory.agree(mine, SimpleNamespace(size=1)) is mine


@pytest.mark.parametrize("ram_gib, batch, lr", [(64, 128, 0.1), (0.25, 64, 0.05)])
def test_prepare_keeps_or_rescales_by_the_ram(monkeypatch, ram_gib, batch, lr):
    monkeypatch.setattr(memory, "machine_ram", lambda: int(ram_gib * GIB))
    setup = prepare(load_recipe("he2015_cifar10_resnet20"), RunOptions())
    assert (setup.plan.global_batch, setup.plan.lr) == (batch, pytest.approx(lr))
    assert setup.total_iters == 64000 * 128 // batch


def test_prepare_asks_no_memory_when_the_batch_needs_none(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("memory asked for")

    monkeypatch.setattr(memory, "device_memory", fail)
    recipe = load_recipe("he2015_cifar10_resnet20")
    assert prepare(recipe, RunOptions(batch_size=64)).plan.global_batch == 64
    assert prepare(recipe, RunOptions(cpu_devices=2)).plan.global_batch == 128
