"""Where a run came from: code version, libraries, hardware, command, date.

A number without this is not a result: the same recipe moves by tenths of a point between
library versions and evaluation pipelines, so every run directory records all of it.
"""
from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("resnet-bench", "mxnet", "mxnet-cu112", "gluoncv", "numpy", "opencv-python",
            "scikit-learn", "click", "tabulate")


def library_versions() -> dict[str, str]:
    """Installed versions of the packages a result depends on (absent ones are left out)."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_names() -> list[str]:
    """Names of the NVIDIA GPUs (empty without nvidia-smi)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def hardware() -> dict[str, object]:
    gpus = gpu_names()
    return {"cpu": cpu_model(), "cpu_cores": len(os.sched_getaffinity(0)),
            "gpus": gpus, "gpu_count": len(gpus), "platform": platform.platform()}


def git_state(path: Path | None = None) -> dict[str, object]:
    """Commit and whether the working tree had uncommitted changes (``None`` outside git)."""
    cwd = str(path or Path(__file__).resolve().parents[1])
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                                text=True, timeout=20, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=cwd, capture_output=True, text=True, timeout=20,
                                check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def command_line() -> str:
    argv = list(sys.argv)
    # `bench ...` and `python -m bench ...` (argv[0] .../bench/__main__.py) are one command
    if argv and argv[0].endswith(("/bench", "bench", "/bench/__main__.py")):
        argv[0] = "bench"
    return shlex.join(argv)


def now_utc() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def provenance() -> dict[str, object]:
    return {"command": command_line(), "date": now_utc(), "git": git_state(),
            "versions": library_versions(), "hardware": hardware()}
