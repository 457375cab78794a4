"""kvstore horovod: two processes under `horovodrun --gloo` train as one process on two devices.
Needs horovod.mxnet, which `make test` does not build (about 2 minutes): `make test-horovod`."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.test_distributed import COMMON, ROOT, _env, assert_trains_as_two_devices

pytest.importorskip("horovod.mxnet", reason="horovod is not installed: `make test-horovod`")


def test_two_horovod_processes_train_as_one_process_on_two_devices(tmp_path):
    horovodrun = Path(sys.executable).with_name("horovodrun")
    env = dict(_env(), PATH=f"{horovodrun.parent}{os.pathsep}{os.environ['PATH']}")
    job = subprocess.run([str(horovodrun), "-np", "2", "-H", "localhost:2", "--gloo",
                          sys.executable, "-m", "bench", *COMMON, "--kvstore", "horovod",
                          "--max-steps", "8", "--out", str(tmp_path / "hvd")],
                         capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert job.returncode == 0, job.stderr + job.stdout
    assert_trains_as_two_devices(tmp_path / "hvd", tmp_path)
