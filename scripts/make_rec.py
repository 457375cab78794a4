#!/usr/bin/env python3
"""Pack ImageNet-style class folders (ROOT/train/<class>/*.jpg, ROOT/val/<class>/*.jpg) into
ROOT/train.rec+train.idx and ROOT/val.rec+val.idx for MXNet's fast ImageRecordIter reader,
using the im2rec.py shipped in the mxnet wheel (see bench.data.recordio.pack_image_folder).

    python scripts/make_rec.py /data/imagenet              # shorter side 480, JPEG quality 95
    python scripts/make_rec.py /data/imagenet --resize 0   # keep the original files as they are
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # works from a plain checkout

from bench.data.recordio import pack_image_folder  # noqa: E402
from bench.errors import BenchError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="folder holding train/ and val/")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: ROOT)")
    parser.add_argument("--resize", type=int, default=480,
                        help="shorter side of the stored images (default 480, GluonCV's); "
                             "0 stores the original files unchanged")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality when resizing")
    parser.add_argument("--workers", type=int,
                        default=max(1, len(os.sched_getaffinity(0)) // 2),
                        help="encoding processes per split; both splits run at once "
                             "(default: half the cores each)")
    args = parser.parse_args(argv)
    out = args.out or args.root
    try:
        counts = pack_image_folder(args.root, out, resize=args.resize or None,
                                   workers=args.workers, quality=args.quality)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for split, n in counts.items():
        print(f"{split}: {n} images -> {out / split}.rec + {out / split}.idx")
    return 0


if __name__ == "__main__":
    sys.exit(main())
