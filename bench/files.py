"""Low-level file helpers both the engine (which writes runs) and the results layer (which reads
and records them) need: crash-safe writes, checksums, reading a JSON-lines log, and checking a
path the user gave before it is used (its kind, permissions and name lengths), so that a wrong
path is one sentence rather than an ``OSError`` from deep inside a command.

It lives below both layers so that neither imports the other for them.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

from bench.errors import BenchError, summary


# --- atomic files ---------------------------------------------------------------------------

def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename inside it survives a power loss."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # some filesystems / platforms cannot open directories
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the complete new one,
    never a prefix (temporary file in the same directory, fsync, ``os.replace``). A write that
    fails (a full disk, a read-only folder) leaves the old file as it was and raises a one-line
    :class:`BenchError` naming the path and, for a full disk, the space left."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        error = write_error(path, exc)  # the free space as the write found it
        _unlink_quietly(tmp)
        raise error from None
    except BaseException:
        _unlink_quietly(tmp)
        raise
    fsync_dir(path.parent)


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text (metrics.json, result.json, run.json...)."""
    atomic_write_bytes(path, text.encode("utf-8"))


# --- checksums ------------------------------------------------------------------------------

def sha256_file(path: Path, limit: int | None = None) -> str:
    """sha256 of a file's bytes, or of its first ``limit`` bytes (the part of an append-only
    log that existed when a checksum was taken)."""
    h = hashlib.sha256()
    left = limit
    with open(path, "rb") as f:
        while left is None or left > 0:
            block = f.read(1 << 20 if left is None else min(1 << 20, left))
            if not block:
                break
            h.update(block)
            if left is not None:
                left -= len(block)
    return h.hexdigest()


# --- JSON-lines logs ------------------------------------------------------------------------

def read_log(path: Path) -> list[dict]:
    """All records of a JSON-lines log. A truncated last line (a killed writer) is skipped; a bad
    line anywhere else means the file is not such a log and raises :class:`BenchError`."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchError(f"cannot read log {path}: {exc}") from None
    complete = lines[:-1]  # the last item is "" after a final newline, else a partial line
    records = []
    for number, line in enumerate(complete, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            raise BenchError(f"log {path} line {number} is not JSON") from None
    if lines[-1].strip():
        try:
            records.append(json.loads(lines[-1]))  # complete but without its newline
        except ValueError:
            pass
    return records


# --- user-given paths -----------------------------------------------------------------------

NAME_MAX = 255  # bytes per file or folder name on Linux, macOS and Windows file systems


def free_space(path: Path) -> str:
    """The free space on the file system of ``path`` (or of its nearest existing parent), e.g.
    ``"12.3 MiB free"``, or ``"free space unknown"``."""
    path = Path(path).absolute()
    for folder in (path, *path.parents):
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            continue
        return f"{_size(free)} free"
    return "free space unknown"


def _size(n: int) -> str:
    for unit, scale in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def os_error_text(exc: OSError, path: Path | str | None = None) -> str:
    """What an ``OSError`` means for the user and what to do, in one line (without the path
    when ``path`` is given, since the caller names it)."""
    where = path if path is not None else (exc.filename or "a file")
    reason = exc.strerror or type(exc).__name__
    shown = str(where) if len(str(where)) <= 100 else f"{str(where)[:60]}...{str(where)[-30:]}"
    advice = {
        errno.ENOSPC: f"the disk is full ({free_space(Path(where))} on it): free some space or "
                      "write elsewhere, then run again",
        errno.EDQUOT: f"the disk quota is exceeded ({free_space(Path(where))}): free some space "
                      "or write elsewhere",
        errno.EACCES: "permission denied: check its permissions (and its folders')",
        errno.EPERM: "operation not permitted: check its permissions",
        errno.EROFS: "the file system is read-only: write elsewhere",
        errno.ENAMETOOLONG: f"a file or folder name is longer than {NAME_MAX} bytes: shorten it",
        errno.EISDIR: "it is a folder where a file was expected",
        errno.ENOTDIR: "part of the path is a file where a folder was expected",
        errno.ENOENT: "no such file or folder",
        errno.EEXIST: "it already exists",
    }.get(exc.errno, reason)
    return advice if path is not None else f"{shown}: {advice}"


def write_error(path: Path | str, exc: BaseException) -> BenchError:
    """A failed write of ``path`` as one line naming it and the space left on its file system:
    an ``OSError`` (``ENOSPC``...) or a library's own error for the same (MXNet's
    ``FileStream.Write incomplete`` on a full disk)."""
    if isinstance(exc, OSError):
        return BenchError(f"cannot write {path}: {os_error_text(exc, path)}")
    return BenchError(f"cannot write {path}: {summary(exc)} ({free_space(Path(path))} on its "
                      "file system: if the disk is full, free some space or write elsewhere)")


def check_names(path: Path | str, what: str) -> Path:
    """Refuse a path with a component longer than :data:`NAME_MAX` bytes before any system call
    fails on it with ``File name too long``."""
    path = Path(path)
    for part in path.parts:
        size = len(os.fsencode(part))
        if size > NAME_MAX:
            raise BenchError(f"{what}: the name {part[:24]}... is {size} bytes long; file and "
                             f"folder names may have at most {NAME_MAX}: shorten it")
    return path


def check_readable(path: Path | str, what: str, kind: str = "any") -> Path:
    """An existing file (``kind`` "file"), folder ("dir") or either ("any") that can be read,
    else a one-line :class:`BenchError` that says which it is instead."""
    path = check_names(path, what)
    try:
        is_dir = path.is_dir()
        exists = is_dir or path.exists()
    except OSError as exc:
        raise BenchError(f"{what} {path}: {os_error_text(exc, path)}") from None
    if not exists:
        raise BenchError(f"{what} {path} does not exist")
    if kind == "file" and is_dir:
        raise BenchError(f"{what} {path} is a folder; give a file")
    if kind == "dir" and not is_dir:
        raise BenchError(f"{what} {path} is a file; give a folder")
    if not os.access(path, os.R_OK | (os.X_OK if is_dir else 0)):
        raise BenchError(f"{what} {path} cannot be read (permission denied): check its "
                         "permissions")
    return path


def check_writable_dir(path: Path | str, what: str) -> Path:
    """A folder that exists or can be created, inside which files can be written."""
    path = check_names(path, what)
    for folder in (path, *path.absolute().parents):
        try:
            if not folder.exists():
                continue
            if not folder.is_dir():
                part = "is a file" if folder == path else f"is inside {folder}, which is a file"
                raise BenchError(f"{what} {path} {part}; give a folder")
        except OSError as exc:
            raise BenchError(f"{what} {path}: {os_error_text(exc, path)}") from None
        if not os.access(folder, os.W_OK | os.X_OK):
            raise BenchError(f"{what} {path}: cannot write in {folder} (permission denied): "
                             "check its permissions or choose another folder")
        return path
    return path


def check_output_file(path: Path | str, what: str, suffixes: tuple[str, ...]) -> Path:
    """A file to (over)write: one of ``suffixes``, not a folder, in a writable folder."""
    path = check_names(path, what)
    if path.suffix.lower() not in suffixes:
        raise BenchError(f"{what} {path}: the file name must end in {' or '.join(suffixes)} "
                         f"(e.g. {path.with_suffix(suffixes[0]).name})")
    if path.is_dir():
        raise BenchError(f"{what} {path} is a folder; give a file name")
    check_writable_dir(path.parent, f"{what} {path}: its folder")
    return path
