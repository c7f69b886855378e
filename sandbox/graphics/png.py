"""PNG and APNG with the standard library: write RGB pictures, check PNGs, join frames into an APNG.

Pictures come from untrusted programs, so `read_header` walks every chunk and checks its CRC
before a picture is passed on. The APNG writer reuses each frame's compressed data as it is (an
APNG frame is a PNG's IDAT stream moved into fdAT chunks), so animating costs no recompression.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOR_RGB = 2
COLOR_RGBA = 6
_IHDR = struct.Struct(">IIBBBBB")
_CHUNK_HEAD = struct.Struct(">I4s")
_CRC = struct.Struct(">I")
_ACTL = struct.Struct(">II")  # frame count, plays (0: for ever)
_FCTL = struct.Struct(">IIIIIHHBB")  # sequence, size, offset, delay (num/den), dispose, blend
_MAX_CHUNK = 2**31 - 1
MAX_DELAY_MS = 65_535  # an fcTL delay numerator is 16 bits


@dataclass(frozen=True)
class Header:
    width: int
    height: int
    bit_depth: int
    color_type: int
    interlaced: bool
    animated: bool


@dataclass(frozen=True)
class Frame:
    png: bytes
    delay_ms: int  # how long it stays before the next one


def _chunk(kind: bytes, body: bytes) -> bytes:
    return _CHUNK_HEAD.pack(len(body), kind) + body + _CRC.pack(zlib.crc32(body, zlib.crc32(kind)))


def chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(type, body) of every chunk up to IEND; ValueError for anything that is not a whole PNG."""
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG")
    pos = len(SIGNATURE)
    view = memoryview(data)
    while True:
        if pos + _CHUNK_HEAD.size > len(data):
            raise ValueError("PNG ends inside a chunk header")
        length, kind = _CHUNK_HEAD.unpack_from(data, pos)
        body_start = pos + _CHUNK_HEAD.size
        end = body_start + length + _CRC.size
        if length > _MAX_CHUNK or end > len(data):
            raise ValueError("PNG ends inside a chunk")
        body = bytes(view[body_start : body_start + length])
        if zlib.crc32(body, zlib.crc32(kind)) != _CRC.unpack_from(data, end - _CRC.size)[0]:
            raise ValueError(f"PNG chunk {kind!r} has a bad CRC")
        yield kind, body
        pos = end
        if kind == b"IEND":
            if pos != len(data):
                raise ValueError("data after the PNG's end")
            return


def read_header(data: bytes) -> Header:
    """The picture's header, once every chunk has checked out."""
    header: Header | None = None
    animated = has_data = False
    for kind, body in chunks(data):
        if header is None:
            if kind != b"IHDR" or len(body) != _IHDR.size:
                raise ValueError("PNG does not start with its header")
            width, height, depth, color, _compression, _filter, interlace = _IHDR.unpack(body)
            if not (0 < width <= _MAX_CHUNK and 0 < height <= _MAX_CHUNK):
                raise ValueError("PNG has no pixels")
            header = Header(width, height, depth, color, interlace != 0, False)
        elif kind == b"acTL":
            animated = True
        elif kind == b"IDAT":
            has_data = True
    if header is None or not has_data:
        raise ValueError("PNG has no image data")
    return Header(header.width, header.height, header.bit_depth, header.color_type, header.interlaced, animated)


def encode_rgb(width: int, height: int, rgb: bytes, level: int = 6) -> bytes:
    """A PNG of 8-bit RGB pixels, rows top to bottom."""
    stride = width * 3
    if width <= 0 or height <= 0 or len(rgb) != stride * height:
        raise ValueError("pixel data does not match the size")
    view = memoryview(rgb)
    # Filter type 0 (none) on every row: filtering pixel by pixel in Python would cost far more
    # than it saves on the flat colours programs draw.
    rows = b"".join(b"\x00" + view[y * stride : (y + 1) * stride] for y in range(height))
    return (
        SIGNATURE
        + _chunk(b"IHDR", _IHDR.pack(width, height, 8, COLOR_RGB, 0, 0, 0))
        + _chunk(b"IDAT", zlib.compress(rows, level))
        + _chunk(b"IEND", b"")
    )


def animate(frames: Sequence[Frame]) -> bytes:
    """An APNG playing `frames` in a loop. They must share one header (size, depth, colour type):
    APNG frames reuse the first one's."""
    if len(frames) < 2:
        raise ValueError("an animation needs two frames or more")
    ihdr = b""
    streams: list[list[bytes]] = []
    for frame in frames:
        parts = list(chunks(frame.png))
        if parts[0][0] != b"IHDR" or (ihdr and parts[0][1] != ihdr):
            raise ValueError("animation frames differ in size or colour type")
        if any(kind in (b"PLTE", b"acTL") for kind, _ in parts):
            raise ValueError("animation frames must be plain true-colour PNGs")
        ihdr = parts[0][1]
        streams.append([body for kind, body in parts if kind == b"IDAT"])
    width, height = _IHDR.unpack(ihdr)[:2]
    out = [SIGNATURE, _chunk(b"IHDR", ihdr), _chunk(b"acTL", _ACTL.pack(len(frames), 0))]
    sequence = 0
    for index, (frame, idats) in enumerate(zip(frames, streams, strict=True)):
        delay = max(1, min(MAX_DELAY_MS, frame.delay_ms))
        out.append(_chunk(b"fcTL", _FCTL.pack(sequence, width, height, 0, 0, delay, 1000, 0, 0)))
        sequence += 1
        for body in idats:
            # The first frame is also the still picture that viewers without APNG show.
            if index == 0:
                out.append(_chunk(b"IDAT", body))
            else:
                out.append(_chunk(b"fdAT", _CRC.pack(sequence) + body))
                sequence += 1
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)
