"""ImageNet-style folders and their RecordIO packing, through every reader: labels follow the
sorted class folders, shapes follow input_size/resize, evaluation sees each image once."""
from __future__ import annotations

import numpy as np
import pytest

from bench.data import (DataSpec, build_eval, build_train, in_channels, num_classes,
                        resolve_data_dir)
from bench.data.image_augment import eval_transform
from bench.data.images import FolderSource, ImageEval, ImageTrain
from bench.data.rec_iter import RecEval, RecTrain
from tests.data.helpers import CLASSES, TRAIN_PER_CLASS, VAL_PER_CLASS


def spec(**kw) -> DataSpec:
    base = dict(dataset="imagenet", train_augment="none", input_size=32, resize=40)
    return DataSpec(**{**base, **kw})


def _np(a) -> np.ndarray:
    return np.asarray(a.asnumpy() if hasattr(a, "asnumpy") else a)


def _collect(batches):
    xs, ys = zip(*((_np(x), _np(y)) for x, y in batches))
    return np.concatenate(xs), np.concatenate(ys).astype(int)


def _val_truth(folders):
    """Centre crops and labels of val/ computed file by file: class i = i-th sorted folder."""
    transform = eval_transform(spec())
    source = FolderSource(folders / "val")
    images = np.stack([transform(source.load(i)[0]) for i in range(len(source))])
    paths = [p.split("/")[-2] for p in source.paths]
    return images, np.array([CLASSES.index(name) for name in paths])


@pytest.mark.parametrize("fmt", ["rec", "folder"])
@pytest.mark.parametrize("batch", [4, 5, 10, 64])
def test_center_eval_matches_the_files_once_each(fmt, batch, image_folders, packed):
    data_dir = packed if fmt == "rec" else image_folders
    data = build_eval(spec(data_format=fmt), str(data_dir), batch)
    assert isinstance(data, RecEval if fmt == "rec" else ImageEval) and data.crops == 1
    x, y = _collect(data.batches())
    assert data.num_samples == len(y) == 2 * VAL_PER_CLASS
    truth, labels = _val_truth(image_folders)
    np.testing.assert_array_equal(y, labels)  # val is packed in sorted order
    assert x.shape == (10, 3, 32, 32)
    # ImageRecordIter's resize + centre crop and ours agree to float rounding.
    np.testing.assert_allclose(x, truth, atol=1e-4)


@pytest.mark.parametrize("fmt", ["rec", "folder"])
def test_eval_at_its_own_crop_and_resize(fmt, image_folders, packed):
    # He 2016 tests 320 crops from side 320 of nets trained on 224 crops from side [256, 480].
    data_dir = packed if fmt == "rec" else image_folders
    own = spec(eval_size=44, eval_resize=48, data_format=fmt)
    x, _ = _collect(build_eval(own, str(data_dir), 4).batches())
    assert x.shape == (10, 3, 44, 44)
    source = FolderSource(image_folders / "val")
    first = eval_transform(spec(input_size=44, resize=48))(source.load(0)[0])
    np.testing.assert_allclose(x[0], first, atol=1e-4)
    x_train, _ = _collect(build_train(own, str(data_dir), 4, 0, 0).epoch(0))
    assert x_train.shape[1:] == (3, 32, 32)  # training keeps input_size


@pytest.mark.parametrize(("kw", "label"), [
    ({"input_size": 224, "resize": 256}, "center"),
    ({"input_size": 224, "resize": 256, "protocol": "10crop"}, "10crop"),
    ({"input_size": 224, "resize": 256, "eval_size": 320, "eval_resize": 320},
     "center 320 from 320"),
    ({"input_size": 32, "resize": 40}, "center 32 from 40"),
])
def test_protocol_label_names_sizes_only_when_they_are_not_224_from_256(kw, label):
    from bench.data import protocol_label
    assert protocol_label(spec(**kw)) == label


def test_protocol_label_of_array_data():
    from bench.data import protocol_label
    assert protocol_label(DataSpec("cifar10", "cifar", 32, protocol="full")) == "full"
    assert protocol_label(DataSpec("cifar10", "cifar", 32, protocol="center",
                                   eval_size=28)) == "center 28"


@pytest.mark.parametrize("fmt", ["rec", "folder"])
def test_ten_crop_eval(fmt, image_folders, packed):
    data_dir = packed if fmt == "rec" else image_folders
    data = build_eval(spec(protocol="10crop", data_format=fmt), str(data_dir), 40, 2)
    batches = [(_np(x), _np(y)) for x, y in data.batches()]
    assert data.crops == 10 and [x.shape for x, _ in batches] == [(4, 10, 3, 32, 32)] * 2 + [
        (2, 10, 3, 32, 32)]  # batch 40 images = 4 samples of 10 crops
    x = np.concatenate([b[0] for b in batches])
    truth, labels = _val_truth(image_folders)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), labels)
    np.testing.assert_allclose(x[:, 4], truth, atol=1e-4)  # the centre crop
    np.testing.assert_allclose(x[:, 5:], x[:, :5, :, :, ::-1], atol=1e-6)  # mirrored half
    assert not np.allclose(x[:, 0], x[:, 3])  # corners differ


