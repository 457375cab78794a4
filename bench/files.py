"""Low-level file helpers both the engine (which writes runs) and the results layer (which reads
and records them) need: crash-safe writes, checksums and reading a JSON-lines log.

It lives below both layers so that neither imports the other for them.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from bench.errors import BenchError


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
    never a prefix (temporary file in the same directory, fsync, ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


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
