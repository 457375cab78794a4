"""`bench launch` watches every process of its job: a busy port, a dead worker, scheduler or
server, and a killed launcher each end the job within seconds, named in one line, with nothing
left behind.

Most jobs here run stand-ins for MXNet's processes (plain Python, no MXNet import: they start
in milliseconds): a "worker" that ignores SIGTERM and sleeps, as a dist_sync worker blocked in a
kvstore exchange on a dead peer does, and a "scheduler"/"server" that sleeps until killed. The
real-MXNet cases (a scheduler that cannot bind; a real job whose worker is killed) are here and
in tests/engine/test_distributed.py."""
from __future__ import annotations

import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench.errors import BenchError

ROOT = Path(__file__).resolve().parents[2]
PROCESS = re.compile(r"(scheduler|server \d+|worker \d+) \(pid (\d+)\)")

# A worker blocked in a kvstore exchange: deaf to SIGTERM (bench's handler only asks for a
# checkpoint at the next step, which never comes). It says it is ready once the handler is set.
BLOCKED_WORKER = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
if "--grandchild" in sys.argv:  # something the worker started: it must die with its group
    child = subprocess.Popen(["sleep", "600"])
    os.write(1, b"grandchild %d\\n" % child.pid)
os.write(1, b"ready %d\\n" % os.getpid())  # one write: the workers share the pipe
time.sleep(600)
"""
SERVING_HELPER = "import time; time.sleep(600)"

# Runs bench.engine.launch.launch with stand-in commands (what `bench launch` runs, minus the
# click layer, which only parses the options).
DRIVER = """
import json, sys
from bench.engine import launch
config = json.loads(sys.argv[1])
launch.HELPER_COMMAND = ("-c", config["helper"]) if config["helper"] else launch.HELPER_COMMAND
launch.WORKER_COMMAND = ("-c", config["worker"])
for name, value in config["constants"].items():
    setattr(launch, name, value)
if config["no_port_check"]:  # as if another process took the port right after the check
    launch.check_port = lambda port: None
sys.exit(launch.launch(config["args"], config["workers"], port=config["port"]))
"""


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT))


class Job:
    """A launcher in a subprocess, its output collected by threads (never a blocking read)."""

    def __init__(self, worker: str = BLOCKED_WORKER, helper: str | None = SERVING_HELPER,
                 args: tuple[str, ...] = ("x",), workers: int = 2, port: int | None = None,
                 no_port_check: bool = False, **constants: float):
        config = dict(worker=worker, helper=helper, args=list(args), workers=workers, port=port,
                      no_port_check=no_port_check, constants=constants)
        self.proc = subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps(config)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=_env())
        self.out: list[str] = []
        self.err: list[str] = []
        self.readers = [threading.Thread(target=lambda s=stream, ls=lines:
                                         ls.extend(iter(s.readline, "")), daemon=True)
                        for stream, lines in ((self.proc.stdout, self.out),
                                              (self.proc.stderr, self.err))]
        for reader in self.readers:
            reader.start()
        self.pids: dict[str, int] = {}
        self.seen: set[int] = set()

    def wait_for(self, predicate, timeout: float = 30.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.err}"
            time.sleep(0.05)

    def started(self, ready: int = 2) -> dict[str, int]:
        """The pids the start line names, once ``ready`` workers said they are ready."""
        self.wait_for(lambda: any(PROCESS.search(line) for line in self.err), what="start line")
        line = next(line for line in self.err if PROCESS.search(line))
        self.pids = {name: int(pid) for name, pid in PROCESS.findall(line)}
        self.wait_for(lambda: sum(line.startswith("ready") for line in self.out) >= ready,
                      what="the workers")
        self.seen = set(self.pids.values()) | set(descendants(self.proc.pid))
        return self.pids

    def finish(self, timeout: float = 30.0) -> int:
        self.proc.wait(timeout=timeout)
        for reader in self.readers:  # the last lines (a survivor holding the pipe: 2 s)
            reader.join(timeout=2)
        return self.proc.returncode

    def ending_lines(self) -> list[str]:
        return [line.strip() for line in self.err if line.rstrip().endswith("ending the job")]

    def cleanup(self) -> None:
        """After a failed assertion: nothing of this job may outlive the test."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pid in self.seen:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        for reader in self.readers:
            reader.join(timeout=2)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def jobs():
    started: list[Job] = []

    def make(**kwargs) -> Job:
        started.append(Job(**kwargs))
        return started[-1]

    yield make
    for job in started:
        job.cleanup()


def descendants(root: int) -> list[int]:
    """Every process below ``root``, from /proc's parent pids."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def alive(pid: int) -> bool:
    """Running (a zombie has died; only its exit status waits for a parent to collect it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pids, timeout: float = 5.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if alive(p)]
        if not left:
            return []
        time.sleep(0.05)
    return left


