"""Find a data set's files under --data-dir / BENCH_DATA, or say exactly what is missing.

One BENCH_DATA can serve several data sets: besides the directory itself, each data set is
also looked for in the sub-directory its official archive extracts to (``cifar-10-batches-bin``,
``cifar-10-batches-py``, ``cifar-100-binary``, ``cifar-100-python``) or, for ImageNet, in
``imagenet/``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bench.data.spec import DataSpec, check_spec
from bench.errors import BenchError
from bench.files import check_names

NO_DIR_DATASETS = ("digits", "digits16", "mnist5k", "synthetic")

_CIFAR = {
    "cifar10": {
        "name": "CIFAR-10",
        "bin": (["data_batch_%d.bin" % i for i in range(1, 6)], ["test_batch.bin"]),
        "py": (["data_batch_%d" % i for i in range(1, 6)], ["test_batch"]),
        "subdirs": ("cifar-10-batches-bin", "cifar-10-batches-py"),
        "url": "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        "expected": "data_batch_1.bin..data_batch_5.bin + test_batch.bin (binary version) or "
                    "cifar-10-batches-py/data_batch_1..5 + test_batch (python version)",
    },
    "cifar100": {
        "name": "CIFAR-100",
        "bin": (["train.bin"], ["test.bin"]),
        "py": (["train"], ["test"]),
        "subdirs": ("cifar-100-binary", "cifar-100-python"),
        "url": "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
        "expected": "train.bin + test.bin (binary version) or cifar-100-python/train + test "
                    "(python version)",
    },
}


@dataclass(frozen=True)
class CifarFiles:
    """The files of one CIFAR copy: ``kind`` is "bin" or "py"."""

    name: str
    kind: str
    train: tuple[Path, ...]
    test: tuple[Path, ...]


def resolve_data_dir(spec: DataSpec, data_dir: str | os.PathLike | None) -> Path | None:
    """The directory that holds ``spec.dataset``'s files (None for digits and synthetic, which
    need none), from ``data_dir`` or else the environment variable BENCH_DATA."""
    check_spec(spec)
    if spec.dataset in NO_DIR_DATASETS:
        return None
    root = _given_root(spec, data_dir)
    if spec.dataset == "imagenet":
        return find_imagenet_root(root)
    return find_cifar(spec.dataset, root).train[0].parent


def _given_root(spec: DataSpec, data_dir) -> Path:
    raw = data_dir if data_dir not in (None, "") else os.environ.get("BENCH_DATA") or None
    if raw is None:
        raise BenchError(f"{spec.dataset} needs its data: pass --data-dir DIR or set BENCH_DATA")
    root = check_names(Path(raw).expanduser(), "data directory (--data-dir or BENCH_DATA)")
    if not root.is_dir():
        raise BenchError(f"data directory {root} does not exist or is not a directory "
                         "(from --data-dir or BENCH_DATA)")
    return root


def find_cifar(dataset: str, root: Path) -> CifarFiles:
    """The first complete CIFAR copy in ``root`` or its archive sub-directories; a copy with
    some files missing is named as such rather than skipped."""
    info = _CIFAR[dataset]
    candidates = [root] + [root / sub for sub in info["subdirs"]]
    for folder in candidates:
        for kind in ("bin", "py"):
            train, test = info[kind]
            present = [name for name in train + test if (folder / name).is_file()]
            if not present:
                continue
            missing = [name for name in train + test if name not in present]
            if missing:
                raise BenchError(f"incomplete {info['name']} data in {folder}: missing "
                                 f"{', '.join(missing)}; download {info['url']} and extract "
                                 f"it into {root}")
            return CifarFiles(info["name"], kind, tuple(folder / n for n in train),
                              tuple(folder / n for n in test))
    raise BenchError(f"no {info['name']} data in {root}: expected {info['expected']}; "
                     f"download {info['url']} and extract it into {root}")


def cifar_files(spec: DataSpec, data_dir) -> CifarFiles:
    check_spec(spec)
    return find_cifar(spec.dataset, _given_root(spec, data_dir))


# --- ImageNet ---------------------------------------------------------------------------------

IMAGENET_EXPECTED = ("expected train.rec+train.idx+val.rec+val.idx or train/ and val/ class "
                     "folders")


def make_rec_hint(root: Path) -> str:
    return f"pack folders with `python scripts/make_rec.py {root}`"


def _has_imagenet(folder: Path) -> bool:
    return any((folder / name).exists() for name in ("train.rec", "val.rec", "train", "val"))


def find_imagenet_root(root: Path) -> Path:
    """``root`` or ``root/imagenet``, whichever holds a train or val split."""
    for folder in (root, root / "imagenet"):
        if _has_imagenet(folder):
            return folder
    raise BenchError(f"no ImageNet data in {root}: {IMAGENET_EXPECTED}; {make_rec_hint(root)}")


@dataclass(frozen=True)
class ImageSplit:
    """Where one ImageNet split lives: ``rec`` + ``idx`` files, or a ``folder`` of classes."""

    split: str
    root: Path
    rec: Path | None = None
    idx: Path | None = None
    folder: Path | None = None


def imagenet_split(spec: DataSpec, data_dir, split: str) -> ImageSplit:
    """Locate ``split`` ("train" or "val") in the format the spec asks for; "auto" takes the
    RecordIO pair when ``<split>.rec`` exists, else the class folders."""
    check_spec(spec)
    root = find_imagenet_root(_given_root(spec, data_dir))
    rec, idx, folder = root / f"{split}.rec", root / f"{split}.idx", root / split
    fmt = spec.data_format
    if fmt == "auto":
        fmt = "rec" if rec.exists() else "folder"
    if fmt == "rec":
        if not rec.is_file():
            raise BenchError(f"no {rec} (data_format rec): expected {split}.rec+{split}.idx in "
                             f"{root}; {make_rec_hint(root)}")
        if not idx.is_file():
            raise BenchError(f"{rec} has no index {idx}: the readers need it to shuffle and "
                             f"count; rebuild both with `python scripts/make_rec.py {root}`")
        return ImageSplit(split, root, rec=rec, idx=idx)
    if not folder.is_dir():
        raise BenchError(f"no ImageNet {split} data in {root}: expected {split}.rec+{split}.idx "
                         f"or a {split}/ folder of class folders; {make_rec_hint(root)}")
    return ImageSplit(split, root, folder=folder)
