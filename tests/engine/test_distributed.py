"""Multi-worker training with kvstore dist_sync: `bench launch` starts a scheduler, a server and
two workers on loopback (MXNet's parameter server, as on several machines, minus the network)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMON = ("run", "recipe", "digits_resnet", "--no-progress", "--loader-workers", "0")


def _env(threads: bool = True) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if threads:  # one thread, ops in order: the two runs must sum in the same order
        env.update(OMP_NUM_THREADS="1", MXNET_ENGINE_TYPE="NaiveEngine")
    return env


def _bench(*args: str, timeout: float = 300, threads: bool = True
           ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True,
                          text=True, timeout=timeout, env=_env(threads))


def _learnable(run_dir: Path) -> dict[str, np.ndarray]:
    import mxnet as mx
    from bench.engine.checkpoint import latest_checkpoint
    loaded = mx.nd.load(str(latest_checkpoint(run_dir) / "net.params"))
    return {k: v.asnumpy() for k, v in loaded.items() if "running_" not in k}


def _runs(out: Path) -> list[Path]:
    return sorted((out / "digits_resnet").iterdir())


def assert_trains_as_two_devices(job_out: Path, tmp_path: Path, steps: int = 8,
                                 extra: tuple[str, ...] = ()) -> Path:
    """The job in ``job_out`` (``steps`` steps, two workers, ``extra`` arguments) left exactly
    the learnable weights of one process on two CPU contexts; returns the job's (rank 0's only)
    run directory."""
    local = _bench(*COMMON, *extra, "--cpu-devices", "2", "--kvstore", "device", "--max-steps",
                   str(steps), "--out", str(tmp_path / "local"))
    assert local.returncode == 0, local.stderr
    [job_run], [local_run] = _runs(job_out), _runs(tmp_path / "local")
    a, b = _learnable(job_run), _learnable(local_run)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-6, atol=1e-7, err_msg=name)
    return job_run


def test_two_workers_train_as_one_process_on_two_devices(tmp_path):
    # Each worker's BN sees its half of the batch, as each device's does: the learnable
    # weights must agree exactly (the workers' running statistics are rank 0's alone).
    # As if the recipe were for 4 devices x 32: its batch of 128 on the job's 2 workers puts 64
    # on each, so the workers check the memory and agree on it before the first step.
    four = ("--set", "train.devices=4")
    dist = _bench("launch", "--workers", "2", "--", *COMMON, *four, "--kvstore", "dist_sync",
                  "--max-steps", "8", "--out", str(tmp_path / "dist"))
    assert dist.returncode == 0, dist.stderr
    dist_run = assert_trains_as_two_devices(tmp_path / "dist", tmp_path, extra=four)
    info = json.loads((dist_run / "run.json").read_text())
    assert info["plan"]["global_batch"] == 128 and info["plan"]["devices"] == 2
    assert info["plan"]["lr"] == pytest.approx(0.2)  # the recipe's batch kept: lr as is
    assert any("running its global batch 128 as 2 device(s) x 64" in c
               and "(the smallest of the 2 workers')" in c for c in info["changes"])
    metrics = json.loads((dist_run / "metrics.json").read_text())
    assert metrics["iterations"] == 8 and metrics["num_eval_samples"] == 360
    assert info["workers"] == metrics["workers"] == 2
    assert dist.stdout.count("run directory:") == 1  # one report, from rank 0


def test_sigterm_stops_every_worker_at_one_step_and_the_job_resumes(tmp_path):
    out = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "bench", "launch", "-n", "2", "--", *COMMON,
                             "--kvstore", "dist_sync", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(threads=False))
    try:
        deadline, log = time.time() + 180, None
        while time.time() < deadline and log is None and proc.poll() is None:
            logs = list(out.glob("digits_resnet/*/log.jsonl"))
            if logs and '"window"' in logs[0].read_text():
                log = logs[0]
            time.sleep(0.2)
        assert log is not None, "the job never logged a window"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:  # a failed assertion must not leave the job running into the next test
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and "resume with: bench run recipe digits_resnet" in err
    stop = json.loads(log.read_text().splitlines()[-1])
    assert stop["event"] == "stop"
    done = _bench("launch", "-n", "2", "--", "run", "recipe", "--resume", str(log.parent),
                  "--no-progress", "--loader-workers", "0", "--max-steps", str(stop["iteration"] + 4))
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in log.read_text().splitlines()]
    resumed = [e for e in events if e["event"] == "resume"]
    assert resumed and resumed[0]["iteration"] == stop["iteration"]
    assert json.loads((log.parent / "metrics.json").read_text())["iterations"] == \
        stop["iteration"] + 4


def test_a_killed_worker_is_named_and_the_job_ends_within_seconds(tmp_path):
    # Once worker 1 is gone, worker 0 waits in its next kvstore exchange forever (and cannot
    # run its SIGTERM handler there): the launcher must name the dead one and kill the rest.
    import re
    import threading
    out = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "bench", "launch", "-n", "2", "--", *COMMON,
                             "--kvstore", "dist_sync", "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=_env(threads=False))
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(iter(proc.stderr.readline, "")),
                              daemon=True)
    reader.start()
    pids: dict[str, int] = {}
    try:
        deadline = time.time() + 180
        while time.time() < deadline and proc.poll() is None:
            if not pids and err:
                pids = {name: int(pid) for name, pid in
                        re.findall(r"(scheduler|server \d+|worker \d+) \(pid (\d+)\)", err[0])}
            logs = list(out.glob("digits_resnet/*/log.jsonl"))
            if pids and logs and '"window"' in logs[0].read_text():
                break
            time.sleep(0.2)
        assert set(pids) == {"scheduler", "server 0", "worker 0", "worker 1"}, err
        assert proc.poll() is None, err
        os.kill(pids["worker 1"], signal.SIGKILL)
        killed = time.time()
        proc.wait(timeout=60)
        ended = time.time() - killed
        reader.join(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in pids.values():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.stderr.close()
    assert proc.returncode == 128 + signal.SIGKILL
    assert ended < 10, ended  # 1 s for the others to end by themselves, 2 s after SIGTERM
    named = [line.strip() for line in err if line.startswith("bench launch: worker")]
    assert named == [f"bench launch: worker 1 (pid {pids['worker 1']}) was killed by SIGKILL; "
                     "ending the job"]
    assert "Traceback" not in "".join(err)
    for pid in pids.values():  # reaped by the launcher: no such process any more
        assert not Path(f"/proc/{pid}").exists()


def test_dist_kvstore_without_a_launch_is_one_line(tmp_path):
    result = _bench(*COMMON, "--kvstore", "dist_sync", "--max-steps", "1",
                    "--out", str(tmp_path), threads=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: kvstore dist_sync")
    assert "bench launch" in result.stderr and not tmp_path.joinpath("digits_resnet").exists()


def test_a_launched_worker_must_use_a_dist_kvstore(tmp_path):
    result = _bench("launch", "-n", "2", "--", *COMMON, "--max-steps", "1", "--out",
                    str(tmp_path), timeout=120, threads=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "add --kvstore dist_sync" in result.stderr
    assert not tmp_path.joinpath("digits_resnet").exists()


def test_a_failing_worker_ends_the_job_quickly(tmp_path):
    start = time.time()
    result = _bench("launch", "-n", "2", "--", "run", "recipe", "no_such_recipe",
                    "--kvstore", "dist_sync", timeout=120, threads=False)
    assert result.returncode == 2 and "unknown recipe or network 'no_such_recipe'" in result.stderr
    assert time.time() - start < 60


def test_a_second_signal_kills_workers_that_do_not_stop(tmp_path, monkeypatch):
    # Workers that ignore SIGTERM, as a job blocked on a dead peer would: the first signal is
    # passed on, the second kills them, and the launcher returns at once.
    import threading
    from bench.engine import launch
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\ncase \"$*\" in *'import mxnet'*) exec sleep 60;; esac\n"
                    "trap '' TERM\nsleep 60\n")
    fake.chmod(0o755)
    monkeypatch.setattr(launch.sys, "executable", str(fake))
    monkeypatch.setattr(launch, "SHUTDOWN_S", 1.0)

    def signal_twice():
        for _ in range(2):
            time.sleep(1.0)
            os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=signal_twice, daemon=True).start()
    start = time.time()
    status = launch.launch(["run", "recipe", "digits_resnet"], workers=2)
    assert status == 128 + signal.SIGKILL and time.time() - start < 20


def test_a_diverging_job_stops_every_worker_with_one_line_each(tmp_path):
    result = _bench("launch", "-n", "2", "--", *COMMON, "--kvstore", "dist_sync",
                    "--set", "optim.lr=1e12", "--out", str(tmp_path), timeout=180, threads=False)
    assert result.returncode == 3 and "Traceback" not in result.stderr  # EXIT_DIVERGED
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2 and all("training loss became nan" in e for e in errors)


def test_a_job_whose_parameters_go_non_finite_stops_every_worker_at_the_same_step(tmp_path):
    # No loss bound: the BatchNorm statistics, which differ per worker, overflow first; the
    # job's count of non-finite groups is summed, so both workers stop at one iteration.
    result = _bench("launch", "-n", "2", "--", *COMMON, "--kvstore", "dist_sync",
                    "--set", "optim.lr=100", "--set", "train.divergence_factor=0",
                    "--max-steps", "80", "--out", str(tmp_path), timeout=180, threads=False)
    assert result.returncode == 3 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2 and all("non-finite" in e for e in errors), errors
    assert len({e.split("(lr")[0].split("by iteration")[1] for e in errors}) == 1, errors