@pytest.fixture
def held_port():
    """A port another process listens on (127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


# --- the port ---------------------------------------------------------------------------------

def test_a_busy_port_is_refused_before_anything_starts(held_port, tmp_path):
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "bench", "launch", "--port", str(held_port),
                             "--", "run", "recipe", "digits_resnet", "--kvstore", "dist_sync",
                             "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=60, env=_env())
    assert time.monotonic() - start < 20
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: port {held_port} on 127.0.0.1 is in use: choose another --port, or leave "
        "--port out to use a free one"]
    assert not list(tmp_path.iterdir())


def test_a_port_left_in_time_wait_is_not_busy():
    # ZeroMQ binds with SO_REUSEADDR, so a port an earlier job closed is free for the next
    # scheduler even while the kernel keeps it in TIME_WAIT; a plain bind would refuse it.
    from bench.engine.launch import check_port
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as ZeroMQ's
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        accepted.close()  # the listening side closes first: its end waits in TIME_WAIT
        time.sleep(0.05)
        client.close()
    with socket.socket() as plain, pytest.raises(OSError) as refused:
        plain.bind(("127.0.0.1", port))
    assert refused.value.errno == errno.EADDRINUSE
    check_port(port)  # no error


def test_a_scheduler_that_cannot_bind_ends_the_job(jobs, held_port):
    # The race the check cannot close: the port is taken after it. The real scheduler (MXNet)
    # dies with a ps-lite traceback; the job ends with one line quoting its last line.
    job = jobs(helper=None, port=held_port, no_port_check=True, FAIL_GRACE_S=0.2,
               KILL_GRACE_S=0.5)
    start = time.monotonic()
    assert job.finish(timeout=90) == 1
    assert time.monotonic() - start < 60  # a few seconds, most of them MXNet's import
    [line] = job.ending_lines()
    scheduler = int(re.search(r"scheduler \(pid (\d+)\)", job.err[0])[1])
    assert line.startswith(f"bench launch: scheduler (pid {scheduler}) exited with status 1 (")
    assert "bind failed" in line and f"port {held_port} is probably in use" in line
    assert "Traceback" not in "".join(job.err)


# --- dead processes ---------------------------------------------------------------------------

def test_a_killed_worker_is_named_and_the_job_ends_within_seconds(jobs):
    job = jobs(args=("--grandchild",))
    pids = job.started()
    grandchildren = [int(line.split()[1]) for line in job.out if line.startswith("grandchild")]
    assert len(grandchildren) == 2 and all(alive(p) for p in job.seen)
    killed = time.monotonic()
    os.kill(pids["worker 1"], signal.SIGKILL)
    assert job.finish() == 128 + signal.SIGKILL
    # The other worker ignores SIGTERM: 1 s to end by itself, 2 s after SIGTERM, then SIGKILL.
    assert time.monotonic() - killed < 8
    assert job.ending_lines() == [f"bench launch: worker 1 (pid {pids['worker 1']}) was killed "
                                  "by SIGKILL; ending the job"]
    assert wait_gone(job.seen | set(grandchildren), timeout=2) == []


def test_a_killed_scheduler_ends_the_job(jobs):
    job = jobs(FAIL_GRACE_S=0.2, KILL_GRACE_S=0.5)
    pids = job.started()
    killed = time.monotonic()
    os.kill(pids["scheduler"], signal.SIGKILL)
    assert job.finish() == 128 + signal.SIGKILL
    assert time.monotonic() - killed < 5
    assert job.ending_lines() == [f"bench launch: scheduler (pid {pids['scheduler']}) was "
                                  "killed by SIGKILL; ending the job"]
    assert wait_gone(job.seen, timeout=2) == []


def test_a_failing_worker_is_named_with_its_status(jobs):
    job = jobs(worker="import os, sys; os.write(1, b'ready\\n'); sys.exit(3)")
    assert job.finish() == 3
    [line] = job.ending_lines()
    name, pid = PROCESS.search(line).groups()
    assert name.startswith("worker ") and line == f"bench launch: {name} (pid {pid}) exited " \
        "with status 3; ending the job"


def test_a_server_that_ends_while_workers_run_ends_the_job(jobs):
    # Exit 0 is how a scheduler or server ends after the workers' last barrier, so the workers
    # get HELPER_DONE_S to follow; workers that keep running after it mean the job is broken.
    helper = "import os, sys, time; os.environ['DMLC_ROLE'] == 'server' and sys.exit(0); " \
             "time.sleep(600)"
    job = jobs(helper=helper, HELPER_DONE_S=0.5, FAIL_GRACE_S=0.2, KILL_GRACE_S=0.5)
    pids = job.started()
    assert job.finish() == 1
    assert job.ending_lines() == [
        f"bench launch: server 0 (pid {pids['server 0']}) exited with status 0 while worker 0 "
        f"(pid {pids['worker 0']}), worker 1 (pid {pids['worker 1']}) still ran; ending the job"]
    assert wait_gone(job.seen, timeout=2) == []


def test_a_job_whose_workers_succeed_exits_0_and_stops_the_servers(jobs):
    job = jobs(worker="import os; os.write(1, b'ready\\n')", SHUTDOWN_S=0.2)
    pids = job.started()
    assert job.finish() == 0
    assert job.ending_lines() == []
    assert wait_gone(pids.values(), timeout=2) == []


# --- signals ----------------------------------------------------------------------------------

def test_a_killed_launcher_leaves_no_process_behind(jobs):
    job = jobs()
    job.started()
    assert len(job.seen) == 4 and all(alive(p) for p in job.seen)  # scheduler, server, workers
    killed = time.monotonic()
    job.proc.kill()
    job.proc.wait(timeout=10)
    assert wait_gone(job.seen, timeout=5) == []
    assert time.monotonic() - killed < 5


def test_a_signalled_stop_is_waited_for(jobs, tmp_path):
    # After SIGTERM the workers checkpoint and exit 128 + 15, one after the other: the first
    # to exit must not get the others killed while they still write.
    worker = f"""
