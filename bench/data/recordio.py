"""MXNet RecordIO files: check a .rec/.idx pair, read records by offset, and pack image folders
with the ``im2rec.py`` that ships inside the mxnet wheel.

Format (dmlc-core): each record is a little-endian uint32 magic 0xced7230a, a uint32 whose low
29 bits are the payload length and whose top 3 bits say whether this is a whole record (0) or the
first/middle/last part (1/2/3) of one that was split where its payload contained the magic
word, then the payload padded to 4 bytes. An image payload starts with im2rec's 24-byte header
(flag, float label, id, id2) followed by ``flag`` extra float labels and the encoded image.
"""
from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import BenchError

MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", MAGIC)
_LENGTH_MASK = (1 << 29) - 1
_IR_HEADER = struct.Struct("<IfQQ")


def _rebuild(rec: Path) -> str:
    return f"rebuild it with `python scripts/make_rec.py {rec.parent}`"


@dataclass(frozen=True)
class RecIndex:
    """A checked .rec/.idx pair: the record offsets in index order."""

    rec: Path
    idx: Path
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets)


def read_index(idx: Path) -> np.ndarray:
    """The offsets of an .idx file (lines ``key<TAB>offset``), in file order."""
    offsets = []
    with open(idx, "rb") as f:
        for number, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                int(parts[0])  # the key must be an integer too
                offset = int(parts[1])
                if len(parts) != 2:
                    raise ValueError
            except (ValueError, IndexError):
                raise BenchError(f"{idx} line {number} is not 'key<TAB>offset': the index is "
                                 f"truncated or corrupt; {_rebuild(idx)}") from None
            offsets.append(offset)
    if not offsets:
        raise BenchError(f"{idx} is empty; {_rebuild(idx)}")
    return np.asarray(offsets, dtype=np.int64)


def check_rec(rec: Path, idx: Path) -> RecIndex:
    """Refuse a truncated or mismatched pair before MXNet's reader aborts on it: every offset
    must lie inside the .rec, the first record must parse, and the last one must end exactly at
    the end of the file (a shorter .rec was truncated; a longer one has records the index lost)."""
    offsets = read_index(idx)
    size = rec.stat().st_size
    if offsets.min() < 0 or offsets.max() >= size:
        raise BenchError(f"{idx} points past the end of {rec} ({size} bytes): the .rec is "
                         f"truncated or belongs to another index; {_rebuild(rec)}")
    fd = os.open(rec, os.O_RDONLY)
    try:
        payload, _ = read_record(fd, int(offsets.min()), rec)
        if len(payload) < _IR_HEADER.size:
            raise BenchError(f"the first record of {rec} has no image header; {_rebuild(rec)}")
        _, end = read_record(fd, int(offsets.max()), rec)
    finally:
        os.close(fd)
    if end != size:
        problem = "is truncated" if end > size else f"holds {size - end} bytes the index omits"
        raise BenchError(f"{rec} {problem} (last indexed record ends at byte {end} of {size}); "
                         f"{_rebuild(rec)}")
    return RecIndex(rec, idx, offsets)


def read_record(fd: int, offset: int, rec: Path) -> tuple[bytes, int]:
    """The payload of the record at ``offset`` (parts joined) and the offset just past it.
    Reads with ``os.pread``, so threads can share ``fd``. A record running past the end of the
    file returns an end offset beyond it rather than raising, so callers can say "truncated"."""
    parts, pos = [], offset
    while True:
        head = os.pread(fd, 8, pos)
        if len(head) < 8:
            return b"".join(parts), pos + 8
        magic, word = struct.unpack("<II", head)
        if magic != MAGIC:
            raise BenchError(f"no record at byte {pos} of {rec} (bad magic number): the file is "
                             f"corrupt or its index belongs to another file; {_rebuild(rec)}")
        length, flag = word & _LENGTH_MASK, word >> 29
        data = os.pread(fd, length, pos + 8)
        pos += 8 + ((length + 3) & ~3)
        if len(data) < length:
            return b"".join(parts), pos
        parts.append(data)
        if flag in (0, 3):
            return _MAGIC_BYTES.join(parts), pos


def unpack_image(payload: bytes) -> tuple[float, bytes]:
    """im2rec's payload -> (first label, encoded image bytes)."""
    if len(payload) < _IR_HEADER.size:
        raise BenchError("a record shorter than im2rec's header: the .rec file is truncated or "
                         "corrupt; rebuild it with `python scripts/make_rec.py DIR`")
    flag, label, _id, _id2 = _IR_HEADER.unpack_from(payload)
    start = _IR_HEADER.size + 4 * flag
    if flag:
        label = struct.unpack_from("<f", payload, _IR_HEADER.size)[0]
    return label, payload[start:]


# --- packing --------------------------------------------------------------------------------

def im2rec_path() -> Path:
    """``mxnet/tools/im2rec.py`` of the installed wheel."""
    from bench._mxnet import require_mxnet
    path = Path(require_mxnet().__file__).parent / "tools" / "im2rec.py"
    if not path.is_file():
        raise BenchError(f"this mxnet install has no {path}: reinstall mxnet 1.9.1 from PyPI")
    return path


