"""The training loop end to end on the embedded digits data and on synthetic data."""
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

from bench.engine.run import start_run
from bench.errors import BenchError
from bench.engine.runplan import RunOptions
from bench.recipes import load_recipe

ROOT = Path(__file__).resolve().parents[2]


def _options(tmp_path, **kw) -> RunOptions:
    return RunOptions(out=tmp_path / "runs", progress=False, loader_workers=0, **kw)


def _final_params(run_dir: Path) -> dict[str, np.ndarray]:
    """The parameters of a run's latest checkpoint, by name."""
    import mxnet as mx
    from bench.engine.checkpoint import latest_checkpoint
    ckpt = latest_checkpoint(run_dir)
    files = sorted(ckpt.glob("*.params")) if ckpt.is_dir() else [ckpt]
    loaded = mx.nd.load(str(files[0]))
    return {k: v.asnumpy() for k, v in loaded.items()}


def _bench(*args: str, timeout: float = 600, threads: int | None = None,
           **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
        env["MXNET_ENGINE_TYPE"] = "NaiveEngine"  # one engine thread: ops run in order
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=kw.get("cwd"))


def test_digits_recipe_reaches_98_percent(tmp_path):
    run_dir = start_run(load_recipe("digits_resnet"), _options(tmp_path))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["complete"] and metrics["num_eval_samples"] == 360
    assert metrics["top1_err"] <= 2.0, metrics["history"][-3:]
    events = [json.loads(line)["event"] for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert events[0] == "start" and events[-1] == "end" and "window" in events
    assert (run_dir / "recipe.json").is_file() and (run_dir / "run.json").is_file()


def test_resume_in_a_fresh_process_equals_a_straight_run(tmp_path):
    # 30 steps cross two epoch boundaries (11 batches of 128 per epoch); stop at 13. One
    # thread: under load MXNet's multi-threaded CPU kernels may sum in another order (3e-6).
    common = ["run", "recipe", "digits_resnet", "--no-progress", "--loader-workers", "0",
              "--set", "network_args.dropout=0.3"]  # randomness must replay too
    straight = _bench(*common, "--max-steps", "30", "--out", str(tmp_path / "a"), threads=1)
    assert straight.returncode == 0, straight.stderr
    half = _bench(*common, "--max-steps", "13", "--out", str(tmp_path / "b"), threads=1)
    assert half.returncode == 0, half.stderr
    run_b = next((tmp_path / "b" / "digits_resnet").iterdir())
    rest = _bench("run", "recipe", "--resume", str(run_b), "--max-steps", "30",
                  "--no-progress", "--loader-workers", "0", threads=1)
    assert rest.returncode == 0, rest.stderr
    run_a = next((tmp_path / "a" / "digits_resnet").iterdir())
    a, b = _final_params(run_a), _final_params(run_b)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-6, atol=1e-6, err_msg=name)
    lr = lambda run: [e["lr"] for e in map(json.loads, (run / "log.jsonl").read_text().splitlines())
                      if e["event"] == "window" and e["iteration"] == 30]
    assert lr(run_a) == lr(run_b) and lr(run_a)


def test_sigterm_checkpoints_exits_nonzero_and_resumes(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "bench", "run", "recipe", "digits_resnet",
                             "--no-progress", "--loader-workers", "0", "--out", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    log = None
    deadline = time.time() + 120
    while time.time() < deadline:
        logs = list(tmp_path.glob("digits_resnet/*/log.jsonl"))
        if logs and '"window"' in logs[0].read_text():
            log = logs[0]
            break
        time.sleep(0.2)
    assert log is not None, "training never logged a window"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: stopped by signal SIGTERM") and "Traceback" not in err
    assert "resume with: bench run recipe digits_resnet --resume" in last
    run_dir = log.parent
    stopped_at = [json.loads(l) for l in log.read_text().splitlines()][-1]
    assert stopped_at["event"] == "stop" and "SIGTERM" in stopped_at["reason"]
    done = _bench("run", "recipe", "--resume", str(run_dir), "--no-progress", "--loader-workers", "0",
                  "--max-steps", str(stopped_at["iteration"] + 3))
    assert done.returncode == 0, done.stderr
    events = [json.loads(l) for l in log.read_text().splitlines()]
    resumed = [e for e in events if e["event"] == "resume"]
    assert resumed and resumed[0]["iteration"] == stopped_at["iteration"]


def test_two_cpu_contexts_run_the_multi_device_path(tmp_path):
    run_dir = start_run(load_recipe("digits_resnet"),
                        _options(tmp_path, cpu_devices=2, max_steps=3, kvstore="device"))
    info = json.loads((run_dir / "run.json").read_text())
    # The recipe's batch of 128 on 1 device is kept: 2 x 64, at the recipe's lr.
    assert info["plan"]["devices"] == 2 and info["plan"]["per_device_batch"] == 64
    assert info["plan"]["global_batch"] == 128 and info["plan"]["lr"] == 0.2
    assert any("running its global batch 128 as 2 device(s) x 64" in c for c in info["changes"])
    assert json.loads((run_dir / "metrics.json").read_text())["iterations"] == 3


def test_resnet50_v1d_recipe_runs_on_synthetic_data(tmp_path):
    recipe = load_recipe("gluoncv_resnet50_v1d", ["data.dataset=synthetic",
                                                  "data.synthetic_size=8",
                                                  "data.input_size=64", "data.resize=72"])
    run_dir = start_run(recipe, _options(tmp_path, max_steps=2, batch_size=4))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["iterations"] == 2 and not metrics["complete"]
    assert metrics["num_eval_samples"] == 8


def test_a_run_that_cannot_write_its_first_files_leaves_no_run_directory(tmp_path, monkeypatch):
    from bench.engine import run as run_module
    real = run_module.atomic_write_text

    def full_disk(path, text):
        if path.name == "run.json":
            raise BenchError(f"cannot write {path}: no space left on the device (0 B free)")
        real(path, text)
    monkeypatch.setattr(run_module, "atomic_write_text", full_disk)
    with pytest.raises(BenchError, match="no space left"):
        start_run(load_recipe("digits_resnet"), _options(tmp_path, max_steps=1))
    runs = tmp_path / "runs" / "digits_resnet"
    assert not runs.exists() or not any(runs.iterdir())
