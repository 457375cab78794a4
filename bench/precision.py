"""Numeric precisions: the one vocabulary, the CPU features each needs, and the decision whether
this machine can run one.

float32 runs everywhere. float16 needs CUDA (MXNet 1.9.1's CPU kernels have no fp16
convolution). bfloat16 on CPU goes through oneDNN, whose bf16 kernels need AVX512_BF16 (or AMX
tiles); on a CPU without them oneDNN either refuses or emulates slowly, so the suite refuses in
one line rather than fall back in silence. int8 is post-training quantization through oneDNN;
VNNI (AVX512_VNNI, AVX_VNNI or AMX) makes it fast, and without it oneDNN's int8 is slower than
fp32, so it is refused too. ``amp`` is MXNet's automatic mixed precision on GPU (fp16 compute,
fp32 master weights), a training mode only.

Lower layers only: this module imports nothing from the rest of the suite but the error type.
"""
from __future__ import annotations

from pathlib import Path
from bench.errors import BenchError

# Precisions a network can be evaluated, timed or exported in.
PRECISIONS = ("float32", "float16", "bfloat16", "int8")
# Precisions a recipe can train in (train.dtype).
TRAIN_DTYPES = ("float32", "float16", "amp", "bfloat16")
# CPU flags (as /proc/cpuinfo spells them) that matter to these precisions, reported with every
# speed measurement.
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_tile",
             "amx_bf16", "amx_int8")
_NEEDS_ANY = {
    "bfloat16": ("avx512_bf16", "amx_bf16"),
    "int8": ("avx512_vnni", "avx_vnni", "amx_int8"),
}


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, bool]:
    """Which of :data:`CPU_FLAGS` this CPU has (all False where /proc/cpuinfo is unreadable)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    present: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            present.update(line.split(":", 1)[-1].split())
            break
    return {flag: flag in present for flag in CPU_FLAGS}


def unsupported(dtype: str, on_gpu: bool, flags: dict[str, bool],
                training: bool = False) -> str | None:
    """Why ``dtype`` cannot run here (one line for the user), or None when it can.

    A pure decision: the caller passes the device kind and the CPU flags, so every branch is
    tested without a GPU or a particular CPU."""
    choices = TRAIN_DTYPES if training else PRECISIONS
    if training and dtype == "int8":
        return "int8 is for inference (post-training quantization), not training"
    if dtype not in choices:
        return f"unknown precision {dtype!r}; choose from {', '.join(choices)}"
    if dtype == "float32":
        return None
    if dtype in ("float16", "amp"):
        return None if on_gpu else (f"{dtype} needs a GPU (MXNet's CPU kernels have no fp16 "
                                    "convolution): pass --gpus, or use bfloat16 on a CPU with "
                                    "AVX512_BF16")
    if on_gpu:
        return (f"{dtype} is a CPU path of this suite (oneDNN): run without --gpus, or use "
                "float16 on the GPU")
    needed = _NEEDS_ANY[dtype]
    if not any(flags.get(flag, False) for flag in needed):
        return (f"{dtype} needs a CPU with {' or '.join(needed)} (this one has none: oneDNN "
                "would emulate it slower than float32); use float32")
    return None


def require(dtype: str, on_gpu: bool, training: bool = False,
            flags: dict[str, bool] | None = None) -> None:
    """Raise :class:`BenchError` with :func:`unsupported`'s line unless ``dtype`` runs here."""
    reason = unsupported(dtype, on_gpu, cpu_flags() if flags is None else flags, training)
    if reason is not None:
        raise BenchError(reason)


def present(flags: dict[str, bool]) -> list[str]:
    """The flags this CPU has, in :data:`CPU_FLAGS` order (for reports)."""
    return [flag for flag in CPU_FLAGS if flags.get(flag)]


# oneDNN 2.4.4 (MXNet 1.9.1's) has AMX kernels for bf16 and int8 but does not dispatch them
# unless its maximum ISA is raised to AVX512_CORE_AMX, and Linux lets a process run AMX
# instructions only after it asked for the tile state (arch_prctl ARCH_REQ_XCOMP_PERM); the
# permission is dropped at exec, so a child that inherits the variable alone dies of SIGILL.
# Measured on this project's Xeon, a 256-channel 3x3 conv at 28x28, batch 16, 2 threads: fp32
# 161 GFLOP/s, bf16 105 without AMX and 480 with it.
AMX_ISA = "AVX512_CORE_AMX"
ISA_VARIABLES = ("DNNL_MAX_CPU_ISA", "ONEDNN_MAX_CPU_ISA")
AMX_SWITCH = "BENCH_AMX"  # "0" keeps oneDNN's default dispatch


def amx_plan(flags: dict[str, bool], environ: dict[str, str], machine: str) -> str | None:
    """Why the suite leaves AMX off in this process (None: turn it on). Pure, so every branch is
    tested on any CPU."""
    if machine not in ("x86_64", "AMD64"):
        return f"not an x86-64 CPU ({machine})"
    if not (flags.get("amx_tile") and (flags.get("amx_bf16") or flags.get("amx_int8"))):
        return "this CPU has no AMX"
    if environ.get(AMX_SWITCH, "1") == "0":
        return f"{AMX_SWITCH}=0"
    for name in ISA_VARIABLES:
        if name in environ:
            return f"{name}={environ[name]} is set by the user"
    return None
