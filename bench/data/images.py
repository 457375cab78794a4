"""ImageNet-style images decoded in Python worker threads: from class folders, or from a .rec
file when ImageRecordIter cannot do the job (ten-crop evaluation).

Batches go through ``gluon.data.DataLoader`` with a thread pool (OpenCV decodes and resizes
without the GIL). Each sample's augmentation draws from a generator keyed by (seed, epoch,
position in the epoch), so the batches do not depend on which thread ran what.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from bench._mxnet import require_mxnet
from bench.data.arrays import check_count
from bench.data.image_augment import Transform
from bench.data.keys import check_shard, check_start, epoch_order, sample_rng
from bench.data.recordio import RecIndex, class_folders, read_record, unpack_image
from bench.errors import BenchError


def _decode(data: bytes | np.ndarray, where: str) -> np.ndarray:
    """An RGB image, or a one-line error naming ``where`` (OpenCV returns None for bytes it
    cannot decode and raises on zero bytes)."""
    buf = np.frombuffer(data, np.uint8)
    if buf.size == 0:
        raise BenchError(f"the image {where} is empty (0 bytes): replace or remove it")
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error:
        img = None
    if img is None or img.size == 0:
        raise BenchError(f"cannot decode the image {where}: the file is corrupt or not an image; "
                         "replace or remove it")
    return img[:, :, ::-1]  # OpenCV decodes to BGR


class FolderSource:
    """``split_dir/<class>/*.jpg``; labels follow ``classes`` (train's sorted class folders), so
    a val/ with a missing class keeps the right indices."""

    def __init__(self, split_dir: Path, classes: Sequence[str] | None = None):
        mx = require_mxnet()
        with warnings.catch_warnings():  # it warns about each stray non-image file
            warnings.simplefilter("ignore")
            dataset = mx.gluon.data.vision.ImageFolderDataset(str(split_dir))
        classes = list(classes) if classes is not None else list(dataset.synsets)
        position = {name: i for i, name in enumerate(classes)}
        unknown = [name for name in dataset.synsets if name not in position]
        if unknown:
            raise BenchError(f"{split_dir / unknown[0]} is a class folder that train/ does not "
                             "have: its images would get no label")
        self.paths = [path for path, _ in dataset.items]
        self.labels = np.array([position[dataset.synsets[label]] for _, label in dataset.items],
                               dtype=np.int32)
        if not self.paths:
            raise BenchError(f"no images (.jpg/.jpeg/.png) in the class folders of {split_dir}")

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, i: int) -> tuple[np.ndarray, int]:
        path = self.paths[i]
        try:
            data = np.fromfile(path, dtype=np.uint8)
        except OSError as e:
            raise BenchError(f"cannot read {path}: {e.strerror}") from None
        return _decode(data, path), int(self.labels[i])


class RecSource:
    """Records of a checked .rec/.idx pair, read with ``pread`` so threads share one handle."""

    def __init__(self, index: RecIndex):
        self.index = index
        self._fd = os.open(index.rec, os.O_RDONLY)

    def __del__(self):
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)

    def __len__(self) -> int:
        return len(self.index)

    def load(self, i: int) -> tuple[np.ndarray, int]:
        offset = int(self.index.offsets[i])
        payload, _ = read_record(self._fd, offset, self.index.rec)
        label, image = unpack_image(payload)
        return _decode(image, f"at index {i} (byte {offset}) of {self.index.rec}"), int(label)


def folder_classes(root: Path) -> list[str] | None:
    """Train's class names when ``root/train`` exists (the label order of both splits)."""
    train = root / "train"
    return class_folders(train) if train.is_dir() else None


class _View:
    """Position -> (transformed image, label) for one pass; what the DataLoader indexes."""

    def __init__(self, source, transform: Transform, order: np.ndarray | None, seed: int,
                 epoch: int):
        self._source, self._transform, self._order = source, transform, order
        self._seed, self._epoch = seed, epoch

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, position: int):
        index = int(self._order[position]) if self._order is not None else position
        img, label = self._source.load(index)
        rng = sample_rng(self._seed, self._epoch, position) if self._order is not None else None
        return self._transform(img, rng), label


class _Batches:
    """Batches ``first``..``first + count - 1`` of ``size`` consecutive positions (the last
    one ends at ``stop``), made lazily: an ImageNet epoch as lists is 1.3 M Python ints. A
    ``part`` (offset, length) keeps only that slice of each batch (one worker's share)."""

    def __init__(self, first: int, count: int, size: int, stop: int,
                 part: tuple[int, int] | None = None):
        self._first, self._count, self._size, self._stop = first, count, size, stop
        self._part = part or (0, size)

    def __len__(self) -> int:
        return self._count

    def __iter__(self):
        offset, length = self._part
        for b in range(self._first, self._first + self._count):
            start = b * self._size + offset
            yield list(range(start, min(start + length, (b + 1) * self._size, self._stop)))


def _stack(samples):
    images, labels = zip(*samples)
    return np.stack(images), np.asarray(labels, dtype=np.int32)


def _loader(view: _View, batches: _Batches, workers: int):
    mx = require_mxnet()
    return mx.gluon.data.DataLoader(view, batch_sampler=batches, batchify_fn=_stack,
                                    num_workers=workers, thread_pool=True)


class ImageTrain:
    """Shuffled, augmented training batches decoded in ``workers`` threads (0: in the caller's
    thread); the last incomplete batch is dropped. With ``shard = (i, n)`` only the i-th of n
    slices of each global batch is decoded, augmented as in a one-worker run."""

    def __init__(self, source, transform: Transform, batch_size: int, seed: int, workers: int,
                 shard: tuple[int, int] = (0, 1)):
        self._source, self._transform = source, transform
        self._batch_size, self._seed, self._workers = batch_size, seed, workers
        local = check_shard(batch_size, shard)
        self._part = (shard[0] * local, local)
        self.num_samples = len(source)
        self.batches_per_epoch = self.num_samples // batch_size

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        check_start(start_batch, self.batches_per_epoch)
        order = epoch_order(self._seed, epoch, self.num_samples)
        count = self.batches_per_epoch - start_batch
        if count:
            view = _View(self._source, self._transform, order, self._seed, epoch)
            batches = _Batches(start_batch, count, self._batch_size, self.num_samples,
                               self._part)
            yield from _loader(view, batches, self._workers)


class ImageEval:
    """Every image once, in stored order; ``crops`` 10 gives (n, 10, C, H, W) batches."""

    def __init__(self, source, transform: Transform, batch_size: int, workers: int,
                 crops: int = 1):
        self._source, self._transform = source, transform
        self._batch_size, self._workers = batch_size, workers
        self.num_samples = len(source)
        self.crops = crops

    def batches(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        n, bs = self.num_samples, self._batch_size
        batches = _Batches(0, -(-n // bs), bs, n)
        seen = 0
        for data, labels in _loader(_View(self._source, self._transform, None, 0, 0), batches,
                                    self._workers):
            seen += len(labels)
            yield data, labels
        check_count(seen, n, "image evaluation set")
