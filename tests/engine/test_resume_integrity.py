"""A dry run writes nothing, a resume rewrites nothing (issue 10): refusals leave every file as
it was, one process trains in a run directory at a time, and a corrupt newest checkpoint makes
the resume fall back to the previous valid one, byte for byte as a straight run."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.engine import lock as run_lock
from bench.engine.checkpoint import PARAMS, STATE, STATES, list_checkpoints
from bench.engine.resume import check_name
from bench.errors import BenchError
from bench.recipes import load_recipe
from tests.cli import assert_one_line_error, invoke
from tests.engine.test_training import ROOT, _bench

QUICK = ("--no-progress", "--loader-workers", "0")
# One checkpoint per epoch (11 steps of 128 digits), so a stop at 13 leaves two: 11 and 13.
EVERY_EPOCH = ("--set", "train.checkpoint_every=1")


def _tree(run_dir: Path) -> dict[str, str]:
    """Every path under ``run_dir`` (directories too) with its content's sha256."""
    return {p.relative_to(run_dir).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest()
                                                if p.is_file() else "dir")
            for p in sorted(run_dir.rglob("*"))}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two small runs, made once: one stopped at --max-steps 13 (checkpoints at 11 and 13) and
    one complete (--epochs 1)."""
    out = tmp_path_factory.mktemp("runs")
    stopped = invoke("run", "recipe", "digits_resnet", *EVERY_EPOCH, "--max-steps", "13",
                     *QUICK, "--out", str(out / "stopped"))
    assert stopped.exit_code == 0, stopped.stderr
    complete = invoke("run", "recipe", "digits_resnet", "--epochs", "1", *QUICK,
                      "--out", str(out / "complete"))
    # One epoch of digits learns nothing yet (90 % error): the run is complete but exits with
    # the chance-level status; here only its completeness matters.
    from bench.engine.health import EXIT_CHANCE
    assert complete.exit_code == EXIT_CHANCE, complete.stderr
    return {name: next((out / name / "digits_resnet").iterdir())
            for name in ("stopped", "complete")}


@pytest.fixture
def stopped(runs, tmp_path) -> Path:
    """A private copy of the stopped run."""
    return Path(shutil.copytree(runs["stopped"], tmp_path / "run"))


@pytest.fixture
def complete(runs, tmp_path) -> Path:
    return Path(shutil.copytree(runs["complete"], tmp_path / "run"))


def _resume(run_dir: Path, *args: str, name: str | None = None):
    return invoke("run", "recipe", *([name] if name else []), "--resume", str(run_dir), *QUICK,
                  *args)


def _ckpt(run_dir: Path, iteration: int) -> Path:
    [path] = [p for p in list_checkpoints(run_dir) if p.name.endswith(f"-{iteration:08d}")]
    return path


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _rewrite_with_matching_checksum(ckpt: Path, fname: str, data: bytes) -> None:
    """Replace a checkpoint file and update its sha256 in state.json: corrupt content that the
    checksums cannot catch."""
    (ckpt / fname).write_bytes(data)
    state = json.loads((ckpt / STATE).read_text())
    state["files"][fname] = hashlib.sha256(data).hexdigest()
    (ckpt / STATE).write_text(json.dumps(state))


DAMAGE = {
    "sha256 mismatch": (lambda c: _flip_a_byte(c / PARAMS), "net.params sha256 mismatch"),
    "truncated": (lambda c: (c / STATES).write_bytes((c / STATES).read_bytes()[:50]),
                  "trainer.states sha256 mismatch"),
    "unreadable state": (lambda c: (c / STATE).write_text('{"epoch": 1, "iter'),
                         "state.json unreadable"),
    "params MXNet cannot load": (
        lambda c: _rewrite_with_matching_checksum(c, PARAMS, b"not an NDArray file" * 50),
        "net.params unreadable by MXNet"),
    "states that do not unpickle": (
        lambda c: _rewrite_with_matching_checksum(c, STATES, b"\x80\x04garbage"),
        "trainer.states unreadable"),
}


# --- --dry-run ------------------------------------------------------------------------------

def test_resume_dry_run_leaves_every_file_as_it_was(stopped):
    # With a corrupt newest checkpoint and a dead writer's leftovers, both of which a real
    # resume would act on (set the checkpoint aside, clean the leftovers up at its first save).
    _flip_a_byte(_ckpt(stopped, 13) / PARAMS)
    leftover = stopped / "checkpoints" / f".tmp-{_dead_pid()}-ckpt-0002-00000022"
    leftover.mkdir()
    (leftover / PARAMS).write_bytes(b"half")
    before = _tree(stopped)
    result = _resume(stopped, "--dry-run")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert ("skipping checkpoint ckpt-0001-00000013: it is corrupt (net.params sha256 "
            "mismatch) (a resume sets it aside)") in out
    assert (f"would resume {stopped} from ckpt-0001-00000011: iteration 11 of 440 (epoch 2 of "
            "40, 0 of its 11 batches done)") in out
    assert "would train 429 more step(s), to iteration 440 (the end of the schedule)" in out
    assert "40 epochs x 11 iterations = 440 iterations" in out  # the plan
    limited = _resume(stopped, "--dry-run", "--max-steps", "20")
    assert "would train 9 more step(s), to iteration 20 (--max-steps)" in limited.stdout
    assert _tree(stopped) == before


def test_fresh_dry_run_makes_no_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("run", "recipe", "digits_resnet", "--dry-run", "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.stderr
    assert list(tmp_path.iterdir()) == []


# --- refusals -------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [(), ("--max-steps", "500"), ("--dry-run",)])
def test_resuming_a_complete_run_refuses_and_changes_nothing(complete, args):
    before = _tree(complete)
    assert json.loads((complete / "result.json").read_text())["complete"] is True
    assert_one_line_error(_resume(complete, *args), f"{complete} is complete (11 iterations)",
                          f"its result is {complete / 'result.json'}")
    assert _tree(complete) == before


@pytest.mark.parametrize("steps", ["13", "5"])
def test_max_steps_not_above_the_steps_done_refuses(stopped, steps):
    before = _tree(stopped)
    assert_one_line_error(_resume(stopped, "--max-steps", steps),
                          f"--max-steps {steps} is not above the 13 steps",
                          "checkpoint ckpt-0001-00000013")
    assert _tree(stopped) == before


@pytest.mark.parametrize("name, shown", [
    ("he2015_cifar10_resnet20", "not he2015_cifar10_resnet20: drop the name"),
    ("resnet50_v1d", "not resnet50_v1d (resnet50_v1d -> recipe gluoncv_resnet50_v1d_mixup)"),
    ("no_such_recipe", "not no_such_recipe: drop the name"),
])
def test_another_recipe_name_refuses(stopped, name, shown):
    before = _tree(stopped)
    assert_one_line_error(_resume(stopped, name=name), "is a run of recipe digits_resnet", shown)
    assert _tree(stopped) == before


def test_the_run_s_own_name_or_file_is_accepted(stopped):
    for name in ("digits_resnet", str(ROOT / "recipes" / "digits_resnet.toml")):
        result = _resume(stopped, "--dry-run", name=name)
        assert result.exit_code == 0, result.stderr


def test_a_network_whose_default_recipe_is_the_run_s_is_accepted(tmp_path):
    recipe = load_recipe("gluoncv_cifar_resnet20_v1_mixup")
    assert recipe.network == "cifar_resnet20_v1" and recipe.default_for_network
    check_name(tmp_path, recipe, "cifar_resnet20_v1")  # no error
    with pytest.raises(BenchError, match="not cifar_resnet20_v1 "):
        check_name(tmp_path, load_recipe("he2015_cifar10_resnet20"), "cifar_resnet20_v1")


# --- the lock -------------------------------------------------------------------------------

def test_a_second_resume_refuses_naming_the_first_one_s_pid(stopped):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    first = subprocess.Popen([sys.executable, "-m", "bench", "run", "recipe", "--resume",
                              str(stopped), *QUICK],  # to the end of the schedule: 427 steps
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline, log = time.time() + 120, stopped / "log.jsonl"
        while time.time() < deadline and first.poll() is None:
            if '"resume"' in log.read_text():  # it is training
                break
            time.sleep(0.05)
        held = run_lock.holder(stopped)
        assert held is not None, "the first resume never started training"
        assert (held.pid, held.host) == (first.pid, socket.gethostname())
        second = _resume(stopped, "--max-steps", "400")
        assert_one_line_error(second, f"{stopped} is in use by pid {first.pid} on ",
                              f"kill -TERM {first.pid}")
        assert_one_line_error(_resume(stopped, "--dry-run"), f"pid {first.pid}")
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert not (stopped / run_lock.LOCK_FILE).exists() and run_lock.holder(stopped) is None
    events = [json.loads(line)["event"] for line in log.read_text().splitlines()]
    assert events.count("resume") == 1  # the second one never wrote to the log


def test_a_stale_lock_of_a_dead_process_is_taken_over(stopped):
    dead = _dead_pid()
    (stopped / run_lock.LOCK_FILE).write_text(json.dumps(
        {"pid": dead, "host": socket.gethostname(), "since": "then"}))
    result = _resume(stopped, "--max-steps", "14")
    assert result.exit_code == 0, result.stderr
    assert (f"taking over the lock of {stopped} left by pid {dead} on {socket.gethostname()} "
            "(since then), which no longer holds it") in result.stderr
    assert not (stopped / run_lock.LOCK_FILE).exists()
    assert json.loads((stopped / "metrics.json").read_text())["iterations"] == 14


def test_lock_excludes_a_second_holder_and_is_removed_on_release(tmp_path):
    with run_lock.acquire(tmp_path) as held:
        info = json.loads((tmp_path / "lock").read_text())
        assert (info["pid"], info["host"]) == (os.getpid(), socket.gethostname())
        assert run_lock.holder(tmp_path).pid == os.getpid()
        with pytest.raises(BenchError, match=f"in use by pid {os.getpid()} on "):
            run_lock.acquire(tmp_path)  # another open file description: flock excludes it
        assert held.path.exists()
    assert not (tmp_path / "lock").exists() and run_lock.holder(tmp_path) is None


def test_lock_is_released_when_the_holder_dies(tmp_path):
    # kill -9 of the holder: the kernel drops its flock; its file is left and taken over.
    code = ("import sys, time; from bench.engine.lock import acquire; "
            f"acquire({str(tmp_path)!r}); print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(BenchError, match=f"pid {proc.pid}"):
            run_lock.acquire(tmp_path)
    finally:
        proc.kill()
        proc.communicate()
    lines = []
    with run_lock.acquire(tmp_path, lines.append):
        pass
    assert len(lines) == 1 and f"left by pid {proc.pid}" in lines[0]


def test_without_flock_the_pid_decides(tmp_path, monkeypatch):
    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(run_lock.fcntl, "flock", no_flock)
    with run_lock.acquire(tmp_path):
        with pytest.raises(BenchError, match=f"in use by pid {os.getpid()}"):
            run_lock.acquire(tmp_path)  # a live pid on this host holds it
    dead = _dead_pid()
    (tmp_path / "lock").write_text(json.dumps({"pid": dead, "host": socket.gethostname()}))
    lines = []
    with run_lock.acquire(tmp_path, lines.append):
        assert json.loads((tmp_path / "lock").read_text())["pid"] == os.getpid()
    assert len(lines) == 1 and f"pid {dead}" in lines[0] and "no longer runs" in lines[0]
    (tmp_path / "lock").write_text(json.dumps({"pid": 1, "host": "elsewhere"}))
    with pytest.raises(BenchError, match="in use by pid 1 on elsewhere"):
        run_lock.acquire(tmp_path)  # another host's pid cannot be checked from here


# --- a corrupt newest checkpoint ------------------------------------------------------------

@pytest.mark.parametrize("kind", DAMAGE)
def test_each_kind_of_damage_is_skipped_with_its_reason(stopped, kind):
    damage, why = DAMAGE[kind]
    damage(_ckpt(stopped, 13))
    result = _resume(stopped, "--dry-run")  # the resume's own checks, without training
    assert result.exit_code == 0, result.stderr
    skips = [line for line in result.stdout.splitlines() if line.startswith("skipping")]
    assert len(skips) == 1 and skips[0].startswith("skipping checkpoint ckpt-0001-00000013: it ")
    assert why in skips[0], skips[0]
    assert f"would resume {stopped} from ckpt-0001-00000011" in result.stdout


def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous_one(stopped):
    DAMAGE["states that do not unpickle"][0](_ckpt(stopped, 13))
    result = _resume(stopped, "--max-steps", "14")
    assert result.exit_code == 0, result.stderr
    skips = [line for line in result.stderr.splitlines() if line.startswith("skipping")]
    assert len(skips) == 1, skips
    assert skips[0].startswith("skipping checkpoint ckpt-0001-00000013: it is corrupt "
                               "(trainer.states unreadable: pickle data was truncated)")
    assert skips[0].endswith("; set aside as checkpoints/skipped-ckpt-0001-00000013")
    assert f"resuming {stopped} from ckpt-0001-00000011: iteration 11" in result.stderr
    # Set aside (kept to look at), out of the run's checkpoints: 11 and the new one at 14.
    assert (stopped / "checkpoints" / "skipped-ckpt-0001-00000013").is_dir()
    assert [p.name for p in list_checkpoints(stopped)] == ["ckpt-0001-00000011",
                                                           "ckpt-0001-00000014"]
    resumed = [json.loads(line) for line in (stopped / "log.jsonl").read_text().splitlines()
               if '"resume"' in line]
    assert resumed[-1]["iteration"] == 11
    assert resumed[-1]["skipped"][0]["checkpoint"] == "ckpt-0001-00000013"
    assert json.loads((stopped / "metrics.json").read_text())["iterations"] == 14


def test_no_valid_checkpoint_is_one_line_and_changes_nothing(stopped):
    _flip_a_byte(_ckpt(stopped, 13) / PARAMS)
    (_ckpt(stopped, 11) / STATES).unlink()
    before = _tree(stopped)
    assert_one_line_error(_resume(stopped), "none of its 2 checkpoint(s) is valid",
                          "ckpt-0001-00000013 is corrupt (net.params sha256 mismatch)",
                          "ckpt-0001-00000011 is corrupt (trainer.states missing)")
    assert _tree(stopped) == before


def test_fallback_resume_is_byte_identical_to_a_straight_run(tmp_path):
    # NaiveEngine, one thread (as the other resume tests): the straight run's 30 steps against
    # 13 steps, the newest checkpoint (13) broken with matching checksums, and a resume that
    # must fall back to 11 and replay steps 12-30 exactly. Dropout: the randomness replays too.
    common = ("run", "recipe", "digits_resnet", *QUICK, *EVERY_EPOCH,
              "--set", "network_args.dropout=0.3")
    straight = _bench(*common, "--max-steps", "30", "--out", str(tmp_path / "a"), threads=1)
    assert straight.returncode == 0, straight.stderr
    half = _bench(*common, "--max-steps", "13", "--out", str(tmp_path / "b"), threads=1)
    assert half.returncode == 0, half.stderr
    run_a, run_b = (next((tmp_path / x / "digits_resnet").iterdir()) for x in "ab")
    DAMAGE["params MXNet cannot load"][0](_ckpt(run_b, 13))
    rest = _bench("run", "recipe", "--resume", str(run_b), "--max-steps", "30", *QUICK,
                  threads=1)
    assert rest.returncode == 0, rest.stderr
    assert "skipping checkpoint ckpt-0001-00000013" in rest.stderr
    a, b = _ckpt(run_a, 30), _ckpt(run_b, 30)
    for fname in (PARAMS, STATES):
        assert _sha(a / fname) == _sha(b / fname), fname
