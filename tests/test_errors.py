"""bench.errors (did_you_mean, summary), bench._mxnet.require_mxnet, and the checks of
bench.files that turn a wrong path or a full disk into one line."""
from __future__ import annotations

import errno
import os
import shutil
import sys

import pytest

from bench import files
from bench._mxnet import require_mxnet
from bench.errors import BenchError, did_you_mean, summary

NAMES = ["resnet50_v1", "resnet50_v1b", "resnet50_v1c", "resnet50_v1d", "resnet18_v2",
         "cifar_resnet20_v1"]


def test_did_you_mean_names_close_choices_best_first():
    assert did_you_mean("resnet50v1d", NAMES, n=2) == " (did you mean: resnet50_v1d, resnet50_v1?)"


def test_did_you_mean_keeps_at_most_n():
    assert did_you_mean("resnet50", NAMES).count(",") == 2  # three names


def test_did_you_mean_empty_when_nothing_is_close():
    assert did_you_mean("vgg16", NAMES) == ""
    assert did_you_mean("resnet50_v1d", []) == ""


def test_did_you_mean_takes_any_iterable():
    assert did_you_mean("resnt18_v2", iter(NAMES), n=1) == " (did you mean: resnet18_v2?)"


def test_require_mxnet_returns_the_module():
    mx = require_mxnet()
    assert mx.__name__ == "mxnet"
    assert hasattr(mx, "nd")


