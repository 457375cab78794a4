"""CIFAR input pipelines (data.normalize, data.pad): the first training batch and an evaluation
batch against a numpy computation written out here from each source's description."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from bench.data import DataSpec, build_eval, build_train
from bench.data.arrays import crop_offsets
from bench.data.keys import batch_rng, epoch_order
from bench.data.spec import check_spec
from bench.errors import BenchError
from tests.data.helpers import one_line, write_cifar

SEED, BATCH = 5, 16

# The statistics as the sources print them (typed here, not imported from the implementation).
OURS = {"cifar10": ([0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]),
        "cifar100": ([0.5071, 0.4865, 0.4409], [0.2673, 0.2564, 0.2762])}
FB = {"cifar10": ([125.3, 123.0, 113.9], [63.0, 62.1, 66.7]),  # fb.resnet.torch cifar10.lua
      "cifar100": ([129.3, 124.1, 112.4], [68.2, 65.4, 70.4])}  # and cifar100.lua
GLUONCV = ([0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010])  # train_cifar10.py Normalize


def _channels(x, mean, std):
    return (x - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]


def expected_normalize(name: str, dataset: str, train: np.ndarray):
    """uint8 (.., 3, 32, 32) -> float64, from the sources' formulas."""
    train = train.astype(np.float64)
    if name == "channel_meanstd":
        return lambda x: _channels(x / 255.0, *OURS[dataset])
    if name == "fb_meanstd":
        return lambda x: _channels(x.astype(np.float64), *FB[dataset])
    if name == "fb_cifar10_meanstd":  # WRN train.lua: CIFAR-10's constants on any data set
        return lambda x: _channels(x.astype(np.float64), *FB["cifar10"])
    if name == "gluoncv_cifar10":
        return lambda x: _channels(x / 255.0, *GLUONCV)
    mean_image = train.mean(axis=0)  # He 2015 / Stochastic Depth: the training set's
    if name == "per_pixel_mean":
        return lambda x: x - mean_image
    std = train.std(ddof=1)  # torch's Tensor:std() over every value, before subtracting
    return lambda x: (x - mean_image) / std


def _reflect_index(n: int, pad: int) -> list[int]:
    """Row/column sources of a reflection-padded axis: 4 3 2 1 | 0 .. 31 | 30 29 28 27."""
    return list(range(pad, 0, -1)) + list(range(n)) + list(range(n - 2, n - 2 - pad, -1))


def expected_train_batch(images, normalize, pad: str, ys, xs, flips) -> np.ndarray:
    out = []
    for img, y, x, flip in zip(images, ys, xs, flips):
        if pad == "zero_raw":  # black border on the stored bytes, normalised afterwards
            canvas = np.zeros((3, 40, 40), np.float64)
            canvas[:, 4:36, 4:36] = img
            crop = normalize(canvas[:, y:y + 32, x:x + 32])
        elif pad == "reflect":
            index = _reflect_index(32, 4)
            crop = normalize(img)[:, index][:, :, index][:, y:y + 32, x:x + 32]
        else:  # zeros added to the normalised image
            canvas = np.zeros((3, 40, 40), np.float64)
            canvas[:, 4:36, 4:36] = normalize(img)
            crop = canvas[:, y:y + 32, x:x + 32]
        out.append(crop[:, :, ::-1] if flip else crop)
    return np.stack(out)


PIPELINES = [  # (dataset, normalize, pad): every recipe family's, plus the default
    ("cifar10", "channel_meanstd", "zero_normalized"),  # default (recipes that state nothing)
    ("cifar10", "per_pixel_mean", "zero_normalized"),  # he2015_cifar10_*
    ("cifar10", "fb_meanstd", "zero_normalized"),  # he2016_cifar10_*
    ("cifar100", "fb_meanstd", "zero_normalized"),  # he2016_cifar100_*
    ("cifar10", "fb_cifar10_meanstd", "reflect"),  # zagoruyko2016_cifar10_*
    ("cifar100", "fb_cifar10_meanstd", "reflect"),  # zagoruyko2016_cifar100_*
    ("cifar10", "per_pixel_mean_global_std", "zero_normalized"),  # huang2016_*
    ("cifar10", "gluoncv_cifar10", "zero_raw"),  # gluoncv_cifar_*
]


