"""Missing, incomplete, truncated or corrupt data: one-line BenchErrors that say what to do."""
from __future__ import annotations

import shutil

import pytest

from bench.data import DataSpec, build_eval, build_train, resolve_data_dir
from bench.errors import BenchError
from tests.data.helpers import one_line, write_cifar

IMAGENET = DataSpec("imagenet", "inception", input_size=32, resize=40)
CIFAR10 = DataSpec("cifar10", "cifar", input_size=32, protocol="full")


@pytest.mark.parametrize("spec", [IMAGENET, CIFAR10])
def test_no_data_dir_says_how_to_give_one(spec, monkeypatch):
    monkeypatch.delenv("BENCH_DATA", raising=False)
    with pytest.raises(BenchError) as e:
        build_train(spec, None, 4, 0)
    assert "--data-dir" in one_line(e) and "BENCH_DATA" in one_line(e)


def test_bench_data_is_the_fallback(monkeypatch, tmp_path):
    write_cifar(tmp_path, "cifar10", "bin")
    monkeypatch.setenv("BENCH_DATA", str(tmp_path))
    assert build_eval(CIFAR10, None, 4).num_samples == 7
    assert resolve_data_dir(CIFAR10, None) == tmp_path
    assert resolve_data_dir(DataSpec("digits", "none"), None) is None


def test_missing_dir(tmp_path):
    with pytest.raises(BenchError) as e:
        build_eval(IMAGENET, str(tmp_path / "nope"), 4)
    assert "does not exist" in one_line(e) and str(tmp_path / "nope") in one_line(e)


def test_empty_imagenet_dir_names_the_files_and_the_pack_command(tmp_path):
    with pytest.raises(BenchError) as e:
        build_train(IMAGENET, str(tmp_path), 4, 0)
    msg = one_line(e)
    assert "train.rec+train.idx+val.rec+val.idx" in msg and "train/ and val/" in msg
    assert f"scripts/make_rec.py {tmp_path}" in msg


def test_rec_without_idx_and_forced_formats(tmp_path, packed, image_folders):
    shutil.copy(packed / "val.rec", tmp_path / "val.rec")
    with pytest.raises(BenchError) as e:
        build_eval(IMAGENET, str(tmp_path), 4)
    assert "val.idx" in one_line(e)
    with pytest.raises(BenchError) as e:
        build_eval(DataSpec("imagenet", "none", 32, 40, data_format="rec"), str(image_folders), 4)
    assert "val.rec" in one_line(e)
    with pytest.raises(BenchError) as e:
        build_eval(DataSpec("imagenet", "none", 32, 40, data_format="folder"), str(packed), 4)
    assert "val/" in one_line(e)


def _copy_pair(packed, tmp_path):
    for name in ("val.rec", "val.idx"):
        shutil.copy(packed / name, tmp_path / name)
    return tmp_path / "val.rec", tmp_path / "val.idx"


@pytest.mark.parametrize("cut", [1, 100, 5000])
def test_truncated_rec(tmp_path, packed, cut):
    rec, _ = _copy_pair(packed, tmp_path)
    data = rec.read_bytes()
    rec.write_bytes(data[:-cut])
    with pytest.raises(BenchError) as e:
        build_eval(IMAGENET, str(tmp_path), 4)
    assert "val.rec" in one_line(e) and "make_rec.py" in one_line(e)


@pytest.mark.parametrize("damage", ["cut_line", "drop_line", "garbage", "empty", "zero_rec"])
def test_truncated_or_corrupt_index(tmp_path, packed, damage):
    rec, idx = _copy_pair(packed, tmp_path)
    text = idx.read_text()
    if damage == "cut_line":
        idx.write_text(text.rstrip("\n")[:-3])
    elif damage == "drop_line":
        idx.write_text("".join(text.splitlines(keepends=True)[:-1]))
    elif damage == "garbage":
        idx.write_text(text + "7\tbanana\n")
    elif damage == "empty":
        idx.write_text("")
    else:
        rec.write_bytes(b"\0" * rec.stat().st_size)
    with pytest.raises(BenchError) as e:
        build_eval(IMAGENET, str(tmp_path), 4)
    assert "make_rec.py" in one_line(e)


def test_missing_and_partial_cifar(tmp_path):
    with pytest.raises(BenchError) as e:
        build_train(CIFAR10, str(tmp_path), 4, 0)
    msg = one_line(e)
    assert "data_batch_1.bin" in msg and "cifar-10-batches-py" in msg
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz" in msg and str(tmp_path) in msg
    write_cifar(tmp_path, "cifar10", "bin")
    (tmp_path / "data_batch_4.bin").unlink()
    with pytest.raises(BenchError) as e:
        build_train(CIFAR10, str(tmp_path), 4, 0)
    assert "data_batch_4.bin" in one_line(e)
    with pytest.raises(BenchError) as e:
        build_eval(DataSpec("cifar100", "cifar", 32, protocol="full"), str(tmp_path), 4)
    assert "cifar-100-binary.tar.gz" in one_line(e)


def test_truncated_cifar_binary(tmp_path):
    write_cifar(tmp_path, "cifar10", "bin")
    path = tmp_path / "test_batch.bin"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(BenchError) as e:
        build_eval(CIFAR10, str(tmp_path), 4)
    assert "test_batch.bin" in one_line(e) and "truncated" in one_line(e)


@pytest.mark.parametrize("damage", ["truncate", "not_a_batch"])
def test_corrupt_cifar_pickle(tmp_path, damage):
    write_cifar(tmp_path / "cifar-10-batches-py", "cifar10", "py")
    path = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:500])
    else:
        import pickle
        path.write_bytes(pickle.dumps({b"nothing": 1}))
    with pytest.raises(BenchError) as e:
        build_train(CIFAR10, str(tmp_path), 4, 0)
    assert "data_batch_2" in one_line(e)


@pytest.mark.parametrize("kw, word", [
    (dict(dataset="cifar-10"), "did you mean"),
    (dict(dataset="cifar10", train_augment="inception"), "cifar"),
    (dict(dataset="imagenet", protocol="full"), "10crop"),
    (dict(dataset="cifar10", train_augment="cifar", protocol="10crop"), "full"),
    (dict(dataset="imagenet", input_size=224, resize=200), "resize"),
    (dict(dataset="digits", train_augment="cifar", input_size=32, protocol="full"), "8"),
    (dict(dataset="digits", train_augment="nonee"), "did you mean"),
])
def test_impossible_specs(kw, word):
    spec = DataSpec(**{"train_augment": "none", "input_size": 8, "protocol": "center", **kw})
    with pytest.raises(BenchError) as e:
        build_train(spec, None, 4, 0)
    assert word in one_line(e)


def test_start_batch_out_of_range():
    spec = DataSpec("digits", "none", input_size=8, protocol="full")
    with pytest.raises(BenchError) as e:
        next(build_train(spec, None, 64, 0).epoch(0, start_batch=23))
    assert "22 batches" in one_line(e)
