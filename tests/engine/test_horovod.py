"""kvstore horovod: two processes under `horovodrun --gloo` train as one process on two devices.
Needs horovod.mxnet, which `make test` does not build (about 2 minutes): `make test-horovod`."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.test_distributed import COMMON, ROOT, _bench, _env, _learnable, _runs

pytest.importorskip("horovod.mxnet", reason="horovod is not installed: `make test-horovod`")


def test_two_horovod_processes_train_as_one_process_on_two_devices(tmp_path):
    horovodrun = Path(sys.executable).with_name("horovodrun")
    env = dict(_env(), PATH=f"{horovodrun.parent}{os.pathsep}{os.environ['PATH']}")
    job = subprocess.run([str(horovodrun), "-np", "2", "-H", "localhost:2", "--gloo",
                          sys.executable, "-m", "bench", *COMMON, "--kvstore", "horovod",
                          "--max-steps", "8", "--out", str(tmp_path / "hvd")],
                         capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert job.returncode == 0, job.stderr + job.stdout
    local = _bench(*COMMON, "--cpu-devices", "2", "--kvstore", "device", "--max-steps", "8",
                   "--out", str(tmp_path / "local"))
    assert local.returncode == 0, local.stderr
    [hvd_run], [local_run] = _runs(tmp_path / "hvd"), _runs(tmp_path / "local")  # rank 0 only
    a, b = _learnable(hvd_run), _learnable(local_run)
    assert a.keys() == b.keys()
    for name in a:
        assert abs(a[name] - b[name]).max() <= 1e-6 * max(abs(b[name]).max(), 1e-6), name
