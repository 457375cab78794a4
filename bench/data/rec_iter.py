"""ImageNet from RecordIO through MXNet's C++ ``ImageRecordIter`` (decoding and augmentation
in native threads: the fast path for training and centre-crop evaluation).

Determinism: each epoch gets a fresh iterator whose shuffle ``seed`` and augmentation
``seed_aug`` are derived from (seed, epoch), so an epoch's order is a function of the run's
seed. A run resumed at (epoch, start_batch) rebuilds that epoch's iterator and reads and
discards the first ``start_batch`` batches: same order, but skipping costs their decoding, and
augmentation is not guaranteed to repeat bit for bit (it depends on how the native threads split
the work). Use the folder format when exact replay matters.
"""
from __future__ import annotations

from typing import Any, Iterator

from bench._mxnet import require_mxnet
from bench.data.arrays import check_count
from bench.data.image_augment import MEAN, STD, scale_range
from bench.data.keys import check_shard, check_start
from bench.data.recordio import RecIndex
from bench.data.spec import DataSpec, eval_sizes


def _common(index: RecIndex, batch_size: int, workers: int, size: int) -> dict[str, Any]:
    return dict(path_imgrec=str(index.rec), path_imgidx=str(index.idx),
                data_shape=(3, size, size), batch_size=batch_size,
                preprocess_threads=max(1, workers), verbose=False,
                mean_r=float(MEAN[0]), mean_g=float(MEAN[1]), mean_b=float(MEAN[2]),
                std_r=float(STD[0]), std_g=float(STD[1]), std_b=float(STD[2]))


def train_augment_args(spec: DataSpec) -> dict[str, Any]:
    """ImageRecordIter's arguments for ``spec.train_augment``."""
    if spec.train_augment == "inception":
        return dict(random_resized_crop=True, min_random_area=spec.min_area,
                    max_random_area=1.0, min_aspect_ratio=3 / 4, max_aspect_ratio=4 / 3,
                    brightness=spec.jitter, contrast=spec.jitter, saturation=spec.jitter,
                    pca_noise=spec.lighting, rand_mirror=True)
    if spec.train_augment == "he2015_scale":
        # Shorter side to the top of the range, then a random scale s in [lo/hi, 1] (applied by
        # the iterator as an affine warp), i.e. shorter side uniform in [lo, hi]; random crop.
        lo, hi = scale_range(spec)
        return dict(resize=hi, min_random_scale=lo / hi, max_random_scale=1.0, rand_crop=True,
                    rand_mirror=True, pca_noise=spec.lighting)
    return dict(resize=spec.resize)  # "none": a centre crop at the training size


def _iter_seed(seed: int, epoch: int, salt: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + salt) % (2 ** 31 - 1)


class RecTrain:
    """Training batches of ImageRecordIter (NDArrays, normalised, float32 labels). With
    ``shard = (i, n)`` the iterator reads the i-th of n parts of the file (``part_index``,
    ``num_parts``) in batches of the per-worker share; every worker runs the same number of
    batches, that of the global batch."""

    def __init__(self, index: RecIndex, spec: DataSpec, batch_size: int, seed: int, workers: int,
                 shard: tuple[int, int] = (0, 1)):
        local = check_shard(batch_size, shard)
        self._args = {**_common(index, local, workers, spec.input_size),
                      **train_augment_args(spec)}
        if shard[1] > 1:
            self._args.update(part_index=shard[0], num_parts=shard[1])
        self._seed = seed
        self.num_samples = len(index)
        self.batches_per_epoch = self.num_samples // batch_size

    def iterator(self, epoch: int):
        mx = require_mxnet()
        return mx.io.ImageRecordIter(shuffle=True, seed=_iter_seed(self._seed, epoch, 1),
                                     seed_aug=_iter_seed(self._seed, epoch, 2), **self._args)

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[tuple[Any, Any]]:
        check_start(start_batch, self.batches_per_epoch)
        if start_batch == self.batches_per_epoch:
            return
        it = self.iterator(epoch)
        for b in range(self.batches_per_epoch):  # the wrapped last batch is never reached
            batch = it.next()
            if b >= start_batch:
                yield batch.data[0], batch.label[0]


class RecEval:
    """Centre-crop evaluation batches; the iterator's wrapped-around padding is cut off.

    (With ``round_batch=False`` MXNet 1.9.1 reports ``pad=0`` on a short last batch and fills it
    with stale samples, so the default ``round_batch=True`` and its correct ``pad`` are used.)"""

    crops = 1

    def __init__(self, index: RecIndex, spec: DataSpec, batch_size: int, workers: int):
        # The iterator refuses a batch larger than the whole file.
        batch_size = min(batch_size, len(index))
        crop, side = eval_sizes(spec)
        self._args = {**_common(index, batch_size, workers, crop), "resize": side}
        self.num_samples = len(index)

    def batches(self) -> Iterator[tuple[Any, Any]]:
        mx = require_mxnet()
        it = mx.io.ImageRecordIter(shuffle=False, round_batch=True, **self._args)
        seen = 0
        for batch in it:
            data, label = batch.data[0], batch.label[0]
            keep = data.shape[0] - batch.pad
            if batch.pad:
                data, label = data[:keep], label[:keep]
            seen += keep
            yield data, label
        check_count(seen, self.num_samples, f"record file {self._args['path_imgrec']}")