@pytest.mark.parametrize("augment", ["none", "inception", "he2015_scale"])
@pytest.mark.parametrize("fmt", ["rec", "folder"])
def test_train_batches_have_the_right_labels(fmt, augment, image_folders, packed):
    data_dir = packed if fmt == "rec" else image_folders
    train = build_train(spec(train_augment=augment, data_format=fmt), str(data_dir), 5, 0, 2)
    assert isinstance(train, RecTrain if fmt == "rec" else ImageTrain)
    assert train.num_samples == 12 and train.batches_per_epoch == 2
    x, y = _collect(train.epoch(0))
    assert x.shape == (10, 3, 32, 32) and x.dtype == np.float32
    assert np.isfinite(x).all() and abs(x.mean()) < 1.5
    assert set(np.bincount(y)) <= set(range(TRAIN_PER_CLASS + 1)) and len(np.bincount(y)) == 2
    if augment == "none":
        # Each training sample is the centre crop of one training file of its label's class.
        source = FolderSource(image_folders / "train")
        transform = eval_transform(spec())
        files = np.stack([transform(source.load(i)[0]) for i in range(len(source))])
        for image, label in zip(x, y):
            nearest = np.abs(files - image).reshape(len(files), -1).max(axis=1).argmin()
            assert np.abs(files[nearest] - image).max() < 1e-4
            assert source.labels[nearest] == label


def test_folder_training_is_deterministic_across_workers_and_resumes(image_folders):
    s = spec(train_augment="inception", data_format="folder")
    straight = [(_np(x), _np(y)) for x, y in build_train(s, str(image_folders), 3, 4, 2).epoch(1)]
    serial = list(build_train(s, str(image_folders), 3, 4, 0).epoch(1))
    resumed = list(build_train(s, str(image_folders), 3, 4, 2).epoch(1, start_batch=2))
    assert len(straight) == 4 and len(resumed) == 2
    for (a, la), (b, lb) in zip(straight, serial):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)
    for (a, la), (b, lb) in zip(straight[2:], resumed):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)
    other = next(iter(build_train(s, str(image_folders), 3, 4, 2).epoch(2)))
    assert not np.array_equal(other[0], straight[0][0])


def test_rec_training_order_is_seeded_per_epoch_and_resumes(packed):
    s = spec(train_augment="inception")
    labels = lambda seed, epoch, start=0: [  # noqa: E731
        _np(y).tolist() for _, y in build_train(s, str(packed), 2, seed, 1).epoch(epoch, start)]
    full = labels(3, 0)
    assert len(full) == 6 and labels(3, 0) == full and labels(3, 0, 4) == full[4:]
    assert labels(3, 1) != full or labels(3, 2) != full


def test_auto_format_prefers_rec_and_falls_back_to_folders(image_folders, packed, tmp_path):
    assert isinstance(build_eval(spec(), str(packed), 4), RecEval)
    assert isinstance(build_eval(spec(), str(image_folders), 4), ImageEval)
    assert resolve_data_dir(spec(), str(packed)) == packed
    nested = tmp_path / "root" / "imagenet"
    nested.parent.mkdir()
    nested.symlink_to(packed, target_is_directory=True)
    assert resolve_data_dir(spec(), str(tmp_path / "root")) == nested  # BENCH_DATA=root
    assert build_eval(spec(), str(tmp_path / "root"), 4).num_samples == 10


def test_val_labels_follow_train_classes_when_val_lacks_one(tmp_path, image_folders):
    import shutil
    root = tmp_path / "data"
    shutil.copytree(image_folders, root)
    shutil.rmtree(root / "val" / CLASSES[0])  # val has only b_flower, still class 1
    data = build_eval(spec(data_format="folder"), str(root), 4)
    assert set(_collect(data.batches())[1]) == {1}
    from bench.data.recordio import pack_image_folder
    pack_image_folder(root, tmp_path / "rec", resize=48)
    assert set(_collect(build_eval(spec(), str(tmp_path / "rec"), 4).batches())[1]) == {1}


def test_class_count_and_channels():
    assert num_classes(spec()) == 1000 and in_channels(spec()) == 3
    assert num_classes(spec(num_classes=2)) == 2


# --- sharding over the workers of a multi-worker job ------------------------------------------

def test_folder_shards_are_the_slices_of_the_one_worker_batches(image_folders):
    s = spec(train_augment="inception", data_format="folder")
    whole = list(build_train(s, str(image_folders), 4, 1, 0).epoch(0))
    parts = [list(build_train(s, str(image_folders), 4, 1, 0, shard=(i, 2)).epoch(0))
             for i in range(2)]
    assert [len(p) for p in parts] == [len(whole)] * 2 == [3, 3]  # same number of steps
    for b, (x, y) in enumerate(whole):
        np.testing.assert_array_equal(np.concatenate([_np(p[b][0]) for p in parts]), _np(x))
        np.testing.assert_array_equal(np.concatenate([_np(p[b][1]) for p in parts]), _np(y))


def test_rec_shards_read_disjoint_parts_in_equal_steps(packed):
    s = spec(train_augment="none")
    parts = [[_np(x) for x, _ in build_train(s, str(packed), 4, 0, 1, shard=(i, 2)).epoch(0)]
             for i in range(2)]
    assert [len(p) for p in parts] == [3, 3] and parts[0][0].shape == (2, 3, 32, 32)
    first, second = (np.concatenate(p) for p in parts)
    # 12 training images, 6 per part: no image is in both parts.
    assert not any(np.allclose(a, b) for a in first for b in second)


def test_a_global_batch_must_split_evenly_over_the_workers(image_folders):
    from bench.errors import BenchError
    with pytest.raises(BenchError, match="cannot be split evenly over 2 workers"):
        build_train(spec(data_format="folder"), str(image_folders), 5, 0, 0, shard=(0, 2))
