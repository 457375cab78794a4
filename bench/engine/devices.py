"""Devices: which contexts to train on, whether this MXNet can use them, and how they sync.

Every check here fails before the first step with one sentence saying what to do, because the
alternative is MXNet failing deep inside the first CUDA kernel launch (``no kernel image is
available for execution on the device``) or, worse, quietly training on fewer workers than asked
for (``mx.kv.create`` accepts any name, e.g. ``'horovod'`` or a typo, and returns a local
single-worker store).

The GPU decision is a pure function (:func:`gpu_problem`) of facts gathered separately
(:func:`gpu_facts`), so every branch is tested on a machine without a GPU.
"""
from __future__ import annotations

import os
import shutil
import subprocess

from bench._mxnet import require_mxnet
from bench.errors import BenchError, check_choice
from bench.recipes.schema import KVSTORES

# Compute capabilities the mxnet-cu112==1.9.1 wheel carries SASS for; it carries no PTX, so no
# newer architecture can JIT-compile its kernels. Measured from the wheel's libmxnet.so with
# `cuobjdump --list-elf` / `--list-ptx` (see README).
SUPPORTED_COMPUTE_CAPABILITIES = ("5.0", "6.0", "7.0", "8.0", "8.6")
GPU_INSTALL = "pip install -e '.[cu112]'"
# Minimum CUDA toolkit that can compile for an architecture MXNet's wheel lacks.
_CUDA_FOR_ARCH = {"9.0": "11.8"}


MAX_GPU_INDEX = 1023  # our bound: far above any machine's GPU count, far below int overflow


