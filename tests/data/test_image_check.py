"""The header check of images in a .rec (bench.data.image_check) against OpenCV's decoder, the
one MXNet's ImageRecordIter uses; and one-line errors for bad images read in Python."""
from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.data.image_check import check_images, image_problem
from bench.data.recordio import MAGIC, check_rec
from bench.errors import BenchError
from tests.data.helpers import one_line


def _image(ext: str, progressive: bool = False, gray: bool = False) -> bytes:
    img = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    if gray:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    params = [cv2.IMWRITE_JPEG_PROGRESSIVE, 1] if progressive else []
    return cv2.imencode(ext, img, params)[1].tobytes()


def _decodes(data: bytes) -> bool:
    if not data:
        return False
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        return False
    return img is not None and img.size > 0


def _problem(data: bytes) -> str | None:
    return image_problem(lambda p, n: data[p:p + n], len(data))


@pytest.mark.parametrize("ext, progressive, gray", [
    (".jpg", False, False), (".jpg", False, True), (".jpg", True, False), (".png", False, False),
])
def test_every_cut_of_an_image_is_refused_exactly_when_opencv_cannot_decode_it(ext, progressive,
                                                                                gray):
    # The oracle is OpenCV itself: an accepted image must decode (else MXNet's iterator dies),
    # and nothing that decodes is refused.
    data = _image(ext, progressive, gray)
    wrong = [(cut, _problem(data[:cut])) for cut in range(len(data) + 1)
             if (_problem(data[:cut]) is None) != _decodes(data[:cut])]
    assert not wrong, wrong[:5]
    assert _problem(data) is None


_SOF = b"\xff\xc0\x00\x11\x08\x00\x1e\x00\x28"  # baseline frame: 8 bits, 30 rows, 40 columns


@pytest.mark.parametrize("data, phrase", [
    (b"", "is empty (0 bytes)"),
    (b"\xff\xd8\xff\xe0 not a jpeg", "headers run past its end"),
    (b"\x89PNG\r\n\x1a\n garbage", "PNG without its IHDR header"),
    (b"GIF89a nothing", "is not an image OpenCV decodes"),
    (_image(".jpg").replace(_SOF, _SOF[:5] + b"\x00\x00" + _SOF[7:]),
     "is a 40x0 JPEG (a zero side)"),
])
def test_bad_images_are_named_by_what_is_wrong(data, phrase):
    assert phrase in _problem(data)
    assert not _decodes(data)


def _rec(folder: Path, images: list[bytes]):
    import mxnet as mx
    folder.mkdir(exist_ok=True)
    rec, idx = folder / "val.rec", folder / "val.idx"
    writer = mx.recordio.MXIndexedRecordIO(str(idx), str(rec), "w")
    for i, image in enumerate(images):
        writer.write_idx(i, mx.recordio.pack(mx.recordio.IRHeader(0, float(i), i, 0), image))
    writer.close()
    return check_rec(rec, idx)


def test_a_rec_with_a_bad_image_is_refused_naming_its_index(tmp_path):
    good = _image(".jpg")
    check_images(_rec(tmp_path / "ok", [good, _image(".png"), good]))
    with pytest.raises(BenchError) as info:
        check_images(_rec(tmp_path / "bad", [good, good, good[:100], good]))
    message = one_line(info)
    assert "the image at index 2 (byte " in message
    assert f"of {tmp_path / 'bad' / 'val.rec'} is a JPEG" in message and "make_rec.py" in message


def test_a_record_split_around_the_magic_word_is_checked_whole(tmp_path):
    # RecordIO splits a payload where it holds the magic word; a JPEG comment (COM) may hold it.
    good = _image(".jpg")
    comment = b"\xff\xfe" + struct.pack(">H", 2 + 8) + struct.pack("<I", MAGIC) * 2
    split = good[:2] + comment + good[2:]
    assert _decodes(split)
    check_images(_rec(tmp_path / "split", [split, good]))
    with pytest.raises(BenchError, match="index 0"):
        check_images(_rec(tmp_path / "split_cut", [split[:len(comment) + 30], good]))


@pytest.mark.parametrize("name, data, phrase", [
    ("zero.jpg", b"", "is empty (0 bytes)"),
    ("bad.jpg", b"\xff\xd8\xff\xe0 not a jpeg", "cannot decode the image"),
])
@pytest.mark.parametrize("workers", [0, 2])
def test_a_bad_image_in_a_folder_is_one_line_naming_it(tmp_path, name, data, phrase, workers):
    from bench.data import DataSpec, build_eval
    folder = tmp_path / "val" / "a_class"
    folder.mkdir(parents=True)
    (folder / "00.jpg").write_bytes(_image(".jpg"))
    (folder / name).write_bytes(data)
    spec = DataSpec("imagenet", "none", input_size=16, resize=20)
    evaluation = build_eval(spec, str(tmp_path), 4, workers)
    with pytest.raises(BenchError) as info:
        list(evaluation.batches())
    assert phrase in one_line(info) and str(folder / name) in one_line(info)