def test_require_mxnet_explains_in_one_line_when_absent(monkeypatch):
    monkeypatch.setitem(sys.modules, "mxnet", None)  # makes `import mxnet` raise ImportError
    with pytest.raises(BenchError) as info:
        require_mxnet()
    message = str(info.value)
    assert "\n" not in message
    assert message == ("MXNet is not installed: run `pip install -e '.[cpu]'` (CPU) or "
                       "`pip install -e '.[cu112]'` (CUDA 11.2 GPUs)")
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_require_mxnet_keeps_a_user_set_thread_count(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    require_mxnet()
    assert os.environ["OMP_NUM_THREADS"] == "7"


def test_summary_gives_the_reason_of_an_mxnet_error_not_its_stack():
    mx = require_mxnet()
    with pytest.raises(mx.base.MXNetError) as info:
        mx.nd.load(__file__)  # not an NDArray file
    assert str(info.value).startswith("Traceback")  # what a first-line summary used to show
    line = summary(info.value)
    assert line.startswith("Check failed") and "NDArray" in line and "\n" not in line
    assert summary(ValueError("first\nsecond")) == "first"
    assert summary(KeyError()) == "KeyError"


# --- user-given paths -----------------------------------------------------------------------

def test_a_name_longer_than_255_bytes_is_refused_before_any_system_call(tmp_path):
    files.check_names(tmp_path / ("x" * 255), "--out")
    with pytest.raises(BenchError, match=r"--out: the name x{24}\.\.\. is 256 bytes long"):
        files.check_names(tmp_path / ("x" * 256), "--out")
    with pytest.raises(BenchError, match="is 256 bytes long"):  # bytes, not characters
        files.check_names(tmp_path / ("é" * 128), "--out")


def test_readable_paths_of_the_wrong_kind(tmp_path):
    (tmp_path / "f").write_text("x")
    assert files.check_readable(tmp_path / "f", "--params", "file") == tmp_path / "f"
    assert files.check_readable(tmp_path, "--resume", "dir") == tmp_path
    for path, kind, words in ((tmp_path, "file", "is a folder; give a file"),
                              (tmp_path / "f", "dir", "is a file; give a folder"),
                              (tmp_path / "nope", "any", "does not exist"),
                              (tmp_path / "f" / "g", "any", "does not exist")):
        with pytest.raises(BenchError) as info:
            files.check_readable(path, "--x", kind)
        assert str(info.value) == f"--x {path} {words}"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_or_folder_is_named(tmp_path):
    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    try:
        os.chmod(tmp_path / "f", 0)
        os.chmod(tmp_path / "d", 0)
        for name, kind in (("f", "file"), ("d", "dir")):
            with pytest.raises(BenchError, match="cannot be read .permission denied."):
                files.check_readable(tmp_path / name, "--x", kind)
        with pytest.raises(BenchError, match="permission denied"):
            files.check_writable_dir(tmp_path / "d" / "runs", "--out")
    finally:
        os.chmod(tmp_path / "f", 0o644)
        os.chmod(tmp_path / "d", 0o755)


def test_a_path_the_process_may_not_use_is_named(tmp_path, monkeypatch):
    # The same branches as above, on any user: os.access is what the checks ask.
    monkeypatch.setattr(files.os, "access", lambda path, mode: False)
    with pytest.raises(BenchError, match=f"--x {tmp_path} cannot be read .permission denied."):
        files.check_readable(tmp_path, "--x", "dir")
    with pytest.raises(BenchError, match=f"cannot write in {tmp_path} .permission denied."):
        files.check_writable_dir(tmp_path / "runs", "--out")


def test_an_output_folder_under_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    assert files.check_writable_dir(tmp_path / "new" / "deeper", "--out")
    assert not (tmp_path / "new").exists()  # checked, not created
    with pytest.raises(BenchError, match=f"--out {tmp_path}/f is a file; give a folder"):
        files.check_writable_dir(tmp_path / "f", "--out")
    with pytest.raises(BenchError, match=f"is inside {tmp_path}/f, which is a file"):
        files.check_writable_dir(tmp_path / "f" / "runs", "--out")


def test_an_output_file_has_its_suffix_and_is_not_a_folder(tmp_path):
    (tmp_path / "d.png").mkdir()
    files.check_output_file(tmp_path / "a.PNG", "--out", (".png",))
    with pytest.raises(BenchError, match=r"must end in \.png \(e\.g\. a\.png\)"):
        files.check_output_file(tmp_path / "a.txt", "--out", (".png",))
    with pytest.raises(BenchError, match="is a folder; give a file name"):
        files.check_output_file(tmp_path / "d.png", "--out", (".png",))


@pytest.mark.parametrize("code, words", [
    (errno.ENOSPC, "the disk is full ("), (errno.EACCES, "permission denied"),
    (errno.EROFS, "read-only"), (errno.ENAMETOOLONG, "longer than 255 bytes"),
    (errno.EISDIR, "a folder where a file was expected"),
    (errno.ENOTDIR, "a file where a folder was expected"), (errno.EIO, "Input/output error"),
])
def test_os_errors_are_explained(tmp_path, code, words):
    text = files.os_error_text(OSError(code, os.strerror(code), str(tmp_path / "x")))
    assert text.startswith(f"{tmp_path / 'x'}: ") and words in text and "\n" not in text


def test_free_space_is_that_of_the_nearest_existing_folder(tmp_path):
    free = shutil.disk_usage(tmp_path).free  # the independent measurement
    text = files.free_space(tmp_path / "not" / "yet")
    number, unit = text.split()[:2]
    scale = {"GiB": 2 ** 30, "MiB": 2 ** 20, "KiB": 2 ** 10, "bytes": 1}[unit]
    assert text.endswith(" free") and abs(float(number) * scale - free) <= 0.06 * scale + 2 ** 24


def test_a_full_disk_keeps_the_old_file_and_says_where_and_how_much_is_free(tmp_path,
                                                                          monkeypatch):
    target = tmp_path / "result.json"
    target.write_text("old")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(BenchError) as info:
        files.atomic_write_text(target, "new")
    message = str(info.value)
    assert message.startswith(f"cannot write {target}: the disk is full (")
    assert " free on it): free some space or write elsewhere" in message
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == [
        "result.json"]  # no temporary file left


def test_a_full_disk_while_logging_names_the_log(tmp_path, monkeypatch):
    from bench.engine.jsonlog import JsonLog
    log = JsonLog(tmp_path / "log.jsonl")
    log.write("start")

    class Full:
        def write(self, text):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def close(self):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    log._file.close()
    log._file = Full()
    with pytest.raises(BenchError, match=f"cannot write {tmp_path / 'log.jsonl'}: the disk is full"):
        log.write("window", loss=1.0)
    log.close()  # the refused line is not raised again


def test_a_reader_that_goes_away_is_no_error():
    """`bench ... | head -1`: the writer stops quietly, as pipeline writers do (status 141)."""
    import subprocess
    import sys
    done = subprocess.run(f"{sys.executable} -m bench run recipe resnet50_v1d --dry-run | head -1",
                          shell=True, capture_output=True, text=True, timeout=120,
                          executable="/bin/bash")
    assert done.stdout.startswith("resnet50_v1d -> recipe ")
    assert done.stderr == "", done.stderr
