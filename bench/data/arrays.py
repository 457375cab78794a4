"""Training and evaluation batches from arrays held in memory (digits, CIFAR, synthetic).

Images stay in their stored dtype (uint8 for CIFAR: 150 MB instead of 600 MB as float32) and
are normalised one batch at a time. The order of an epoch and each batch's augmentation come
from generators keyed by (seed, epoch[, batch]), so ``epoch(e, start_batch=k)`` jumps straight
to batch k and yields what a straight run would have.
"""
from __future__ import annotations

from typing import Callable, Iterator, Sequence

import numpy as np

from bench.data.keys import batch_rng, check_shard, check_start, epoch_order
from bench.errors import BenchError

# prepare(raw images (n, C, H, W), generator or None for evaluation) -> float32 batch
Prepare = Callable[[np.ndarray, "np.random.Generator | None"], np.ndarray]


class ArrayTrain:
    """Shuffled, augmented training batches; the last incomplete batch is dropped. With
    ``shard = (i, n)`` each batch is the i-th of n equal slices of the global batch, augmented
    exactly as in a one-worker run (the whole global batch is prepared: arrays are cheap)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int,
                 prepare: Prepare, shard: tuple[int, int] = (0, 1)):
        if batch_size < 1:
            raise BenchError(f"batch size must be positive, got {batch_size}")
        self._images, self._labels = images, labels.astype(np.int32)
        self._batch_size, self._seed, self._prepare = batch_size, seed, prepare
        local = check_shard(batch_size, shard)
        self._slice = slice(shard[0] * local, (shard[0] + 1) * local)
        self.num_samples = len(images)
        self.batches_per_epoch = self.num_samples // batch_size

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        check_start(start_batch, self.batches_per_epoch)
        order = epoch_order(self._seed, epoch, self.num_samples)
        bs = self._batch_size
        for b in range(start_batch, self.batches_per_epoch):
            idx = order[b * bs:(b + 1) * bs]
            data = self._prepare(self._images[idx], batch_rng(self._seed, epoch, b))
            yield data[self._slice], self._labels[idx][self._slice]


class ArrayEval:
    """Every evaluation sample once, in stored order, in batches of at most ``batch_size``."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int,
                 prepare: Prepare, crops: int = 1):
        if batch_size < 1:
            raise BenchError(f"batch size must be positive, got {batch_size}")
        self._images, self._labels = images, labels.astype(np.int32)
        self._batch_size, self._prepare = batch_size, prepare
        self.num_samples = len(images)
        self.crops = crops

    def batches(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        seen = 0
        for start in range(0, self.num_samples, self._batch_size):
            stop = min(start + self._batch_size, self.num_samples)
            yield self._prepare(self._images[start:stop], None), self._labels[start:stop]
            seen += stop - start
        check_count(seen, self.num_samples, "in-memory evaluation set")


def check_count(seen: int, expected: int, what: str) -> None:
    """Evaluation must see every sample exactly once, or its error rates mean nothing."""
    if seen != expected:
        raise BenchError(f"the {what} yielded {seen} samples instead of {expected}: the "
                         "reported error would be wrong; check the data files")


# --- batch operations ------------------------------------------------------------------------

def normalize(images: np.ndarray, mean: Sequence[float], std: Sequence[float],
              scale: float) -> np.ndarray:
    """float32 ``(images * scale - mean) / std`` per channel (axis 1)."""
    shape = (1, -1, 1, 1)
    m = np.asarray(mean, np.float32).reshape(shape)
    s = np.asarray(std, np.float32).reshape(shape)
    return (images.astype(np.float32) * np.float32(scale) - m) / s


def crop_offsets(rng: np.random.Generator, n: int, room: tuple[int, int],
                 flip: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The random part of :func:`pad_crop_flip`: top offsets in [0, room[0]], left offsets in
    [0, room[1]] and mirror flags of ``n`` images, drawn from ``rng`` in that order."""
    ys = rng.integers(0, room[0] + 1, size=n)
    xs = rng.integers(0, room[1] + 1, size=n)
    flips = rng.random(n) < 0.5 if flip else np.zeros(n, bool)
    return ys, xs, flips


def pad_crop_flip(x: np.ndarray, rng: np.random.Generator, size: int, pad: int,
                  flip: bool, mode: str = "constant") -> np.ndarray:
    """He et al. 2015's CIFAR augmentation: pad ``pad`` pixels on each side (``mode``
    "constant": zeros, which after normalisation are the mean colour; "reflect": the image
    mirrored about its edge pixels, which are not repeated), take a random ``size`` crop and,
    when ``flip``, mirror half of the images. Any dtype: raw uint8 pads with black."""
    n, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode=mode)
    ys, xs, flips = crop_offsets(rng, n, (h + 2 * pad - size, w + 2 * pad - size), flip)
    out = np.empty((n, c, size, size), dtype=x.dtype)
    for i in range(n):
        crop = padded[i, :, ys[i]:ys[i] + size, xs[i]:xs[i] + size]
        out[i] = crop[:, :, ::-1] if flips[i] else crop
    return out


def center_crop(x: np.ndarray, size: int) -> np.ndarray:
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top:top + size, left:left + size]
