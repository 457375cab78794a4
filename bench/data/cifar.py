"""Read CIFAR-10/100 (official binary or python-pickle release) into uint8 NCHW arrays."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from bench.data.locate import CifarFiles
from bench.data.spec import CLASSES
from bench.errors import BenchError

PIXELS = 3 * 32 * 32


def load_split(dataset: str, files: CifarFiles, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int32 of the training or test split; for
    CIFAR-100 the labels are the 100 fine classes."""
    paths = files.train if train else files.test
    read = _read_bin if files.kind == "bin" else _read_pickle
    parts = [read(dataset, path) for path in paths]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    bad = (labels < 0) | (labels >= CLASSES[dataset])
    if bad.any():
        raise BenchError(f"{files.name} labels out of range 0..{CLASSES[dataset] - 1} in "
                         f"{paths[0].parent}: is this {files.name}?")
    return images, labels


def _read_bin(dataset: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    # One record = label byte(s) + 3072 pixel bytes (R plane, G plane, B plane, row-major);
    # CIFAR-100 stores the coarse label first, then the fine one.
    label_bytes = 1 if dataset == "cifar10" else 2
    record = label_bytes + PIXELS
    size = path.stat().st_size
    if size == 0 or size % record:
        raise BenchError(f"{path} is truncated or not a {_name(dataset)} binary batch: "
                         f"{size} bytes is not a multiple of the {record}-byte record; "
                         "download and extract it again")
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, record)
    labels = raw[:, label_bytes - 1].astype(np.int32)
    return raw[:, label_bytes:].reshape(-1, 3, 32, 32), labels


def _read_pickle(dataset: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    key = b"labels" if dataset == "cifar10" else b"fine_labels"
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")  # the release is pickled by Python 2
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[key], dtype=np.int32)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError,
            IndexError, ImportError, MemoryError) as e:
        raise BenchError(f"{path} is truncated or not a {_name(dataset)} python batch "
                         f"({type(e).__name__}); download and extract it again") from None
    if data.ndim != 2 or data.shape[1] != PIXELS or len(labels) != len(data) or not len(data):
        raise BenchError(f"{path} is not a {_name(dataset)} python batch: data {data.shape}, "
                         f"{len(labels)} labels; download and extract it again")
    return data.reshape(-1, 3, 32, 32), labels


def _name(dataset: str) -> str:
    return "CIFAR-10" if dataset == "cifar10" else "CIFAR-100"
