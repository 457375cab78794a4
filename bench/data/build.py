"""The two entry points the engine calls, and the interfaces of what they return."""
from __future__ import annotations

from typing import Any, Iterator, Protocol

from bench.data.imagenet import build_imagenet_eval, build_imagenet_train
from bench.data.small import build_small_eval, build_small_train
from bench.data.spec import DataSpec, check_spec, crops
from bench.errors import BenchError


class TrainData(Protocol):
    """Training batches of (float32 NCHW normalised data, (N,) labels), numpy or NDArray."""

    num_samples: int
    # num_samples // batch_size (the global batch): the incomplete last batch is dropped, and
    # every worker of a sharded job runs this many steps, each on its slice of the batch.
    batches_per_epoch: int

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[tuple[Any, Any]]:
        """Batches ``start_batch``.. of ``epoch``; order and augmentation depend only on (seed,
        epoch, batch), except for the RecordIO reader (see ``bench.data.rec_iter``)."""
        ...


class EvalData(Protocol):
    """Every evaluation sample exactly once; data (n, crops, C, H, W) when crops > 1."""

    num_samples: int
    crops: int

    def batches(self) -> Iterator[tuple[Any, Any]]:
        ...


def _check_batch(batch_size: int) -> None:
    if batch_size < 1:
        raise BenchError(f"batch size must be positive, got {batch_size}")


def build_train(spec: DataSpec, data_dir: str | None, batch_size: int, seed: int,
                num_workers: int = 2, shard: tuple[int, int] = (0, 1)) -> TrainData:
    """The training split of ``spec.dataset`` (``data_dir`` or BENCH_DATA for ImageNet and
    CIFAR), in batches of ``batch_size``, shuffled and augmented from ``seed``. With ``shard =
    (i, n)`` (worker i of n) each batch is that worker's 1/n of the global ``batch_size``."""
    check_spec(spec)
    _check_batch(batch_size)
    if spec.dataset == "imagenet":
        return build_imagenet_train(spec, data_dir, batch_size, seed, max(0, num_workers),
                                    shard)
    return build_small_train(spec, data_dir, batch_size, seed, shard)


def build_eval(spec: DataSpec, data_dir: str | None, batch_size: int,
               num_workers: int = 2) -> EvalData:
    """The evaluation split under ``spec.protocol``. Ten-crop batches hold
    ``batch_size // 10`` samples (at least 1), so a batch is still about ``batch_size`` images."""
    check_spec(spec)
    _check_batch(batch_size)
    if crops(spec) > 1:
        batch_size = max(1, batch_size // crops(spec))
    if spec.dataset == "imagenet":
        return build_imagenet_eval(spec, data_dir, batch_size, max(0, num_workers))
    return build_small_eval(spec, data_dir, batch_size)


def build_calibration(spec: DataSpec, data_dir: str | None, batch_size: int,
                      num_workers: int = 2) -> tuple[EvalData, str, str]:
    """Batches to calibrate an int8 net on: the training split under the evaluation transform
    (unaugmented), so the images scored are never the ones the ranges were fitted on. Returns
    (data, split used, a note for the user). ImageNet without a train split here falls back
    to the validation images, and the note says so; the synthetic set has no fixed train split."""
    check_spec(spec)
    _check_batch(batch_size)
    if spec.dataset == "imagenet":
        try:
            data = build_imagenet_eval(spec, data_dir, batch_size, max(0, num_workers), "train")
        except BenchError as err:
            note = (f"no ImageNet training split found ({err}); calibrated on the first "
                    "validation batches, which are also scored")
            return build_imagenet_eval(spec, data_dir, batch_size, max(0, num_workers)), "val", note
        return data, "train", "ImageNet training split, first batches in file order"
    if spec.dataset == "synthetic":
        return (build_small_eval(spec, data_dir, batch_size), "val",
                "the synthetic set has no fixed training split: calibrated on the first "
                "evaluation batches, which are also scored")
    return (build_small_eval(spec, data_dir, batch_size, split="train"), "train",
            f"{spec.dataset} training split, unaugmented, evaluation transform")
