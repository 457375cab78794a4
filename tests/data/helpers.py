"""Writers of test data (under tmp paths, never committed): small JPEG class folders cut from
scikit-learn's two sample photos, and CIFAR files in both official formats."""
from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np

# Class folder names sort as a_china < b_flower, so a_china is label 0.
CLASSES = ("a_china", "b_flower")
TRAIN_PER_CLASS, VAL_PER_CLASS = 6, 5


def _photos() -> list[np.ndarray]:
    import sklearn.datasets
    folder = Path(sklearn.datasets.__file__).parent / "images"
    return [cv2.imread(str(folder / name)) for name in ("china.jpg", "flower.jpg")]  # BGR


def write_image_folders(root: Path) -> Path:
    """root/{train,val}/{a_china,b_flower}/NN.jpg: 64x80 (landscape) and 80x64 (portrait)
    crops, each a different window of its class's photo."""
    for split, count in (("train", TRAIN_PER_CLASS), ("val", VAL_PER_CLASS)):
        for name, photo in zip(CLASSES, _photos()):
            folder = root / split / name
            folder.mkdir(parents=True)
            for k in range(count):
                top, left = 25 * k + (split == "val") * 13, 40 * k
                crop = photo[top:top + 220, left:left + 260]
                size = (80, 64) if k % 2 == 0 else (64, 80)  # (width, height)
                cv2.imwrite(str(folder / f"{k:02d}.jpg"), cv2.resize(crop, size))
    return root


def cifar_arrays(n: int, classes: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n images whose pixels encode their index and channel, and labels (i + offset) % classes."""
    i = np.arange(n)
    labels = (i + offset) % classes
    images = np.empty((n, 3, 32, 32), np.uint8)
    for c in range(3):
        images[:, c] = ((i + offset) * 7 + c * 50)[:, None, None] % 256
    images[:, :, 0, 0] = 255  # a corner marker that shows flips and crops
    return images, labels


def write_cifar(folder: Path, dataset: str, kind: str, per_batch: int = 3,
                test: int = 7, seed: int | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Write a small copy of the official files; returns the train and test arrays. With
    ``seed`` the pixels are uniform random bytes instead (statistics worth computing)."""
    folder.mkdir(parents=True, exist_ok=True)
    classes = 10 if dataset == "cifar10" else 100
    if dataset == "cifar10":
        train_names = [f"data_batch_{i}" for i in range(1, 6)]
        test_names = ["test_batch"]
    else:
        train_names, test_names = ["train"], ["test"]
    n_train = per_batch * len(train_names) if dataset == "cifar10" else per_batch * 5
    splits = {"train": cifar_arrays(n_train, classes), "test": cifar_arrays(test, classes, 1000)}
    if seed is not None:
        rng = np.random.default_rng(seed)
        splits = {k: (rng.integers(0, 256, x.shape, dtype=np.uint8), y)
                  for k, (x, y) in splits.items()}
    for split, names in (("train", train_names), ("test", test_names)):
        images, labels = splits[split]
        for part, name in enumerate(names):
            sl = slice(part * len(images) // len(names), (part + 1) * len(images) // len(names))
            x, y = images[sl].reshape(-1, 3072), labels[sl]
            if kind == "bin":
                head = [y[:, None]] if dataset == "cifar10" else [(y // 5)[:, None], y[:, None]]
                rec = np.concatenate(head + [x], axis=1).astype(np.uint8)
                (folder / f"{name}.bin").write_bytes(rec.tobytes())
            else:
                key = b"labels" if dataset == "cifar10" else b"fine_labels"
                batch = {b"data": x, key: [int(v) for v in y], b"batch_label": b"x"}
                if dataset == "cifar100":
                    batch[b"coarse_labels"] = [int(v) // 5 for v in y]
                (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return splits


def one_line(excinfo) -> str:
    """The BenchError's message, checked to be a single line."""
    message = str(excinfo.value)
    assert "\n" not in message and message.strip() == message and message
    return message