import os, signal, sys, time
def stop(signum, frame):
    try:
        os.open({str(tmp_path / 'first')!r}, os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        time.sleep(1.5)  # the slower one: longer than FAIL_GRACE_S + KILL_GRACE_S
        open({str(tmp_path / 'saved')!r}, 'w').close()
    sys.exit(128 + signum)
signal.signal(signal.SIGTERM, stop)
os.write(1, b"ready\\n")
time.sleep(600)
"""
    job = jobs(worker=worker, FAIL_GRACE_S=0.2, KILL_GRACE_S=0.5)
    job.started()
    job.proc.send_signal(signal.SIGTERM)
    assert job.finish() == 128 + signal.SIGTERM
    assert (tmp_path / "saved").exists() and job.ending_lines() == []
    assert any("SIGTERM passed to the workers" in line for line in job.err)


# --- the environment --------------------------------------------------------------------------

def test_the_job_environment_replaces_inherited_dmlc_variables():
    from bench.engine.launch import job_env
    env = job_env(3, 2, 4321, base={"DMLC_ROLE": "server", "DMLC_INTERFACE": "eth7",
                                    "DMLC_NUM_WORKER": "9", "PATH": "/bin"})
    assert {k: v for k, v in env.items() if k.startswith("DMLC_")} == {
        "DMLC_PS_ROOT_URI": "127.0.0.1", "DMLC_PS_ROOT_PORT": "4321", "DMLC_NUM_WORKER": "3",
        "DMLC_NUM_SERVER": "2", "DMLC_NODE_HOST": "127.0.0.1"}
    assert env["PATH"] == "/bin"


@pytest.mark.parametrize("role", ["scheduler", "server", "", "garbage"])
def test_a_stray_dmlc_role_other_than_worker_is_refused(role):
    # MXNet (include/mxnet/kvstore.h, IsWorkerNode) runs every process whose DMLC_ROLE is set
    # to anything but "worker" as a scheduler or server when it is imported.
    from bench._mxnet import check_dmlc_role
    with pytest.raises(BenchError, match=f"DMLC_ROLE={role!r} is set.*unset DMLC_ROLE"):
        check_dmlc_role({"DMLC_ROLE": role})
    check_dmlc_role({"DMLC_ROLE": "worker"})
    check_dmlc_role({})


def test_a_stray_dmlc_role_is_one_line_not_a_hang(tmp_path):
    env = dict(_env(), DMLC_ROLE="scheduler", DMLC_PS_ROOT_URI="127.0.0.1",
               DMLC_PS_ROOT_PORT="9", DMLC_NUM_WORKER="1", DMLC_NUM_SERVER="1")
    result = subprocess.run([sys.executable, "-m", "bench", "run", "recipe", "resnet50",
                             "--max-steps", "1", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: DMLC_ROLE='scheduler' is set in the environment")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("env, message", [
    ({}, "DMLC_PS_ROOT_URI, DMLC_PS_ROOT_PORT, DMLC_NUM_WORKER, DMLC_NUM_SERVER are not set"),
    ({"DMLC_PS_ROOT_URI": "127.0.0.1", "DMLC_PS_ROOT_PORT": "9", "DMLC_NUM_WORKER": "2"},
     "DMLC_NUM_SERVER is not set"),
    ({"DMLC_PS_ROOT_URI": "127.0.0.1", "DMLC_PS_ROOT_PORT": "9", "DMLC_NUM_WORKER": "x",
      "DMLC_NUM_SERVER": "1"}, "DMLC_NUM_WORKER='x' is not a whole number of at least 1"),
    ({"DMLC_PS_ROOT_URI": "127.0.0.1", "DMLC_PS_ROOT_PORT": "70000", "DMLC_NUM_WORKER": "2",
      "DMLC_NUM_SERVER": "1"}, "DMLC_PS_ROOT_PORT='70000' is not a whole number from 1 to 65535"),
])
def test_a_worker_without_its_job_variables_is_one_line(monkeypatch, env, message):
    # ps-lite dies with a traceback on a missing variable and reads "x" as 0 workers.
    from bench.engine.cluster import join_cluster
    for name in [k for k in os.environ if k.startswith("DMLC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DMLC_ROLE", "worker")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(BenchError, match=re.escape(message)):
        join_cluster("dist_sync")