@pytest.fixture(scope="module")
def cifar_dirs(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    out = {}
    for dataset in ("cifar10", "cifar100"):
        folder = tmp_path_factory.mktemp(dataset)
        out[dataset] = folder, write_cifar(folder, dataset, "bin", per_batch=8, test=5,
                                           seed=11)  # 40 training images
    return out


@pytest.mark.parametrize(("dataset", "normalize", "pad"), PIPELINES)
def test_first_batches_match_the_sources_computation(cifar_dirs, dataset, normalize, pad):
    folder, written = cifar_dirs[dataset]
    train_x, _ = written["train"]
    spec = DataSpec(dataset, "cifar", input_size=32, protocol="full", normalize=normalize,
                    pad=pad)
    x, y = next(build_train(spec, str(folder), BATCH, seed=SEED).epoch(0))
    idx = epoch_order(SEED, 0, len(train_x))[:BATCH]
    ys, xs, flips = crop_offsets(batch_rng(SEED, 0, 0), BATCH, (8, 8), True)
    assert 0 < flips.sum() < BATCH and (ys == 0).any()  # mirrors and a visible top border
    norm = expected_normalize(normalize, dataset, train_x)
    truth = expected_train_batch(train_x[idx], norm, pad, ys, xs, flips)
    assert x.dtype == np.float32 and x.shape == truth.shape == (BATCH, 3, 32, 32)
    np.testing.assert_allclose(x, truth, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(y, written["train"][1][idx])
    # Evaluation: the same normalisation, no padding.
    test_x, test_y = written["test"]
    ex, ey = next(build_eval(spec, str(folder), 4).batches())
    np.testing.assert_allclose(ex, norm(test_x[:4]), rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(ey, test_y[:4])


def test_the_pipelines_differ_where_their_sources_do(cifar_dirs):
    folder, _ = cifar_dirs["cifar10"]

    def first(**kw):
        spec = DataSpec("cifar10", "cifar", input_size=32, protocol="full", **kw)
        return next(build_train(spec, str(folder), BATCH, seed=SEED).epoch(0))[0]

    ys, xs, _ = crop_offsets(batch_rng(SEED, 0, 0), BATCH, (8, 8), True)
    i = int(np.flatnonzero(ys == 0)[0])  # its top row is border
    raw = first(normalize="gluoncv_cifar10", pad="zero_raw")
    after = first(normalize="gluoncv_cifar10")
    # GluonCV's black border is -mean/std after Normalize; padding after normalising gives 0.
    np.testing.assert_allclose(raw[i, :, 0, 10], -np.divide(*GLUONCV), rtol=1e-5)
    np.testing.assert_array_equal(after[i, :, 0, :], 0)
    reflect = first(normalize="gluoncv_cifar10", pad="reflect")
    assert (reflect[i, :, 0, :] != 0).all()
    # GluonCV's std rescales the default's: same order, different values.
    default = first()
    assert not np.allclose(after, default)
    ratio = np.array(OURS["cifar10"][1]) / np.array(GLUONCV[1])
    inside = (slice(None), slice(None), slice(8, 24), slice(8, 24))  # never border
    np.testing.assert_allclose(after[inside], default[inside] * ratio[:, None, None],
                               rtol=1e-4, atol=1e-4)


def test_per_pixel_statistics_come_from_the_training_split_only(tmp_path):
    written = write_cifar(tmp_path, "cifar10", "bin", per_batch=4, test=6, seed=3)
    spec = DataSpec("cifar10", "none", input_size=32, protocol="full",
                    normalize="per_pixel_mean")
    ex, _ = next(build_eval(spec, str(tmp_path), 6).batches())
    train_mean = written["train"][0].astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(ex, written["test"][0] - train_mean, atol=1e-4)
    both = np.concatenate([written["train"][0], written["test"][0]]).astype(np.float64)
    assert not np.allclose(ex, written["test"][0] - both.mean(axis=0), atol=1e-2)


@pytest.mark.parametrize(("kw", "words"), [
    ({"dataset": "imagenet", "train_augment": "inception", "normalize": "per_pixel_mean"},
     ["CIFAR", "data.normalize", "channel_meanstd"]),
    ({"dataset": "digits", "train_augment": "cifar", "input_size": 8, "protocol": "full",
      "pad": "reflect"}, ["CIFAR", "data.pad", "zero_normalized"]),
    ({"dataset": "cifar10", "train_augment": "none", "input_size": 32, "protocol": "full",
      "pad": "zero_raw"}, ["data.pad", "train_augment 'cifar'"]),
    ({"dataset": "cifar10", "train_augment": "cifar", "input_size": 32, "protocol": "full",
      "normalize": "per_pixel_mean", "pad": "zero_raw"}, ["zero_raw", "zero_normalized"]),
    ({"dataset": "cifar10", "train_augment": "cifar", "input_size": 32, "protocol": "full",
      "normalize": "per_pixel"}, ["unknown data.normalize", "per_pixel_mean"]),
])
def test_senseless_pipelines_are_refused_in_one_line(kw, words):
    with pytest.raises(BenchError) as e:
        check_spec(DataSpec(**kw))
    message = one_line(e)
    assert all(w in message for w in words), message


def test_synthetic_accepts_and_ignores_the_cifar_options():
    spec = DataSpec("synthetic", "cifar", input_size=8, synthetic_size=4, protocol="full",
                    normalize="per_pixel_mean", pad="zero_raw")
    check_spec(spec)
    x, _ = next(build_train(spec, None, 4, seed=0).epoch(0))
    assert x.shape == (4, 3, 8, 8)


def test_every_recipe_is_a_valid_data_spec_and_cifar_ones_state_their_pipeline():
    from bench.recipes import list_recipes, load_recipe
    from bench.recipes.loader import read_toml, recipe_path
    cifar = 0
    for name in list_recipes():
        recipe = load_recipe(name)
        check_spec(DataSpec(**dataclasses.asdict(recipe.data)))
        if recipe.data.dataset not in ("cifar10", "cifar100"):
            continue
        cifar += 1
        raw = read_toml(recipe_path(name))
        tables = [raw.get("data", {})]
        if raw.get("base"):
            tables.append(read_toml(recipe_path(raw["base"])).get("data", {}))
        for key in ("normalize", "pad"):
            assert any(key in t for t in tables), f"{name}: [data] must state {key}"
    assert cifar >= 30


def test_a_recipe_override_of_the_pipeline_is_checked():
    from bench.recipes import load_recipe
    with pytest.raises(BenchError) as e:
        load_recipe("he2015_cifar10_resnet20", ["data.pad=mirror"])
    assert "data.pad" in one_line(e) and "reflect" in one_line(e)


def test_pixel_statistics_are_the_mean_image_and_the_unbiased_std_of_all_values():
    from bench.data.normalize import pixel_statistics
    images = np.array([[[[0, 10]]], [[[4, 250]]], [[[1, 3]]]], np.uint8)  # (3, 1, 1, 2)
    mean_image, std = pixel_statistics(images)
    np.testing.assert_allclose(mean_image, [[[5 / 3, 263 / 3]]], rtol=1e-6)
    values = np.array([0, 10, 4, 250, 1, 3], np.float64)
    assert std == pytest.approx(np.sqrt(((values - values.mean()) ** 2).sum() / 5), rel=1e-12)
    assert std != pytest.approx(values.std(), rel=1e-3)  # not the n-denominator one
