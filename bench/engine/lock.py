"""One trainer per run directory: ``RUN_DIR/lock`` is held while a process trains in it.

The lock is an exclusive ``fcntl.flock`` on that file, which holds the holder's pid, host, start
time and command as JSON so that a second process can say who is training. The kernel drops a
flock when its holder exits, however it exits (``kill -9`` included), so a lock file that nobody
holds is stale by definition and the next process takes it over, saying whose it was: no pid
liveness guess is needed, and a reused pid cannot keep a run locked. Where the filesystem
refuses flock (some FUSE mounts), the file alone is the lock: created with ``O_EXCL``, stale when
its pid no longer runs on this host.

Nothing here writes before the lock is won: :func:`holder` only reads (a shared flock on a
read-only descriptor), so a refused resume or a dry run leaves the directory as it was.
In a multi-worker job only rank 0 locks (only it writes the run directory).
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from bench.errors import BenchError

LOCK_FILE = "lock"
_PROBE_TRIES = 10  # a holder() probe takes a shared lock for microseconds: retry past it
_PROBE_WAIT_S = 0.02
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL, errno.EBADF}


@dataclass(frozen=True)
class Holder:
    """What a lock file says about the process that holds (or held) it."""

    pid: int | None
    host: str | None
    since: str | None = None
    command: str | None = None

    def describe(self) -> str:
        who = f"pid {self.pid}" if self.pid is not None else "a process whose pid is unknown"
        if self.host:
            who += f" on {self.host}"
        return who + (f" (since {self.since})" if self.since else "")


class Stopped(BenchError):
    """SIGTERM outside the training loop (whose own handler checkpoints): the lock is released
    on the way out."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def lock_path(run_dir: Path) -> Path:
    return Path(run_dir) / LOCK_FILE


def holder(run_dir: Path) -> Holder | None:
    """The process that holds ``run_dir``'s lock now, or None. Only reads."""
    path = lock_path(run_dir)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # no lock file (or no such directory: the caller says what is wrong)
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd)
        except OSError as exc:
            if exc.errno not in _NO_FLOCK:
                raise
            found = _read_holder(fd)
            return None if _dead_here(found) else found
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def refuse_if_locked(run_dir: Path) -> None:
    """One line naming the holder when another process trains in ``run_dir``."""
    found = holder(run_dir)
    if found is not None:
        raise BenchError(_in_use(run_dir, found))


class RunLock:
    """A held lock; :meth:`release` (or leaving the ``with`` block) removes the file. Inside
    the block SIGTERM raises :class:`Stopped` so the lock is released on a signal too."""

    def __init__(self, run_dir: Path, fd: int):
        self.run_dir, self.path, self._fd = Path(run_dir), lock_path(run_dir), fd
        self._old_handler = None

    def release(self) -> None:
        if self._fd is None:
            return
        if _same_file(self._fd, self.path):  # remove it while still holding it
            with contextlib.suppress(OSError):
                self.path.unlink()
        os.close(self._fd)  # drops the flock
        self._fd = None

    def _on_sigterm(self, signum, frame):
        raise Stopped(f"stopped by signal {signal.Signals(signum).name} outside the training "
                      f"loop; {self.run_dir} is unlocked", 128 + signum)

    def __enter__(self) -> "RunLock":
        if threading.current_thread() is threading.main_thread():
            self._old_handler = signal.signal(signal.SIGTERM, self._on_sigterm)
        return self

    def __exit__(self, *exc) -> None:
        if self._old_handler is not None:
            signal.signal(signal.SIGTERM, self._old_handler)
            self._old_handler = None
        self.release()


