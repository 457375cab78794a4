"""The CIFAR input normalisations (``data.normalize``), each as its source wrote it.

A normaliser maps a uint8 batch (n, 3, H, W) to the float32 network input. The statistics are
typed here once; bench/data/README.md says which recipe family uses which and where each was
read. The per-pixel ones are computed from the training split in use (all 50k images).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from bench.data.arrays import normalize
from bench.data.spec import PER_PIXEL_NORMALIZATIONS

# Per-channel statistics of each training set on [0, 1] pixels (the exact standard deviation,
# rounded to 4 digits); the default "channel_meanstd".
MEAN = {"cifar10": (0.4914, 0.4822, 0.4465), "cifar100": (0.5071, 0.4865, 0.4409)}
STD = {"cifar10": (0.2470, 0.2435, 0.2616), "cifar100": (0.2673, 0.2564, 0.2762)}
# fb.resnet.torch's constants on 0..255 pixels (facebook/fb.resnet.torch@985e569
# datasets/cifar10.lua, datasets/cifar100.lua): "fb_meanstd". WRN's train.lua
# (szagoruyko/wide-residual-networks@ae6d0d0) hard-codes the CIFAR-10 pair for every data set:
# "fb_cifar10_meanstd".
FB_MEAN = {"cifar10": (125.3, 123.0, 113.9), "cifar100": (129.3, 124.1, 112.4)}
FB_STD = {"cifar10": (63.0, 62.1, 66.7), "cifar100": (68.2, 65.4, 70.4)}
# GluonCV's train_cifar10.py / train_mixup_cifar10.py Normalize() on [0, 1] pixels
# (dmlc/gluon-cv@5677756): the often-copied std, not the exact one: "gluoncv_cifar10".
GLUONCV_MEAN = (0.4914, 0.4822, 0.4465)
GLUONCV_STD = (0.2023, 0.1994, 0.2010)

Normalizer = Callable[[np.ndarray], np.ndarray]


def pixel_statistics(images: np.ndarray) -> tuple[np.ndarray, float]:
    """The per-pixel mean image (C, H, W) float32 of uint8 ``images`` and the standard
    deviation of all their values (one number; n - 1 in the denominator, as torch's
    ``Tensor:std()``). Integer sums keep both exact whatever the number of images."""
    n = len(images)
    total = images.sum(axis=0, dtype=np.int64)
    squares = 0
    for start in range(0, n, 2048):  # 25 MB of int32 at a time (squares fit: 255^2 < 2^31)
        chunk = images[start:start + 2048].astype(np.int32)
        chunk *= chunk
        squares += int(chunk.sum(dtype=np.int64))
    count, sum_all = total.size * n, int(total.sum())
    variance = (count * squares - sum_all * sum_all) / (count * (count - 1))
    return (total / n).astype(np.float32), float(np.sqrt(variance))


def cifar_normalizer(name: str, dataset: str, train_images: np.ndarray | None) -> Normalizer:
    """The ``data.normalize`` = ``name`` of CIFAR ``dataset``; ``train_images`` (uint8) are
    needed by the per-pixel normalisations only."""
    if name == "channel_meanstd":
        mean, std = MEAN[dataset], STD[dataset]
        return lambda x: normalize(x, mean, std, 1.0 / 255)
    if name in ("fb_meanstd", "fb_cifar10_meanstd"):
        key = dataset if name == "fb_meanstd" else "cifar10"
        return lambda x: normalize(x, FB_MEAN[key], FB_STD[key], 1.0)
    if name == "gluoncv_cifar10":
        return lambda x: normalize(x, GLUONCV_MEAN, GLUONCV_STD, 1.0 / 255)
    assert name in PER_PIXEL_NORMALIZATIONS and train_images is not None, name
    mean_image, std = pixel_statistics(train_images)
    if name == "per_pixel_mean":  # He 2015: 0..255 pixels minus the mean image, no scaling
        return lambda x: x.astype(np.float32) - mean_image
    scale = np.float32(1.0 / std)  # Huang 2016: then divided by the one standard deviation
    return lambda x: (x.astype(np.float32) - mean_image) * scale