def _index(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts '²' or '٣', which ``int`` refuses."""
    return text.isascii() and text.isdigit()


def parse_gpus(text: str | None) -> list[int]:
    """``--gpus "0,1"`` -> ``[0, 1]``; empty or None -> ``[]`` (train on CPU)."""
    if text is None or not str(text).strip():
        return []
    gpus = []
    for part in str(text).split(","):
        part = part.strip()
        if part.startswith("-") and _index(part[1:]):
            raise BenchError(f"--gpus {text}: GPU indices are 0 or more; drop --gpus to train "
                             "on CPU")
        if not _index(part) or len(part) > 4 or int(part) > MAX_GPU_INDEX:
            raise BenchError(f"--gpus {text!r}: expected comma-separated GPU indices (ASCII "
                             f"digits 0-{MAX_GPU_INDEX}) such as 0 or 0,1, got {part!r}")
        if int(part) in gpus:
            raise BenchError(f"--gpus {text}: GPU {int(part)} is listed twice")
        gpus.append(int(part))
    return gpus


def contexts(gpus: list[int], cpu_devices: int = 1) -> list:
    """``mx.gpu(i)`` for each GPU, else ``cpu_devices`` CPU contexts. Several CPU contexts share
    the same cores but exercise the multi-device code path (split, kvstore) without a GPU."""
    mx = require_mxnet()
    if gpus:
        return [mx.gpu(i) for i in gpus]
    if cpu_devices < 1:
        raise BenchError(f"cpu_devices must be >= 1, got {cpu_devices}")
    return [mx.cpu(i) for i in range(cpu_devices)]


def _flag(gpus: list[int]) -> str:
    return "--gpus " + ",".join(str(g) for g in gpus)


def _gpus(n: int) -> str:
    return f"{n} GPU" if n == 1 else f"{n} GPUs"


def _cc(text: str) -> tuple[int, int]:
    major, _, minor = text.strip().partition(".")
    return int(major), int(minor or 0)


def capability_supported(cc: str,
                         supported: tuple[str, ...] = SUPPORTED_COMPUTE_CAPABILITIES) -> bool:
    """SASS built for X.y runs on devices X.z with z >= y (same major only), e.g. 7.5 (Turing)
    runs 7.0 code, 8.9 (Ada) runs 8.6 code; without PTX nothing runs on a newer major."""
    major, minor = _cc(cc)
    return any(m == major and n <= minor for m, n in map(_cc, supported))


def gpu_problem(gpus: list[int], *, cuda_enabled: bool, num_gpus: int,
                capabilities: list[tuple[str, str]] | None) -> str | None:
    """Why ``gpus`` cannot be used, as one sentence, or None if they can (or nothing is asked).

    ``capabilities[i]`` is ``(name, "X.Y")`` for CUDA device ``i``; None when unknown (no
    nvidia-smi), which skips that check."""
    if not gpus:
        return None
    flag = _flag(gpus)
    if not cuda_enabled:
        return (f"{flag} asks for a GPU, but the installed MXNet is the CPU wheel: install the "
                f"GPU wheel with `{GPU_INSTALL}` on a machine with an NVIDIA GPU, or drop --gpus "
                "to train on CPU")
    if len(gpus) > num_gpus:
        return f"{flag} asks for {_gpus(len(gpus))}, this machine has {num_gpus}"
    missing = [g for g in gpus if g >= num_gpus]
    if missing:
        return (f"{flag} asks for GPU {missing[0]}, but this machine has {num_gpus} "
                f"(indices 0-{num_gpus - 1})")
    if capabilities is None:
        return None
    listed = ", ".join(SUPPORTED_COMPUTE_CAPABILITIES)
    for g in gpus:
        if g >= len(capabilities):
            continue
        name, cc = capabilities[g]
        try:
            ok = capability_supported(cc)
        except ValueError:
            continue  # an unparsable report is no reason to refuse
        if ok:
            continue
        what = (f"{flag}: GPU {g} ({name}) has compute capability {cc}, which the "
                f"mxnet-cu112 1.9.1 wheel has no kernels for (it carries {listed} and no PTX)")
        if _cc(cc) < _cc(SUPPORTED_COMPUTE_CAPABILITIES[0]):
            return f"{what}: use a newer GPU (Maxwell or later)"
        cuda = _CUDA_FOR_ARCH.get(cc)
        toolkit = f"CUDA >= {cuda}" if cuda else f"a CUDA toolkit that supports {cc}"
        return (f"{what}: use an older GPU generation (Ampere A100/A10, Volta V100...), or "
                f"build MXNet from source with {toolkit} and -DMXNET_CUDA_ARCH={cc}")
    return None


def gpu_capabilities() -> list[tuple[str, str]] | None:
    """``(name, compute capability)`` per CUDA device index from nvidia-smi, or None when that
    cannot be known reliably (no nvidia-smi, it failed, or the CUDA order cannot be mapped)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    rows = []
    for line in out.strip().splitlines():
        name, _, cc = line.rpartition(",")
        if not name:
            return None  # an old nvidia-smi without compute_cap prints an error instead
        rows.append((name.strip(), cc.strip()))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        parts = [p.strip() for p in visible.split(",") if p.strip()]
        if not all(_index(p) and int(p) < len(rows) for p in parts):
            return None  # UUIDs or MIG names: cannot map without NVML
        rows = [rows[int(p)] for p in parts]
    # nvidia-smi lists in PCI bus order; CUDA's default order is fastest first. They agree when
    # the GPUs are alike or CUDA_DEVICE_ORDER=PCI_BUS_ID; otherwise the mapping is unknown.
    if len({cc for _, cc in rows}) > 1 and os.environ.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID":
        return None
    return rows


def gpu_facts() -> tuple[bool, int, list[tuple[str, str]] | None]:
    """(CUDA build?, number of GPUs, capabilities) of this machine and MXNet install."""
    mx = require_mxnet()
    cuda = bool(mx.runtime.Features().is_enabled("CUDA"))
    if not cuda:
        return False, 0, None
    return True, int(mx.context.num_gpus()), gpu_capabilities()


def check_gpus(gpus: list[int]) -> None:
    """Raise :class:`BenchError` if ``gpus`` cannot be trained on here; no-op for CPU runs."""
    if not gpus:
        return
    cuda, count, caps = gpu_facts()
    problem = gpu_problem(gpus, cuda_enabled=cuda, num_gpus=count, capabilities=caps)
    if problem:
        raise BenchError(problem)


def choose_kvstore(requested: str, num_devices: int, *, on_gpu: bool | None = None) -> str | None:
    """The ``kvstore=`` argument for ``gluon.Trainer``, or None when no store is needed.

    One device on one machine needs no kvstore (Gluon would skip it anyway), so None is returned
    and the per-device updater is used. ``on_gpu`` (None = ask the MXNet build) decides whether
    ``nccl`` can work. ``horovod`` is returned as is: the engine then wraps the optimizer in
    ``horovod.mxnet.DistributedTrainer``, since ``mx.kv.create('horovod')`` in MXNet 1.9.1
    silently returns a local single-worker store. ``dist_*`` names are returned as is; the
    engine passes the kvstore object of the job it joined (:mod:`bench.engine.cluster`)."""
    check_choice("kvstore", requested, KVSTORES)
    if requested == "nccl":
        if on_gpu is None:
            features = require_mxnet().runtime.Features()
            on_gpu = features.is_enabled("CUDA") and features.is_enabled("NCCL")
        if not on_gpu:
            raise BenchError("kvstore nccl needs GPUs and an MXNet built with NCCL (the GPU "
                             f"wheel, `{GPU_INSTALL}`); on CPU use kvstore device or local")
    if requested == "horovod":
        from bench.engine.cluster import require_horovod
        require_horovod()
        return "horovod"
    if requested.startswith("dist"):
        return requested  # joining the job (bench.engine.cluster) checks the launch
    if num_devices <= 1:
        return None
    return requested


def split_batch(data, label, ctxs: list) -> tuple[list, list | None]:
    """Slice a batch along axis 0 over ``ctxs`` (``split_and_load`` with ``even_split=False``,
    so a batch that does not divide evenly still trains: 5 over 2 devices is 3 + 2).
    ``label`` may be None (inference); then the second item is None."""
    mx = require_mxnet()
    split = mx.gluon.utils.split_and_load
    xs = split(data, ctxs, batch_axis=0, even_split=False)
    ys = None if label is None else split(label, ctxs, batch_axis=0, even_split=False)
    return xs, ys