def acquire(run_dir: Path, report: Callable[[str], None] | None = None) -> RunLock:
    """Lock ``run_dir`` for this process, or refuse with one line naming the holder. A stale
    lock (its holder is gone) is taken over, and ``report`` is told whose it was."""
    path = lock_path(run_dir)
    if not Path(run_dir).is_dir():
        raise BenchError(f"cannot lock {run_dir}: not a directory")
    for _ in range(100):  # each retry means another process released or took it meanwhile
        try:
            try:
                fd, created = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644), True
            except FileExistsError:
                fd, created = os.open(path, os.O_RDWR), False
        except FileNotFoundError:  # released between the two opens
            continue
        except OSError as exc:
            raise BenchError(f"cannot lock {run_dir}: {exc.strerror} ({path})") from None
        try:
            got = _exclusive(fd)
        except BaseException:
            os.close(fd)
            raise
        if got is None:  # no flock here: the O_EXCL file alone is the lock
            lock = _acquire_by_pid(run_dir, fd, created, report)
            if lock is None:
                continue
            return lock
        if not got:
            found = _read_holder(fd)
            os.close(fd)
            raise BenchError(_in_use(run_dir, found))
        if not _same_file(fd, path):  # the holder removed it just before we locked it
            os.close(fd)
            continue
        if not created and report:
            old = _read_holder(fd)
            report(f"taking over the lock of {run_dir} left by "
                   f"{old.describe() if old else 'a process that did not say who it was'}, "
                   "which no longer holds it (it ended without releasing it)")
        _write_holder(fd)
        return RunLock(run_dir, fd)
    raise BenchError(f"cannot lock {run_dir}: its lock file keeps changing ({path})")


@contextlib.contextmanager
def no_lock() -> Iterator[None]:
    """The lock of a process that writes no run directory (every worker but rank 0)."""
    yield None


# --- helpers --------------------------------------------------------------------------------

def _exclusive(fd: int) -> bool | None:
    """True: locked; False: another process holds it; None: this filesystem has no flock."""
    for attempt in range(_PROBE_TRIES):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if attempt + 1 < _PROBE_TRIES:
                time.sleep(_PROBE_WAIT_S)
        except OSError as exc:
            if exc.errno in _NO_FLOCK:
                return None
            raise
    return False


def _acquire_by_pid(run_dir: Path, fd: int, created: bool,
                    report: Callable[[str], None] | None) -> RunLock | None:
    """Without flock: ours if we created the file; a dead local holder's file is removed (and
    None returned, to create it again); anything else refuses."""
    if created:
        _write_holder(fd)
        return RunLock(run_dir, fd)
    found = _read_holder(fd)
    os.close(fd)
    if not _dead_here(found):
        raise BenchError(_in_use(run_dir, found))
    if report:
        report(f"taking over the lock of {run_dir} left by {found.describe()}, which no longer "
               "runs")
    with contextlib.suppress(FileNotFoundError):
        lock_path(run_dir).unlink()
    return None


def _in_use(run_dir: Path, found: Holder | None) -> str:
    found = found or Holder(None, None)
    command = f" (`{found.command}`)" if found.command else ""
    stop = (f", or stop it with `kill -TERM {found.pid}` (it checkpoints first) and resume then"
            if found.pid else "")
    return f"{run_dir} is in use by {found.describe()}{command}: wait for it to end{stop}"


def _read_holder(fd: int) -> Holder | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 1 << 16).decode("utf-8"))
        pid = data.get("pid")
        return Holder(pid if isinstance(pid, int) else None, _str(data.get("host")),
                      _str(data.get("since")), _str(data.get("command")))
    except (OSError, ValueError, AttributeError):  # empty (being written) or not ours
        return None


def _str(value) -> str | None:
    return value if isinstance(value, str) else None


def _write_holder(fd: int) -> None:
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    argv = list(sys.argv)
    if argv and Path(argv[0]).name in ("__main__.py", "bench"):  # python -m bench / bench
        argv[0] = "bench"
    text = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since,
                       "command": " ".join(argv)[:500]})
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, text.encode("utf-8"))
    os.fsync(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        mine, now = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino)


def _dead_here(found: Holder | None) -> bool:
    """A holder on this host whose pid no longer runs (an unreadable file counts as dead)."""
    if found is None:
        return True
    if found.host != socket.gethostname() or found.pid is None:
        return False
    try:
        os.kill(found.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
