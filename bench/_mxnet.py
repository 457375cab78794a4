"""Import MXNet once, with the thread setting that makes the CPU wheel use every core."""
from __future__ import annotations

import os
import sys
from typing import Mapping

from bench.errors import BenchError


def check_dmlc_role(environ: Mapping[str, str]) -> None:
    """Refuse a ``DMLC_ROLE`` that would make ``import mxnet`` run a parameter-server node.

    MXNet 1.9.1 treats a process whose ``DMLC_ROLE`` is set to anything but ``worker`` (even
    empty or misspelt) as a scheduler or server: importing it then serves until a job's
    workers finish (a hang) or, without the other ``DMLC_*`` variables, dies with a
    traceback from ps-lite. Only a launcher sets it, and only ``worker`` runs bench."""
    role = environ.get("DMLC_ROLE")
    if role is not None and role != "worker":
        raise BenchError(f"DMLC_ROLE={role!r} is set in the environment, and importing MXNet "
                         "with any DMLC_ROLE but 'worker' makes this process a parameter-server "
                         "scheduler or server instead of running bench: unset DMLC_ROLE (`bench "
                         "launch` sets it for the processes it starts)")


def require_mxnet():
    """Return the ``mxnet`` module, or raise :class:`BenchError` saying how to install it."""
    if "mxnet" not in sys.modules:  # once imported, the variable no longer matters
        check_dmlc_role(os.environ)
    # MXNet 1.9.1's CPU wheel otherwise ran like one thread on this 2-core machine (resnet50_v1d
    # inference 19-20 img/s vs 33-36 with 2 threads); it reads the variable at import.
    os.environ.setdefault("OMP_NUM_THREADS", str(len(os.sched_getaffinity(0))))
    first = "mxnet" not in sys.modules
    try:
        import mxnet
        if first:
            _enable_amx(mxnet)
    except ImportError:
        raise BenchError("MXNet is not installed: run `pip install -e '.[cpu]'` (CPU) or "
                         "`pip install -e '.[cu112]'` (CUDA 11.2 GPUs)") from None
    return mxnet


# What :func:`_enable_amx` did in this process, for speed reports: "on", or "off: <why>".
AMX_STATE = "off: MXNet not imported through bench"


def _request_amx_permission() -> bool:
    """Ask Linux for the AMX tile state (arch_prctl ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)."""
    import ctypes
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syscall(158, 0x1023, 18) == 0  # SYS_arch_prctl on x86-64
    except (OSError, AttributeError):
        return False


def _enable_amx(mxnet) -> None:
    """Let oneDNN use AMX for bf16 and int8 where the CPU has it (see bench.precision.amx_plan).

    The ISA variable is set only while oneDNN reads it (at its first primitive, the 1x1 conv
    below) and then removed, so that no child process inherits it without the permission."""
    global AMX_STATE
    import platform
    from bench import precision
    reason = precision.amx_plan(precision.cpu_flags(), dict(os.environ), platform.machine())
    if reason is None and not _request_amx_permission():
        reason = "Linux refused the AMX tile state (arch_prctl)"
    if reason is not None:
        AMX_STATE = f"off: {reason}"
        return
    os.environ[precision.ISA_VARIABLES[0]] = precision.AMX_ISA
    try:
        one = mxnet.nd.ones((1, 1, 1, 1))
        mxnet.nd.Convolution(one, one, kernel=(1, 1), num_filter=1, no_bias=True).wait_to_read()
    finally:
        del os.environ[precision.ISA_VARIABLES[0]]
    AMX_STATE = "on"
