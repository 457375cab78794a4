"""scripts/make_rec.py and the im2rec wrapper behind it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.data.recordio import check_rec, pack_image_folder, read_record, unpack_image
from bench.errors import BenchError
from tests.data.helpers import one_line

ROOT = Path(__file__).resolve().parents[2]


def _script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "make_rec.py"), *args],
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_script_packs_resized_images_with_sorted_folder_labels(image_folders, tmp_path):
    out = tmp_path / "rec"
    done = _script(str(image_folders), "--out", str(out), "--resize", "48", "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "train: 12 images" in done.stdout and "val: 10 images" in done.stdout
    assert sorted(p.name for p in out.iterdir()) == ["train.idx", "train.rec", "val.idx",
                                                     "val.rec"]  # no scratch files left
    index = check_rec(out / "val.rec", out / "val.idx")
    fd = os.open(index.rec, os.O_RDONLY)
    try:
        records = [unpack_image(read_record(fd, int(o), index.rec)[0]) for o in index.offsets]
    finally:
        os.close(fd)
    assert [int(label) for label, _ in records] == [0] * 5 + [1] * 5  # a_china, b_flower
    for _, data in records:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert min(img.shape[:2]) == 48 and max(img.shape[:2]) == 60  # 64x80 -> 48x60


def test_script_error_is_one_line_and_exit_2(tmp_path):
    done = _script(str(tmp_path))
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr.startswith("error: no ") and "train" in done.stderr


def test_unreadable_image_is_named(image_folders, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(image_folders / "train", root / "train")
    (root / "train" / "a_china" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(BenchError) as e:
        pack_image_folder(root, tmp_path / "out", resize=32)
    assert "broken.jpg" in one_line(e)
    assert not (tmp_path / "out" / "train.rec").exists()
