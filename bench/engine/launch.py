"""Start a parameter-server job on this machine: one scheduler, servers and N workers.

MXNet's own ``tools/launch.py`` fails on Python 3.11 (``Thread.isAlive``), returns 0 even when
its workers die, and binds the host's public address. This launcher binds loopback, ends the
whole job as soon as one worker fails (a ``dist_sync`` job would otherwise wait for it forever),
forwards SIGINT and SIGTERM to the workers so they checkpoint together (a second signal kills
them), and returns the first non-zero worker status (0 when all succeed).

Each process gets the ``DMLC_*`` variables MXNet's kvstore reads; the scheduler and servers are
``python -c "import mxnet"`` (importing MXNet with ``DMLC_ROLE`` set to ``server`` or
``scheduler`` runs that role until the workers finish). Workers run ``python -m bench ARGS``
with ``OMP_NUM_THREADS`` set to their share of the cores unless it is already set.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import Sequence

from bench.errors import BenchError

POLL_S = 0.2
SHUTDOWN_S = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def job_env(workers: int, servers: int, port: int, base: dict[str, str] | None = None
            ) -> dict[str, str]:
    """The environment every process of the job shares."""
    env = dict(os.environ if base is None else base)
    env.update(DMLC_PS_ROOT_URI="127.0.0.1", DMLC_PS_ROOT_PORT=str(port),
               DMLC_NUM_WORKER=str(workers), DMLC_NUM_SERVER=str(servers),
               DMLC_NODE_HOST="127.0.0.1")
    if "OMP_NUM_THREADS" not in env:
        cores = len(os.sched_getaffinity(0))
        env["OMP_NUM_THREADS"] = str(max(1, cores // workers))
    return env


def launch(args: Sequence[str], workers: int, servers: int = 1, port: int | None = None
           ) -> int:
    """Run ``bench ARGS`` as ``workers`` workers of one job; returns the job's exit status."""
    if workers < 1 or servers < 1:
        raise BenchError(f"a job needs at least one worker and one server, not {workers} and "
                         f"{servers}")
    if not args:
        raise BenchError("nothing to launch: give the bench command, e.g. `bench launch "
                         "--workers 2 -- run recipe digits_resnet --kvstore dist_sync`")
    env = job_env(workers, servers, port or free_port())
    # Own sessions: a Ctrl-C in the terminal reaches the workers once, through `forward`, and
    # never the servers, which the workers still need to agree on where to stop.
    def start(command: list[str], role: str) -> subprocess.Popen:
        return subprocess.Popen(command, env={**env, "DMLC_ROLE": role}, start_new_session=True)

    server = [sys.executable, "-c", "import mxnet"]
    helpers = [start(server, "scheduler")] + [start(server, "server") for _ in range(servers)]
    procs = [start([sys.executable, "-m", "bench", *args], "worker") for _ in range(workers)]

    received: list[int] = []

    def forward(signum, frame):
        """The first signal asks the workers to checkpoint and stop; a second one (a job that
        does not react, e.g. blocked on a dead peer) kills them."""
        received.append(signum)
        again = len(received) > 1
        for p in procs:
            if p.poll() is None:
                p.kill() if again else p.send_signal(signum)
        if not again:
            print(f"bench launch: {signal.Signals(signum).name} passed to the workers, which "
                  "checkpoint and stop; send it again to kill them", file=sys.stderr)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    status = 1
    try:
        status = _wait(procs)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        # After a failure the others get time to end by themselves (after a signal they are
        # saving their checkpoint); a dist_sync worker whose peer died would wait forever.
        _stop(procs, grace=SHUTDOWN_S)
        _stop(helpers, grace=SHUTDOWN_S if status == 0 else 0.0)
    return status


def _wait(procs: list[subprocess.Popen]) -> int:
    """Until every worker has ended (0) or one has failed (its status)."""
    while True:
        codes = [p.poll() for p in procs]
        failed = [c for c in codes if c not in (None, 0)]
        if failed:
            return _status(failed[0])
        if all(c == 0 for c in codes):
            return 0
        time.sleep(POLL_S)


def _status(code: int) -> int:
    return 128 - code if code < 0 else code  # killed by signal N: the shell's 128 + N


def _stop(procs: list[subprocess.Popen], grace: float = 0.0) -> None:
    """Let ``procs`` end within ``grace`` seconds, then terminate, then kill."""
    deadline = time.time() + grace
    while grace and time.time() < deadline and any(p.poll() is None for p in procs):
        time.sleep(POLL_S)
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
