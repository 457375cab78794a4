"""Per-image ImageNet transforms in numpy/OpenCV, driven by an explicit generator.

Gluon's ``transforms`` draw from global random state inside worker threads, so which image gets
which crop depends on thread timing. These take the sample's own generator (keyed by seed,
epoch and position), which makes the folder pipeline deterministic. Images are HWC RGB uint8 in
and CHW float32, normalised with the ImageNet statistics, out.
"""
from __future__ import annotations

import math
from typing import Callable

import cv2
import numpy as np

from bench.data.spec import TEN_CROP_PROTOCOLS, DataSpec, eval_sizes

MEAN = np.array([123.68, 116.779, 103.939], np.float32)
STD = np.array([58.393, 57.12, 57.375], np.float32)
# AlexNet's PCA of ImageNet RGB pixels (0..255), as fb.resnet.torch and GluonCV use them.
EIGVAL = np.array([55.46, 4.794, 1.148], np.float32)
EIGVEC = np.array([[-0.5675, 0.7192, 0.4009],
                   [-0.5808, -0.0045, -0.8140],
                   [-0.5836, -0.6948, 0.4203]], np.float32)
GREY = np.array([0.299, 0.587, 0.114], np.float32)
# He 2015 samples the shorter side in [256, 480] for 224 crops; both ends scale with data.resize.
SCALE_HIGH = 480 / 256

Transform = Callable[[np.ndarray, "np.random.Generator | None"], np.ndarray]


def scale_range(spec: DataSpec) -> tuple[int, int]:
    """He 2015's shorter-side range: [resize, resize * 480/256] ([256, 480] by default)."""
    return spec.resize, max(spec.resize, round(spec.resize * SCALE_HIGH))


def resize_short(img: np.ndarray, size: int) -> np.ndarray:
    """Shorter side to ``size``, aspect kept (the longer side rounds down, as MXNet's
    ImageRecordIter does), bilinear like GluonCV's ``transforms.Resize``."""
    h, w = img.shape[:2]
    if h <= w:
        nh, nw = size, max(1, w * size // h)
    else:
        nh, nw = max(1, h * size // w), size
    if (nh, nw) == (h, w):
        return img
    return cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)


def center_crop(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return img[top:top + size, left:left + size]


def random_crop(img: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    top, left = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
    return img[top:top + size, left:left + size]


def random_resized_crop(img: np.ndarray, rng: np.random.Generator, size: int,
                        min_area: float, ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> np.ndarray:
    """Szegedy et al. 2015's crop: area fraction uniform in [min_area, 1], aspect ratio
    log-uniform in ``ratio``, resized to ``size``; after 10 misses, the centre square."""
    h, w = img.shape[:2]
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        area = h * w * rng.uniform(min_area, 1.0)
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        cw, ch = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
            crop = img[top:top + ch, left:left + cw]
            break
    else:
        crop = center_crop(img, min(h, w))
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR)


def color_jitter(img: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Brightness, contrast and saturation, each scaled by 1 + U(-strength, strength), in a
    random order (float32 HWC)."""
    for op in rng.permutation(3):
        alpha = np.float32(1.0 + rng.uniform(-strength, strength))
        if op == 0:
            img = img * alpha
        elif op == 1:
            img = img * alpha + (1 - alpha) * float((img @ GREY).mean())
        else:
            img = img * alpha + (1 - alpha) * (img @ GREY)[..., None]
    return img


def lighting(img: np.ndarray, rng: np.random.Generator, std: float) -> np.ndarray:
    """Krizhevsky et al. 2012's PCA colour noise: add eigvec @ (N(0, std) * eigval) to every
    pixel (float32 HWC, 0..255)."""
    alpha = rng.normal(0.0, std, 3).astype(np.float32)
    return img + EIGVEC @ (alpha * EIGVAL)


def to_tensor(img: np.ndarray) -> np.ndarray:
    """HWC 0..255 -> normalised CHW float32."""
    return np.ascontiguousarray(((img.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1))


def ten_crop(img: np.ndarray, size: int) -> list[np.ndarray]:
    """The four corners and the centre of ``img``, then their horizontal reflections."""
    h, w = img.shape[:2]
    corners = [img[:size, :size], img[:size, w - size:], img[h - size:, :size],
               img[h - size:, w - size:], center_crop(img, size)]
    return corners + [c[:, ::-1] for c in corners]


def train_transform(spec: DataSpec) -> Transform:
    """The per-image training transform of ``spec.train_augment``."""
    size = spec.input_size
    if spec.train_augment == "none":  # the evaluation's centre crop, at the training size
        return resized_crops(size, spec.resize, "center")
    lo, hi = scale_range(spec)

    def inception(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        img = random_resized_crop(img, rng, size, spec.min_area)
        if rng.random() < 0.5:
            img = img[:, ::-1]
        x = img.astype(np.float32)
        if spec.jitter > 0:
            x = color_jitter(x, rng, spec.jitter)
        if spec.lighting > 0:
            x = lighting(x, rng, spec.lighting)
        return to_tensor(x)

    def he2015(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        # He 2015 Sec. 3.4: shorter side in [256, 480], a 224 crop of it or of its mirror,
        # and "the standard color augmentation" of Krizhevsky et al., i.e. PCA lighting only.
        img = random_crop(resize_short(img, int(rng.integers(lo, hi + 1))), rng, size)
        if rng.random() < 0.5:
            img = img[:, ::-1]
        x = img.astype(np.float32)
        if spec.lighting > 0:
            x = lighting(x, rng, spec.lighting)
        return to_tensor(x)

    return inception if spec.train_augment == "inception" else he2015


def eval_transform(spec: DataSpec) -> Transform:
    """The evaluation of ``spec.protocol``: shorter side to ``eval_resize`` (else ``resize``),
    then crops of ``eval_size`` (else ``input_size``), see :func:`resized_crops`."""
    return resized_crops(*eval_sizes(spec), spec.protocol)


def resized_crops(size: int, resize: int, protocol: str) -> Transform:
    """Shorter side to ``resize`` (aspect kept), then the centre ``size`` crop ("center"), or
    the ten crops (stacked as (10, C, H, W)) of that image ("10crop": torchvision's TenCrop,
    GluonCV) or of its central ``resize`` x ``resize`` square ("10crop_square": AlexNet Sec. 2
    and 4.1, the "standard 10-crop testing" He et al. 2015 cite)."""

    def center(img: np.ndarray, rng=None) -> np.ndarray:
        return to_tensor(center_crop(resize_short(img, resize), size))

    def ten(img: np.ndarray, rng=None) -> np.ndarray:
        img = resize_short(img, resize)
        if protocol == "10crop_square":
            img = center_crop(img, resize)
        return np.stack([to_tensor(c) for c in ten_crop(img, size)])

    return ten if protocol in TEN_CROP_PROTOCOLS else center
