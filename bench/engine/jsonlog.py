"""What a run tells machines (``log.jsonl``) and people (a progress bar or plain lines)."""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import numpy as np

RESERVED = ("event", "time", "utc")


def _plain(obj: Any) -> Any:
    """Python scalars, lists and dicts only. NumPy and MXNet values become numbers or lists;
    NaN and infinities become the strings "nan", "inf", "-inf", since strict JSON readers
    (jq, JavaScript) reject the bare tokens Python would write."""
    if isinstance(obj, float) or isinstance(obj, np.floating):
        value = float(obj)
        if math.isfinite(value):
            return value
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist()) if obj.ndim else _plain(obj.item())
    if hasattr(obj, "asnumpy"):  # mx.nd.NDArray, without importing MXNet here
        return _plain(obj.asnumpy())
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _plain(dataclasses.asdict(obj))
    return str(obj)


class JsonLog:
    """Append-only JSON-lines log (one object per line, flushed each write) for machine reading:
    events 'start', 'window' (loss, lr, images/s, train error), 'epoch' (val top-1/top-5 error,
    time), 'checkpoint', 'stop', 'end' (and 'resume', ...).

    Each line is one ``write`` so a killed process loses at most its last, partial line; opening
    an existing log drops such a partial line so a resumed run appends whole lines only."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _drop_partial_last_line(self.path)
        self._file: TextIO | None = open(self.path, "a", encoding="utf-8")

    def write(self, event: str, **fields: Any) -> None:
        """Append ``{"event", "time" (unix s), "utc" (ISO 8601), **fields}`` and flush."""
        if self._file is None:
            raise ValueError(f"log {self.path} is closed")
        clash = [k for k in fields if k in RESERVED]
        if clash:
            raise ValueError(f"log fields {clash} are reserved")
        now = time.time()
        utc = _dt.datetime.fromtimestamp(now, _dt.timezone.utc).isoformat(timespec="milliseconds")
        record = {"event": event, "time": now, "utc": utc.replace("+00:00", "Z"),
                  **_plain(fields)}
        try:
            self._file.write(json.dumps(record, allow_nan=False) + "\n")
            self._file.flush()
        except OSError as exc:  # a full disk: one line naming the log and the space left
            from bench.files import write_error
            raise write_error(self.path, exc) from None

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:  # the line a full disk refused; write() has said so
                pass
            self._file = None

    def __enter__(self) -> "JsonLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class NullLog:
    """The log of a worker that writes nothing (every worker of a job but rank 0)."""

    def write(self, event: str, **fields: Any) -> None:
        pass

    def __enter__(self) -> "NullLog":
        return self

    def __exit__(self, *exc) -> None:
        pass


def _drop_partial_last_line(path: Path) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        # Find the last newline; everything after it is an unfinished record.
        pos = size
        while pos > 0:
            step = min(1 << 16, pos)
            f.seek(pos - step)
            chunk = f.read(step)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                f.truncate(pos - step + cut + 1)
                return
            pos -= step
        f.truncate(0)


class Progress:
    """A tqdm bar on a terminal; elsewhere (CI logs, files) a plain line every ``every`` updates
    but at most one per ``min_interval`` seconds (the end of the bar always prints), since a bar
    redrawn with carriage returns is unreadable in a log. ``enabled=False`` is
    silent (--no-progress)."""

    def __init__(self, total: int, desc: str, enabled: bool = True, every: int | None = None,
                 file: TextIO | None = None, min_interval: float = 0.0):
        self.total, self.desc, self.count = total, desc, 0
        self.file = file if file is not None else sys.stderr
        self.every = every or max(1, total // 10 if total else 100)
        self._bar = None
        self._printed = 0
        self._last = time.monotonic()
        self.min_interval = min_interval
        self._postfix: dict[str, Any] = {}
        self.enabled = enabled
        if enabled and _isatty(self.file):
            from tqdm import tqdm
            self._bar = tqdm(total=total, desc=desc, file=self.file, dynamic_ncols=True,
                             leave=False)

    def update(self, n: int = 1, **postfix: Any) -> None:
        if not self.enabled or n <= 0 and not postfix:
            return
        self.count += n
        self._postfix.update(postfix)
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
            self._bar.update(n)
        elif (self.count // self.every > self._printed // self.every
              and time.monotonic() - self._last >= self.min_interval):
            self._line()

    def _line(self) -> None:
        self._printed = self.count
        self._last = time.monotonic()
        pct = f" ({100 * self.count / self.total:.0f}%)" if self.total else ""
        extra = "".join(f" {k}={v}" for k, v in self._postfix.items())
        print(f"{self.desc}: {self.count}/{self.total}{pct}{extra}", file=self.file, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.enabled and self.count != self._printed:
            self._line()
        self.enabled = False


def _isatty(file: TextIO) -> bool:
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError):
        return False


def train_error_by_epoch(events: list[dict]) -> dict[int, float]:
    """Running training error (%) of each finished epoch from a run's 'window' and 'epoch'
    events: the windows' errors weighted by their steps. The trainer closes a window at every
    epoch's end, so none straddles two epochs; a window logged again after a resume (the steps
    between the checkpoint and a kill are trained twice) counts once, as its last logging."""
    windows: dict[int, float] = {}
    for e in events:
        if e.get("event") == "window":
            windows[int(e["iteration"])] = float(e["train_error"])
    out, previous = {}, 0
    ends = sorted((int(e["iteration"]), int(e["epoch"])) for e in events
                  if e.get("event") == "epoch")
    for stop, epoch in ends:
        wrong, steps, last = 0.0, 0, previous
        for it in sorted(i for i in windows if previous < i <= stop):
            wrong, steps, last = wrong + windows[it] * (it - last), steps + it - last, it
        if steps:
            out[epoch] = 100.0 * wrong / steps
        previous = stop
    return out
