"""Our RecordIO reader against MXNet's writer, including records split around the magic word."""
from __future__ import annotations

import os
import struct

import mxnet as mx

from bench.data.recordio import MAGIC, check_rec, read_record, unpack_image


def test_split_records_read_back_whole(tmp_path):
    magic = struct.pack("<I", MAGIC)
    # dmlc splits a record wherever its payload holds the magic word at a 4-byte boundary.
    payloads = [b"abcd" + magic + b"efgh" + magic + b"xy", b"plain payload!", magic * 2 + b"z"]
    rec, idx = tmp_path / "x.rec", tmp_path / "x.idx"
    writer = mx.recordio.MXIndexedRecordIO(str(idx), str(rec), "w")
    for i, payload in enumerate(payloads):
        writer.write_idx(i, mx.recordio.pack(mx.recordio.IRHeader(0, float(i), i, 0), payload))
    writer.close()
    index = check_rec(rec, idx)
    fd = os.open(rec, os.O_RDONLY)
    try:
        got = [unpack_image(read_record(fd, int(o), rec)[0]) for o in index.offsets]
    finally:
        os.close(fd)
    assert got == [(float(i), p) for i, p in enumerate(payloads)]
