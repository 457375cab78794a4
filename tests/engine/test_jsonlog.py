"""The JSON-lines log and the progress display."""
from __future__ import annotations

import io
import time

import numpy as np
import pytest

from bench.engine.jsonlog import JsonLog, Progress
from bench.errors import BenchError
from bench.files import read_log


def test_lines_are_json_with_event_time_and_utc(tmp_path):
    path = tmp_path / "log.jsonl"
    before = time.time()
    with JsonLog(path) as log:
        log.write("start", recipe="r", plan={"lr": 0.1}, milestones=(1, 2))
        log.write("window", iteration=np.int64(20), loss=np.float32(1.5), lr=0.1,
                  train_error=np.float64(0.25), images_per_s=100.0)
        # Each write is on disk at once, for a tail -f or a crash.
        assert len(path.read_text().splitlines()) == 2
    records = read_log(path)
    assert [r["event"] for r in records] == ["start", "window"]
    assert records[0]["plan"] == {"lr": 0.1} and records[0]["milestones"] == [1, 2]
    window = records[1]
    assert window["iteration"] == 20 and type(window["iteration"]) is int
    assert window["loss"] == 1.5 and window["train_error"] == 0.25
    assert before <= window["time"] <= time.time()
    assert window["utc"].endswith("Z") and window["utc"][:4].isdigit()


def test_mxnet_values_and_non_finite_numbers(tmp_path):
    import mxnet as mx
    path = tmp_path / "log.jsonl"
    with JsonLog(path) as log:
        log.write("stop", loss=float("nan"), big=float("inf"), acc=mx.nd.array([0.5]),
                  scalar=mx.nd.array([3.0]).sum(), path=tmp_path)
    line = path.read_text()
    assert "NaN" not in line and "Infinity" not in line  # strict JSON for jq & co.
    record = read_log(path)[0]
    assert record["loss"] == "nan" and record["big"] == "inf"
    assert record["acc"] == [0.5] and record["scalar"] == [3.0] and record["path"] == str(tmp_path)


def test_reserved_fields_and_closed_log(tmp_path):
    log = JsonLog(tmp_path / "log.jsonl")
    with pytest.raises(ValueError):
        log.write("x", time=1)
    log.close()
    log.close()  # twice is fine
    with pytest.raises(ValueError):
        log.write("after")


def test_truncated_last_line_is_tolerated_and_dropped_on_append(tmp_path):
    path = tmp_path / "log.jsonl"
    with JsonLog(path) as log:
        log.write("start")
        log.write("window", iteration=1)
    with open(path, "a") as f:
        f.write('{"event": "window", "iter')  # killed mid-write
    assert [r["event"] for r in read_log(path)] == ["start", "window"]
    with JsonLog(path) as log:  # a resumed run appends whole lines after the last good one
        log.write("resume")
    assert [r["event"] for r in read_log(path)] == ["start", "window", "resume"]
    assert path.read_text().endswith("\n")


def test_last_line_without_newline_but_complete_is_kept(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"event": "a"}\n{"event": "b"}')
    assert [r["event"] for r in read_log(path)] == ["a", "b"]


def test_bad_middle_line_and_missing_file_are_errors(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"event": "a"}\nnot json\n{"event": "b"}\n')
    with pytest.raises(BenchError, match="line 2 is not JSON"):
        read_log(path)
    with pytest.raises(BenchError, match="cannot read log"):
        read_log(tmp_path / "missing.jsonl")


def test_progress_prints_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    bar = Progress(20, "epoch 1/3", every=5, file=out)
    bar.update(0)  # a resume at batch 0
    for _ in range(12):
        bar.update(1, lr="0.1")
    bar.close()
    assert out.getvalue().splitlines() == ["epoch 1/3: 5/20 (25%) lr=0.1",
                                           "epoch 1/3: 10/20 (50%) lr=0.1",
                                           "epoch 1/3: 12/20 (60%) lr=0.1"]


def test_progress_disabled_is_silent():
    out = io.StringIO()
    bar = Progress(10, "x", enabled=False, file=out)
    bar.update(3, lr=1)
    bar.close()
    assert out.getvalue() == ""


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_uses_tqdm_on_a_terminal():
    out = _Tty()
    bar = Progress(10, "epoch 1/1", file=out)
    assert bar._bar is not None
    bar.update(4, lr="0.1")
    bar.close()
    assert "epoch 1/1" in out.getvalue() and "\r" in out.getvalue()
