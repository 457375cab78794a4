"""ImageNet (or any class-folder image set): pick the reader for the split's format and protocol.

RecordIO goes through ImageRecordIter for training and centre-crop evaluation, and through the
Python pipeline for both ten-crop evaluations (ImageRecordIter cannot make ten crops); class
folders always go through the Python pipeline. A .rec that ImageRecordIter reads has its images'
headers checked first (:mod:`.image_check`): a bad image would kill the process inside MXNet.
"""
from __future__ import annotations

from bench.data.image_augment import eval_transform, train_transform
from bench.data.image_check import check_images
from bench.data.images import FolderSource, ImageEval, ImageTrain, RecSource, folder_classes
from bench.data.locate import imagenet_split
from bench.data.rec_iter import RecEval, RecTrain
from bench.data.recordio import check_rec
from bench.data.spec import DataSpec, crops


def build_imagenet_train(spec: DataSpec, data_dir, batch_size: int, seed: int, workers: int,
                         shard: tuple[int, int] = (0, 1)):
    split = imagenet_split(spec, data_dir, "train")
    if split.rec is not None:
        index = check_rec(split.rec, split.idx)
        check_images(index)
        return RecTrain(index, spec, batch_size, seed, workers, shard)
    source = FolderSource(split.folder)
    return ImageTrain(source, train_transform(spec), batch_size, seed, workers, shard)


def build_imagenet_eval(spec: DataSpec, data_dir, batch_size: int, workers: int,
                        split: str = "val"):
    """The ``split`` ("val"; "train": its images under the evaluation transform, in file
    order, for int8 calibration) read once."""
    split = imagenet_split(spec, data_dir, split)
    views = crops(spec)
    if split.rec is not None:
        index = check_rec(split.rec, split.idx)
        if views == 1:
            check_images(index)
            return RecEval(index, spec, batch_size, workers)
        source = RecSource(index)
    else:
        source = FolderSource(split.folder, folder_classes(split.root))
    return ImageEval(source, eval_transform(spec), batch_size, workers, views)
