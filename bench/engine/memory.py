"""The memory facts behind the batch rule (:func:`bench.recipes.scaling.choose_batch`): how
much one device has, and how much one training image, the model's fixed state and a teacher take.

* per image: :func:`bench.models.profile`'s activation memory, every operator's forward output
  for one image at the run's dtype (an upper bound of what training keeps: on this suite's CPU,
  CIFAR ResNet-110 at batch 16 and 128 measured 8.4 MiB of peak RSS per extra image against the
  estimate's 14.1 MiB);
* fixed: 16 bytes per learnable parameter (weights, gradients, momentum and one more copy: the
  kvstore's merge buffer or the fp32 master weights), our choice;
* a distillation teacher (``[distill]``, :mod:`bench.engine.distill`) runs on the same device in
  predict mode, so it keeps no gradients and no optimizer state: its share is its stored
  weights (every parameter, BN running statistics included, at 4 bytes, 2 when cast to
  float16; a bf16 teacher keeps fp32 weights and casts them in its graph) plus, per image,
  :data:`PREDICT_MARGIN` times :func:`bench.models.profile`'s inference memory (the most
  tensors alive at once in an in-order forward) at the run's dtype and the same per-device
  batch. The training count would be 11-17x too much here: a forward that keeps nothing for a
  backward pass frees each buffer once read;
* a device's capacity: on GPU the free memory MXNet reports (``mx.context.gpu_memory_info``,
  the smallest over the GPUs used), else unknown; on CPU this machine's physical RAM, shared
  by the CPU contexts and by the workers of a multi-worker job (which may all run here).

In a multi-worker job every worker must run the same batch, so the capacity used is the
smallest any worker reports (:func:`agree`).
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Sequence

from bench._mxnet import require_mxnet
from bench.engine import build
from bench.engine.cluster import Cluster
from bench.recipes import DeviceMemory, Recipe

BYTES_PER_PARAMETER = 16  # fp32 weights, gradients, momentum, one more copy (our choice)
# Our choice, from peak RSS per extra image in a hybridized predict-mode forward against the
# live-tensor count (Intel Xeon, 1 thread, MXNet 1.9.1 with oneDNN, whose layout copies the
# count does not see): 1.29x for cifar_resnet20_v1_a at 28x28x1 (0.185 against 0.144 MiB, batch
# 32 against 256) and 1.31x for resnet50_v1d at 224 (12.0 against 9.19 MiB, batch 4 against 20).
PREDICT_MARGIN = 2
_CACHE: dict[tuple, tuple[int, int, int, int]] = {}


def machine_ram() -> int | None:
    """Physical RAM in bytes (not what is free now: the plan should not change with the load)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return None


def gpu_free_memory(gpus: Sequence[int]) -> int | None:
    """The smallest free memory over ``gpus`` in bytes, or None when MXNet cannot tell."""
    mx = require_mxnet()
    try:
        return min(int(mx.context.gpu_memory_info(g)[0]) for g in gpus)
    except (AttributeError, RuntimeError, ValueError):  # MXNetError is a RuntimeError
        return None


def _counts(recipe: Recipe, network: str, args: dict,
            dtype: str) -> tuple[int, int, int, int]:
    """(training and inference activation bytes per image at ``dtype``, learnable parameters,
    total parameters) of ``network`` built with ``args`` for ``recipe``'s data
    (:func:`bench.engine.build.network_for_data`, as the student and the teacher are)."""
    from bench.data.spec import in_channels, num_classes
    from bench.models import profile
    spec = build.data_spec(recipe)
    classes, channels = num_classes(spec), in_channels(spec)
    size, dtype_bytes = spec.input_size, 2 if dtype in ("float16", "bfloat16") else 4
    key = (network, json.dumps(args, sort_keys=True), classes, channels, size, dtype_bytes)
    if key not in _CACHE:
        counts = profile(build.network_for_data(network, args, classes, channels),
                         (1, channels, size, size), dtype_bytes=dtype_bytes)
        _CACHE[key] = (counts.activation_bytes, counts.inference_bytes,
                       counts.learnable_params, counts.total_params)
    return _CACHE[key]


def training_bytes(recipe: Recipe, dtype: str) -> tuple[int, int]:
    """(bytes per training image, fixed bytes) of ``recipe``'s network at ``dtype``."""
    activations, _, learnable, _ = _counts(recipe, recipe.network, recipe.network_args, dtype)
    return activations, learnable * BYTES_PER_PARAMETER


def teacher_bytes(recipe: Recipe, dtype: str) -> tuple[int, int] | None:
    """(bytes per image, fixed bytes) of ``recipe``'s distillation teacher in predict mode at
    ``dtype`` (module docstring), or None when the recipe distils from no teacher."""
    d = recipe.distill
    if not d.enabled:
        return None
    _, live, _, total = _counts(recipe, d.teacher, d.teacher_args, dtype)
    return PREDICT_MARGIN * live, total * (2 if dtype == "float16" else 4)


def device_memory(recipe: Recipe, dtype: str, gpus: Sequence[int], contexts: int,
                  workers: int = 1) -> DeviceMemory:
    """The facts for one device of this run: ``contexts`` devices in this process, ``workers``
    processes in the job."""
    per_image, fixed = training_bytes(recipe, dtype)
    teacher = teacher_bytes(recipe, dtype)
    extra = {} if teacher is None else dict(teacher=recipe.distill.teacher,
                                            teacher_per_image=teacher[0], teacher_fixed=teacher[1])
    if gpus:
        listed = ", ".join(str(g) for g in gpus)
        what = (f"GPU {listed}'s free memory" if len(gpus) == 1
                else f"the smallest free memory of GPUs {listed}")
        return DeviceMemory(gpu_free_memory(gpus), per_image, fixed, what, **extra)
    ram, shares = machine_ram(), contexts * workers
    what = "this machine's RAM" if shares == 1 else (
        f"a 1/{shares} share of this machine's RAM ({contexts} CPU context(s) x {workers} "
        "worker(s))")
    return DeviceMemory(None if ram is None else ram // shares, per_image, fixed, what, **extra)


def agree(memory: DeviceMemory, cluster: Cluster) -> DeviceMemory:
    """The smallest capacity over the job's workers (unknown if any worker's is), so that every
    worker takes the same decision. A collective call: every worker must make it."""
    if cluster.size <= 1:
        return memory
    mine = -1.0 if memory.capacity is None else float(memory.capacity // 2 ** 20)  # MiB: fp32-exact
    values = [0.0] * cluster.size
    values[cluster.rank] = mine
    reported = cluster.allreduce(values)
    what = f"{memory.what} (the smallest of the {cluster.size} workers')"
    if min(reported) < 0:
        return dataclasses.replace(memory, capacity=None, what=what)
    return dataclasses.replace(memory, capacity=int(min(reported)) * 2 ** 20, what=what)
