"""Start a parameter-server job on this machine: one scheduler, servers and N workers.

MXNet's own ``tools/launch.py`` fails on Python 3.11 (``Thread.isAlive``), returns 0 even when
its workers die, and binds the host's public address. This launcher binds loopback and watches
every process of the job:

* a worker that fails, or a scheduler or server that ends while workers still run, ends the
  job: one line names it (role, index, pid, exit status or signal), the other workers get
  ``FAIL_GRACE_S`` to end by themselves, are terminated, and killed ``KILL_GRACE_S`` later (a
  ``dist_sync`` worker whose peer died waits in the kvstore forever, deaf to SIGTERM);
* a busy ``--port`` is refused before anything starts, and a scheduler that cannot bind anyway
  (a race) is such a failure, its last output line quoted;
* the first SIGINT/SIGTERM is passed to the workers, which checkpoint together and stop (they
  get ``SHUTDOWN_S``); a second one kills them;
* every process runs in its own process group, which is killed when the launcher returns, and
  has a parent-death signal (Linux), so a launcher killed by SIGKILL leaves nothing behind
  (except what a process of the job started itself, which would need its own parent-death
  signal; bench's workers start no lasting ones).

Each process gets the ``DMLC_*`` variables MXNet's kvstore reads (inherited ``DMLC_*`` ones are
dropped: the job is this launcher's); the scheduler and servers are ``python -c "import mxnet"``
(importing MXNet with ``DMLC_ROLE`` set to ``server`` or ``scheduler`` runs that role until the
workers finish). Workers run ``python -m bench ARGS`` with ``OMP_NUM_THREADS`` set to their
share of the cores unless it is already set. The job's exit status is the first failing
process's (the shell's 128 + N for signal N; 1 for a helper that exited 0 too early), 0 when
every worker succeeds.
"""
from __future__ import annotations

import ctypes
import errno
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import IO, Callable, Sequence

from bench.errors import BenchError

POLL_S = 0.1
# After a forwarded signal: the workers' time to agree on a step, checkpoint and stop. After
# success: the scheduler's and servers' time to exit by themselves.
SHUTDOWN_S = 30.0
# After a failure: the other workers' time to end by themselves (a job that diverged stops
# every worker at one step, and each prints its own error) before they are terminated.
FAIL_GRACE_S = 1.0
# Between SIGTERM and SIGKILL.
KILL_GRACE_S = 2.0
# A scheduler or server that exited 0 has seen every worker leave the kvstore (ps-lite's
# final barrier): the workers are ending too, and get this long to do so.
HELPER_DONE_S = 10.0

