"""A small PNG decoder for pixel checks: 8-bit RGB or RGBA, not interlaced, every filter type.

APNG files decode to their default image (the first frame); `frame_count` reads acTL.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from sandbox.graphics import png

_CHANNELS = {png.COLOR_RGB: 3, png.COLOR_RGBA: 4}


@dataclass(frozen=True)
class Picture:
    width: int
    height: int
    channels: int
    pixels: bytes  # rows top to bottom, no filter bytes

    def rgb(self, x: int, y: int) -> tuple[int, int, int]:
        at = (y * self.width + x) * self.channels
        red, green, blue = self.pixels[at : at + 3]
        return red, green, blue


def close(got: tuple[int, int, int], want: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(g - w) <= tolerance for g, w in zip(got, want, strict=True))


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode(data: bytes) -> Picture:
    header = png.read_header(data)
    assert header.bit_depth == 8 and not header.interlaced, header
    channels = _CHANNELS[header.color_type]
    raw = zlib.decompress(b"".join(body for kind, body in png.chunks(data) if kind == b"IDAT"))
    stride = header.width * channels
    out = bytearray()
    previous = bytearray(stride)
    pos = 0
    for _ in range(header.height):
        kind, line = raw[pos], bytearray(raw[pos + 1 : pos + 1 + stride])
        pos += 1 + stride
        for i in range(stride if kind else 0):  # filter 0: the row is as stored
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            upper_left = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                line[i] = (line[i] + _paeth(left, up, upper_left)) & 0xFF
        out += line
        previous = line
    return Picture(header.width, header.height, channels, bytes(out))


def frame_count(data: bytes) -> int:
    for kind, body in png.chunks(data):
        if kind == b"acTL":
            return int(struct.unpack(">I", body[:4])[0])
    return 1
