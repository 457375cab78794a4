"""The two ten-crop protocols on hand-made images whose pixels encode their coordinates:
"10crop" (corners of the aspect-kept resized image: torchvision's TenCrop, GluonCV) and
"10crop_square" (corners of its central square: AlexNet Sec. 2 and 4.1, cited by He 2015)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.data import DataSpec, build_eval, protocol_label
from bench.data.image_augment import eval_transform
from bench.data.spec import check_spec
from bench.errors import BenchError
from tests.data.helpers import one_line

# ImageNet statistics on 0..255 RGB, as the readers normalise.
MEAN = np.array([123.68, 116.779, 103.939])
STD = np.array([58.393, 57.12, 57.375])


def coordinate_image(h: int, w: int) -> np.ndarray:
    """HWC uint8 RGB: R = row, G = column mod 256, B = 100 * (column // 256)."""
    rows, cols = np.mgrid[0:h, 0:w]
    return np.stack([rows, cols % 256, 100 * (cols // 256)], axis=-1).astype(np.uint8)


def decode(crops: np.ndarray) -> np.ndarray:
    """Normalised (10, 3, S, S) -> the HWC uint8 pixels they were cut from."""
    pixels = crops.transpose(0, 2, 3, 1) * STD + MEAN
    return np.rint(pixels).astype(np.uint8)


def hand_crops(img: np.ndarray, size: int, square: int | None) -> np.ndarray:
    """Corners TL, TR, BL, BR and centre, then "their horizontal reflections" (AlexNet Sec.
    4.1), sliced by hand from ``img`` (or from its central ``square`` x ``square`` patch)."""
    if square is not None:
        h, w = img.shape[:2]
        top, left = (h - square) // 2, (w - square) // 2
        img = img[top:top + square, left:left + square]
    h, w = img.shape[:2]
    cy, cx = (h - size) // 2, (w - size) // 2
    five = [img[:size, :size], img[:size, w - size:], img[h - size:, :size],
            img[h - size:, w - size:], img[cy:cy + size, cx:cx + size]]
    return np.stack(five + [patch[:, ::-1] for patch in five])


def _spec(protocol: str, **kw) -> DataSpec:
    return DataSpec(**{"dataset": "imagenet", "train_augment": "none", "input_size": 224,
                       "resize": 256, "protocol": protocol, **kw})


@pytest.mark.parametrize(("h", "w"), [(256, 300), (300, 256)])
def test_both_ten_crops_of_a_non_square_image_are_the_hand_sliced_ones(h, w):
    img = coordinate_image(h, w)  # shorter side 256 already: no resampling
    wide = decode(eval_transform(_spec("10crop"))(img))
    square = decode(eval_transform(_spec("10crop_square"))(img))
    np.testing.assert_array_equal(wide, hand_crops(img, 224, None))
    np.testing.assert_array_equal(square, hand_crops(img, 224, 256))
    # Same centre (and mirrored centre), different corners.
    np.testing.assert_array_equal(wide[[4, 9]], square[[4, 9]])
    for k in (0, 1, 2, 3, 5, 6, 7, 8):
        assert not np.array_equal(wide[k], square[k])
    # The square's corners: for 256x300, columns 22..245 and 54..277 (not 0.. and 76..299).
    if w == 300:
        assert square[0, 0, 0, 1] == 22 and square[1, 0, -1, 1] == 277 - 256
        assert wide[0, 0, 0, 1] == 0 and wide[1, 0, -1, 1] == 299 - 256


def test_ten_crops_at_other_sizes_use_eval_size_and_eval_resize():
    img = coordinate_image(48, 60)
    spec = _spec("10crop_square", input_size=32, resize=40, eval_size=40, eval_resize=48)
    got = decode(eval_transform(spec)(img))
    np.testing.assert_array_equal(got, hand_crops(img, 40, 48))


@pytest.fixture(scope="module")
def coordinate_folders(tmp_path_factory) -> Path:
    """train/ and val/ with one class of two lossless PNGs, 40x52 and 52x40 (shorter side 40)."""
    root = tmp_path_factory.mktemp("coords")
    for split in ("train", "val"):
        folder = root / split / "a_coords"
        folder.mkdir(parents=True)
        for k, (h, w) in enumerate([(40, 52), (52, 40)]):
            cv2.imwrite(str(folder / f"{k}.png"), coordinate_image(h, w)[:, :, ::-1])  # BGR
    return root


@pytest.mark.parametrize("fmt", ["folder", "rec"])
def test_the_readers_give_the_hand_sliced_crops(fmt, coordinate_folders, tmp_path_factory):
    data_dir = coordinate_folders
    if fmt == "rec":  # the PNG bytes as they are, packed with MXNet's own writer
        import mxnet as mx
        data_dir = tmp_path_factory.mktemp("coords_rec")
        rec = mx.recordio.MXIndexedRecordIO(str(data_dir / "val.idx"), str(data_dir / "val.rec"),
                                            "w")
        for k in range(2):
            png = (coordinate_folders / "val" / "a_coords" / f"{k}.png").read_bytes()
            rec.write_idx(k, mx.recordio.pack(mx.recordio.IRHeader(0, 0.0, k, 0), png))
        rec.close()
    images = [coordinate_image(40, 52), coordinate_image(52, 40)]
    for protocol, square in (("10crop", None), ("10crop_square", 40)):
        spec = _spec(protocol, input_size=32, resize=40, data_format=fmt)
        data = build_eval(spec, str(data_dir), 20)
        batches = [(np.asarray(x), np.asarray(y)) for x, y in data.batches()]
        assert data.crops == 10 and [x.shape for x, _ in batches] == [(2, 10, 3, 32, 32)]
        x = batches[0][0]
        for got, img in zip(x, images):
            np.testing.assert_array_equal(decode(got), hand_crops(img, 32, square))


def test_labels_tell_the_two_apart():
    assert protocol_label(_spec("10crop")) == "10crop"
    assert protocol_label(_spec("10crop_square")) == "10crop_square"
    assert protocol_label(_spec("10crop_square", eval_size=320, eval_resize=320)) == (
        "10crop_square 320 from 320")


def test_square_ten_crop_is_for_imagenet_and_synthetic_gives_its_shape():
    with pytest.raises(BenchError) as e:
        check_spec(DataSpec("cifar10", "cifar", 32, protocol="10crop_square"))
    assert "'10crop_square' is for ImageNet" in one_line(e)
    spec = DataSpec("synthetic", "none", input_size=8, synthetic_size=3, protocol="10crop_square")
    data = build_eval(spec, None, 20)  # 20 images a batch = 2 samples of 10 crops
    shapes = [x.shape for x, _ in data.batches()]
    assert data.crops == 10 and shapes == [(2, 10, 3, 8, 8), (1, 10, 3, 8, 8)]