LOOPBACK = "127.0.0.1"
HELPER_COMMAND = ("-c", "import mxnet")
WORKER_COMMAND = ("-m", "bench")  # then the bench arguments


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def check_port(port: int) -> None:
    """Refuse a port that the scheduler could not bind, before anything starts (the scheduler
    would die with a traceback while the workers wait for it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # ZeroMQ, which the scheduler binds through, sets SO_REUSEADDR (libzmq
        # src/tcp_listener.cpp): a port an earlier job left in TIME_WAIT is free for it, one
        # another process listens on is not.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError as exc:
            why = "in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise BenchError(f"port {port} on {LOOPBACK} is {why}: choose another --port, or "
                             "leave --port out to use a free one") from None


def job_env(workers: int, servers: int, port: int, base: dict[str, str] | None = None
            ) -> dict[str, str]:
    """The environment every process of the job shares."""
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if not k.startswith("DMLC_")}
    env.update(DMLC_PS_ROOT_URI=LOOPBACK, DMLC_PS_ROOT_PORT=str(port),
               DMLC_NUM_WORKER=str(workers), DMLC_NUM_SERVER=str(servers),
               DMLC_NODE_HOST=LOOPBACK)
    if "OMP_NUM_THREADS" not in env:
        cores = len(os.sched_getaffinity(0))
        env["OMP_NUM_THREADS"] = str(max(1, cores // workers))
    return env


def describe_exit(code: int) -> str:
    """``exited with status 2`` / ``was killed by SIGKILL`` for a Popen return code."""
    if code >= 0:
        return f"exited with status {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"was killed by signal {-code}"


def shell_status(code: int) -> int:
    return 128 - code if code < 0 else code  # killed by signal N: the shell's 128 + N


def _parent_death_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGKILL when the launcher dies (Linux
    ``prctl(PR_SET_PDEATHSIG)``; kept across exec), or None where there is no prctl.

    SIGKILL, not SIGTERM: a scheduler or server that stops leaves the workers blocked in the
    kvstore, so a gentler signal could still leave them behind; a worker's last checkpoint
    is whole either way (checkpoints are written atomically). The signal comes when the
    thread that started the child ends: `launch` runs in the main thread (it sets signal
    handlers, which only the main thread can)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # loaded here: no dlopen after fork
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    launcher = os.getpid()

    def set_parent_death_signal() -> None:
        prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        if os.getppid() != launcher:  # the launcher died before the prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return set_parent_death_signal


@dataclass
class Child:
    """One process of the job."""

    role: str  # "scheduler", "server" or "worker": the DMLC_ROLE it runs as
    index: int
    popen: subprocess.Popen
    output: IO[bytes] | None = None  # a scheduler's or server's captured output

    @property
    def pid(self) -> int:
        return self.popen.pid

    def __str__(self) -> str:
        name = self.role if self.role == "scheduler" else f"{self.role} {self.index}"
        return f"{name} (pid {self.pid})"

    def poll(self) -> int | None:
        return self.popen.poll()

    def signal_group(self, signum: int) -> None:
        """``signum`` to the child's process group: the child and whatever it started."""
        try:
            os.killpg(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass  # the group is empty (after the child was reaped its pgid is not reused)

    def last_output_line(self) -> str:
        if self.output is None:
            return ""
        self.output.seek(0, os.SEEK_END)
        self.output.seek(max(0, self.output.tell() - 4096))
        lines = [ln.strip() for ln in self.output.read().decode(errors="replace").splitlines()]
        return next((ln for ln in reversed(lines) if ln), "")


def launch(args: Sequence[str], workers: int, servers: int = 1, port: int | None = None
           ) -> int:
    """Run ``bench ARGS`` as ``workers`` workers of one job; returns the job's exit status."""
    if workers < 1 or servers < 1:
        raise BenchError(f"a job needs at least one worker and one server, not {workers} and "
                         f"{servers}")
    if not args:
        raise BenchError("nothing to launch: give the bench command, e.g. `bench launch "
                         "--workers 2 -- run recipe digits_resnet --kvstore dist_sync`")
    if port is None:
        port = free_port()
    else:
        check_port(port)
    job = _Job(job_env(workers, servers, port))
    old = {s: signal.signal(s, job.on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        job.start([sys.executable, *HELPER_COMMAND], servers,
                  [sys.executable, *WORKER_COMMAND, *args], workers)
        _say(f"{LOOPBACK}:{port}: " + ", ".join(str(c) for c in job.children))
        return job.watch()
    finally:
        job.close()
        for s, handler in old.items():
            signal.signal(s, handler)


def _say(line: str) -> None:
    print(f"bench launch: {line}", file=sys.stderr, flush=True)


class _Job:
    """The processes of one job and the rules for ending it."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.children: list[Child] = []
        self.signals: list[int] = []
        self.signalled_at = 0.0
        self._preexec = _parent_death_hook()

    @property
    def workers(self) -> list[Child]:
        return [c for c in self.children if c.role == "worker"]

    @property
    def helpers(self) -> list[Child]:
        return [c for c in self.children if c.role != "worker"]

    def _start(self, command: list[str], role: str, index: int) -> None:
        # Own sessions: a Ctrl-C in the terminal reaches the workers once, through
        # `on_signal`, and never the servers, which the workers still need to agree on where
        # to stop; and each process's group can be killed whole.
        output = tempfile.TemporaryFile() if role != "worker" else None
        try:
            popen = subprocess.Popen(command, env={**self.env, "DMLC_ROLE": role},
                                     start_new_session=True, preexec_fn=self._preexec,
                                     stdout=output, stderr=output)
        except OSError as exc:
            raise BenchError(f"cannot start the {role}: {command[0]}: {exc.strerror}") from None
        self.children.append(Child(role, index, popen, output))

    def start(self, helper: list[str], servers: int, worker: list[str], workers: int) -> None:
        self._start(helper, "scheduler", 0)
        for i in range(servers):
            self._start(helper, "server", i)
        for i in range(workers):
            self._start(worker, "worker", i)

    def on_signal(self, signum, frame) -> None:
        """The first signal asks the workers to checkpoint and stop; a second one (a job that
        does not react, e.g. blocked on a dead peer) kills them (in `watch`)."""
        self.signals.append(signum)
        if len(self.signals) == 1:
            self.signalled_at = time.monotonic()
            for w in self.workers:
                if w.poll() is None:
                    w.popen.send_signal(signum)
            _say(f"{signal.Signals(signum).name} passed to the workers, which checkpoint and "
                 "stop; send it again to kill them")

    def _unexpected(self, code: int | None) -> bool:
        """A worker's exit that ends the job: any failure, but after a forwarded signal only
        one that is not the stop the signal asked for."""
        if not code:
            return False
        if not self.signals:
            return True
        return code not in (128 + self.signals[0], -self.signals[0])

    def watch(self) -> int:
        """Until the job has ended; returns its exit status."""
        status: int | None = None  # the first failing worker's
        helper_done: float | None = None  # when a scheduler or server exited 0
        while True:
            codes = [w.poll() for w in self.workers]
            running = [w for w, c in zip(self.workers, codes) if c is None]
            if status is None:
                status = next((shell_status(c) for c in codes if c), None)
            failed = next((w for w, c in zip(self.workers, codes) if self._unexpected(c)),
                          None)
            if failed is not None:
                return self._fail(failed, shell_status(failed.poll()))
            if not running:
                self._end(self.helpers, grace=SHUTDOWN_S if not status else 0.0)
                return status or 0
            if self.signals and (len(self.signals) > 1
                                 or time.monotonic() > self.signalled_at + SHUTDOWN_S):
                for w in running:
                    w.signal_group(signal.SIGKILL)
            for h in self.helpers:
                code = h.poll()
                if code is None:
                    continue
                if code != 0:
                    return self._fail(h, shell_status(code))
                helper_done = helper_done or time.monotonic()
                if time.monotonic() - helper_done > HELPER_DONE_S:
                    return self._fail(h, 1, " while " + ", ".join(str(w) for w in running)
                                      + " still ran")
            time.sleep(POLL_S)

    def _fail(self, child: Child, status: int, detail: str = "") -> int:
        """Name ``child``'s unexpected exit in one line and end the job."""
        line = f"{child} {describe_exit(child.poll())}{detail}"
        last = child.last_output_line()
        if last:
            line += f" ({last[:300]})"
        if child.role == "scheduler" and "bind failed" in last:
            line += f"; port {self.env['DMLC_PS_ROOT_PORT']} is probably in use: choose " \
                    "another --port"
        _say(line + "; ending the job")
        self._end(self.workers, grace=FAIL_GRACE_S)
        self._end(self.helpers, grace=0.0)
        return status

    def _wait(self, children: list[Child], seconds: float) -> bool:
        """Wait until ``children`` have all ended (True) or ``seconds`` passed (False); after
        a second signal there is no waiting."""
        deadline = time.monotonic() + seconds
        while any(c.poll() is None for c in children):
            if time.monotonic() >= deadline or len(self.signals) > 1:
                return False
            time.sleep(POLL_S)
        return True

    def _end(self, children: list[Child], grace: float) -> None:
        """Let ``children`` end within ``grace`` seconds, then terminate them, then kill their
        process groups."""
        if self._wait(children, grace):
            return
        for c in children:
            if c.poll() is None:
                c.popen.terminate()
        if not self._wait(children, KILL_GRACE_S):
            for c in children:
                c.signal_group(signal.SIGKILL)

    def close(self) -> None:
        """Kill whatever is left of every process group and reap the children."""
        for c in self.children:
            c.signal_group(signal.SIGKILL)
        for c in self.children:
            try:
                c.popen.wait(timeout=KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                pass  # unkillable (e.g. in uninterruptible sleep): nothing more to do
            if c.output is not None:
                c.output.close()