def class_folders(split_dir: Path) -> list[str]:
    """Class names = the sub-folders, sorted: the order that gives each its label, the same rule
    as Gluon's ImageFolderDataset."""
    return sorted(p.name for p in split_dir.iterdir() if p.is_dir())


def pack_image_folder(root: Path, out: Path | None = None, resize: int | None = 480,
                      workers: int = 1, quality: int = 95) -> dict[str, int]:
    """Pack ``root/train/<class>/*`` and ``root/val/<class>/*`` (jpg/jpeg/png) into
    ``out/{train,val}.{rec,idx}`` (``out`` defaults to ``root``) and return the image counts.

    With ``resize`` the images are re-encoded as JPEG (``quality``) with the shorter side
    resized to it: GluonCV's 480 by default, which leaves room for He 2015's [256, 480] scale
    augmentation and any evaluation resize up to 480. ``resize=None`` stores the original file
    bytes (im2rec's ``--pass-through``). im2rec's ``--list --recursive`` numbers only folders
    that contain images, so its labels are rewritten from each image's top folder in sorted
    ``train/`` order: val labels then match train's even when a class folder is empty or
    missing from val. The two splits are listed and packed by concurrent im2rec processes, in a
    scratch folder whose results are moved into place at the end, so an interrupted run never
    leaves a half-written pair behind."""
    root = Path(root)
    out = Path(out) if out is not None else root
    train_dir = root / "train"
    if not train_dir.is_dir():
        raise BenchError(f"no {train_dir}: expected train/<class>/*.jpg and val/<class>/*.jpg "
                         f"under {root}")
    classes = {name: i for i, name in enumerate(class_folders(train_dir))}
    if not classes:
        raise BenchError(f"{train_dir} has no class folders: expected train/<class>/*.jpg")
    splits = ["train"] + (["val"] if (root / "val").is_dir() else [])
    out.mkdir(parents=True, exist_ok=True)
    scratch = out / ".make_rec.tmp"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    try:
        _im2rec_all([(["--list", "--recursive"] + (["--no-shuffle"] if split != "train" else [])
                      + [str(scratch / split), str(root / split)], f"listing {root / split}")
                     for split in splits])
        listed = {split: _relabel(scratch / f"{split}.lst", classes, root / split)
                  for split in splits}
        encode = (["--pass-through"] if resize is None else
                  ["--resize", str(resize), "--quality", str(quality)])
        outputs = _im2rec_all([(encode + ["--num-thread", str(max(1, workers)),
                                          str(scratch / split), str(root / split)],
                                f"packing {root / split}") for split in splits])
        counts = {}
        for split, stdout in zip(splits, outputs):
            counts[split] = len(read_index(scratch / f"{split}.idx"))
            if counts[split] != listed[split]:
                raise BenchError(f"im2rec packed {counts[split]} of {listed[split]} images in "
                                 f"{root / split}; unreadable images: "
                                 f"{_unreadable(stdout) or 'see im2rec output'}")
        for split in splits:
            for ext in (".rec", ".idx"):
                os.replace(scratch / f"{split}{ext}", out / f"{split}{ext}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return counts


def _im2rec_all(jobs: list[tuple[list[str], str]]) -> list[str]:
    """Run one im2rec process per job concurrently; their stdouts, or the first failure."""
    script = str(im2rec_path())
    procs = [subprocess.Popen([sys.executable, script, *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for args, _ in jobs]
    results = [proc.communicate() for proc in procs]
    for proc, (stdout, stderr), (_, what) in zip(procs, results, jobs):
        if proc.returncode != 0:
            bad = _unreadable(stdout)
            detail = (f"unreadable images: {bad}" if bad else
                      (stderr.strip().splitlines() or ["no output"])[-1])
            raise BenchError(f"im2rec failed while {what}: {detail}")
    return [stdout for stdout, _ in results]


def _unreadable(stdout: str) -> str:
    """The files im2rec reported it could not decode, from its printed messages."""
    bad = re.findall(r"^(?:imread|pack_img).*?file: (\S+)", stdout, flags=re.M)
    return ", ".join(bad[:5]) + (" ..." if len(bad) > 5 else "")


def _relabel(lst: Path, classes: dict[str, int], split_dir: Path) -> int:
    """Rewrite the labels of im2rec's list as train's class index of each image's top folder;
    images lying directly in the split folder are dropped (ImageFolderDataset skips them too)."""
    lines = []
    for line in lst.read_text().splitlines():
        index, _label, rel = line.split("\t")
        if "/" not in rel:
            continue
        top = rel.split("/", 1)[0]
        if top not in classes:
            raise BenchError(f"{split_dir / top} is a class folder that train/ does not have: "
                             "its images would get no label")
        lines.append(f"{index}\t{classes[top]:f}\t{rel}\n")
    if not lines:
        raise BenchError(f"no images (.jpg/.jpeg/.png) in the class folders of {split_dir}")
    lst.write_text("".join(lines))
    return len(lines)
