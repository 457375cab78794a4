"""Refuse a .rec file holding an image that MXNet's ImageRecordIter cannot decode, before the
iterator reads it: MXNet 1.9.1's iterator does not raise on such an image, it kills the whole
process (SIGFPE on bytes no decoder recognises; measured on the CPU wheel), so the run would
die without a word about which image is bad.

The check reads each record's header and the image's own headers, not its pixels: a JPEG must
have a frame header (SOF) with non-zero sides and a scan (SOS), every segment up to the scan
fitting inside the image, and a progressive JPEG its end marker (OpenCV decodes a baseline JPEG
cut inside its pixels, filling the rest grey, but not a progressive one); a PNG must have a
non-zero IHDR and chunks that fit, up to IEND. Other formats are decoded once with OpenCV
(im2rec writes only JPEG and PNG, so they are rare). ``tests/data/test_image_check.py`` checks
against OpenCV itself that every cut of a JPEG and a PNG the check accepts decodes. Not caught:
an image whose compressed pixels are damaged (not cut) in a way libjpeg or zlib cannot get past.
"""
from __future__ import annotations

import os
import struct
from typing import Callable

import numpy as np

from bench.data.recordio import MAGIC, RecIndex, read_record, unpack_image
from bench.errors import BenchError

_HEAD = 4096  # bytes read per record: its headers and, nearly always, every JPEG segment header
_LENGTH_MASK = (1 << 29) - 1
_IR_SIZE = 24  # im2rec's header: flag, label, id, id2
_PNG = b"\x89PNG\r\n\x1a\n"
# Start-of-frame markers: baseline, extended, progressive, lossless, arithmetic (not DHT C4,
# JPG C8 or DAC CC).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_PROGRESSIVE = {0xC2, 0xC6, 0xCA, 0xCE}
_EOI_TAIL = 64  # a progressive JPEG's end marker must be among its last bytes

Read = Callable[[int, int], bytes]  # read(position in the image, count) -> bytes


def check_images(index: RecIndex) -> None:
    """Raise a one-line :class:`BenchError` naming the index and byte offset of the first
    record whose image MXNet's iterator could not decode."""
    fd = os.open(index.rec, os.O_RDONLY)
    try:
        for i, offset in enumerate(index.offsets.tolist()):
            problem = _record_problem(fd, offset, index)
            if problem:
                raise BenchError(f"the image at index {i} (byte {offset}) of {index.rec} "
                                 f"{problem}: rebuild the file without it (`python "
                                 f"scripts/make_rec.py {index.rec.parent}`)")
    finally:
        os.close(fd)


def _record_problem(fd: int, offset: int, index: RecIndex) -> str | None:
    head = os.pread(fd, 8 + _HEAD, offset)
    if len(head) < 8 + _IR_SIZE:
        return "is cut off (the file ends inside its record)"
    magic, word = struct.unpack_from("<II", head)
    if magic != MAGIC:
        return "is not a record (bad magic number): the index belongs to another file"
    length, part = word & _LENGTH_MASK, word >> 29
    flag = struct.unpack_from("<I", head, 8)[0]
    start = _IR_SIZE + 4 * flag  # the image's position in the payload
    if part != 0 or flag > 1024:  # split where the payload held the magic word: join it
        payload, _ = read_record(fd, offset, index.rec)
        image = unpack_image(payload)[1]
        return image_problem(lambda p, n: image[p:p + n], len(image))
    size = length - start
    if size < 0:
        return "is shorter than im2rec's header"

    def read(p: int, n: int) -> bytes:
        n = max(0, min(n, size - p))
        a = 8 + start + p
        return head[a:a + n] if a + n <= len(head) else os.pread(fd, n, offset + a)

    return image_problem(read, size)


def image_problem(read: Read, size: int) -> str | None:
    """Why the encoded image of ``size`` bytes (read through ``read``) cannot be decoded, as a
    phrase ("is empty (0 bytes)"), or None."""
    if size == 0:
        return "is empty (0 bytes)"
    magic = read(0, 8)
    if magic.startswith(b"\xff\xd8"):
        return _jpeg_problem(read, size)
    if magic == _PNG:
        return _png_problem(read, size)
    import cv2
    decoded = cv2.imdecode(np.frombuffer(read(0, size), np.uint8), cv2.IMREAD_COLOR)
    return None if decoded is not None and decoded.size else "is not an image OpenCV decodes"


def _png_problem(read: Read, size: int) -> str | None:
    ihdr = read(8, 25)
    if len(ihdr) < 25 or ihdr[4:8] != b"IHDR":
        return "is a PNG without its IHDR header (cut off or corrupt)"
    width, height = struct.unpack(">II", ihdr[8:16])
    if not (width and height):
        return f"is a {width}x{height} PNG (a zero side)"
    pos, data = 8, False
    while pos + 12 <= size:
        length, kind = struct.unpack(">I4s", read(pos, 8))
        if pos + 12 + length > size:
            return f"is a PNG cut off inside its {kind.decode('latin-1')!r} chunk"
        if kind == b"IEND":
            return None if data else "is a PNG without image data (IDAT)"
        data = data or kind == b"IDAT"
        pos += 12 + length
    return "is a PNG cut off before its end (IEND)"


def _jpeg_problem(read: Read, size: int) -> str | None:
    pos, frame = 2, None
    while True:
        head = read(pos, 4)
        if len(head) < 2 or head[0] != 0xFF:
            return "is a JPEG cut off or corrupt before its pixels (no marker where one belongs)"
        marker = head[1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        if marker == 0xD9:
            return "is a JPEG that ends before its pixels"
        if len(head) < 4:
            return "is a JPEG cut off inside its headers"
        length = int.from_bytes(head[2:4], "big")
        if length < 2 or pos + 2 + length > size:
            return "is a JPEG whose headers run past its end (cut off or corrupt)"
        if marker == 0xDA:
            if frame is None:
                return "is a JPEG without a frame header (SOF) before its pixels"
            if frame in _PROGRESSIVE and b"\xff\xd9" not in read(max(0, size - _EOI_TAIL),
                                                                 _EOI_TAIL):
                return "is a progressive JPEG cut off (no end marker)"
            return None
        if marker in _SOF:
            sides = read(pos + 4, 5)
            height, width = int.from_bytes(sides[1:3], "big"), int.from_bytes(sides[3:5], "big")
            if len(sides) < 5 or not (height and width):
                return f"is a {width}x{height} JPEG (a zero side)"
            frame = marker
        pos += 2 + length
