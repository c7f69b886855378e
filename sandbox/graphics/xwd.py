"""Reading Xvfb's screen: the file its `-fbdir` option keeps up to date, in XWD format.

Only what Xvfb writes for a 24-bit screen is understood: a ZPixmap of 32-bit true-colour pixels
with one byte per colour. A region is cropped and shrunk by whole steps (every n-th pixel), all
with byte slicing, so a full-screen grab costs milliseconds even in pure Python.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass

_HEADER = struct.Struct(">25I")  # XWDFileHeader: 25 big-endian CARD32 fields, then the window name
_COLOR_ENTRY_BYTES = 12
_XWD_VERSION = 7
_ZPIXMAP = 2
_LSB_FIRST = 0


@dataclass(frozen=True)
class Region:
    width: int
    height: int
    rgb: bytes
    left: int = 0  # where on the screen its first pixel is,
    top: int = 0
    step: int = 1  # and how many screen pixels each of its pixels stands for, either way


@dataclass(frozen=True)
class _Layout:
    width: int
    height: int
    bytes_per_line: int
    pixels_at: int
    channels: tuple[int, int, int]  # byte offsets of red, green and blue within a pixel


def _channel(mask: int, lsb_first: bool) -> int:
    shift = mask.bit_length() - 8
    if shift < 0 or shift % 8 or mask != 0xFF << shift:
        raise ValueError("XWD colour masks are not whole bytes")
    return shift // 8 if lsb_first else 3 - shift // 8


def _layout(head: bytes, max_screen: tuple[int, int] | None = None) -> _Layout:
    if len(head) < _HEADER.size:
        raise ValueError("XWD header is cut short")
    f = _HEADER.unpack_from(head)
    header_size, version, pixmap_format, width, height = f[0], f[1], f[2], f[4], f[5]
    byte_order, bits_per_pixel, bytes_per_line, ncolors = f[7], f[11], f[12], f[19]
    if version != _XWD_VERSION or pixmap_format != _ZPIXMAP or bits_per_pixel != 32:
        raise ValueError("not a 32-bit ZPixmap XWD file")
    if max_screen is not None and not (
        width <= max_screen[0] and height <= max_screen[1] and 4 * width <= bytes_per_line <= 4 * width + 64
    ):
        raise ValueError("XWD screen is not the size it was started with")
    lsb_first = byte_order == _LSB_FIRST
    channels = (_channel(f[14], lsb_first), _channel(f[15], lsb_first), _channel(f[16], lsb_first))
    return _Layout(width, height, bytes_per_line, header_size + ncolors * _COLOR_ENTRY_BYTES, channels)


def read_region(
    screen: str | int,
    x: int,
    y: int,
    width: int,
    height: int,
    max_dimension: int,
    max_screen: tuple[int, int] | None = None,
) -> Region | None:
    """The screen's pixels in a rectangle (clipped to the screen), shrunk until neither side is
    over `max_dimension`; None when nothing of the rectangle is on the screen. `screen` is the
    file's path, or a descriptor open on it (read without moving its offset); a screen larger than
    `max_screen` is refused, so a file made to claim a huge one costs no memory."""
    if isinstance(screen, str):
        fd = os.open(screen, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return read_region(fd, x, y, width, height, max_dimension, max_screen)
        finally:
            os.close(fd)
    layout = _layout(os.pread(screen, _HEADER.size, 0), max_screen)
    left, top = max(0, x), max(0, y)
    right, bottom = min(layout.width, x + width), min(layout.height, y + height)
    if right <= left or bottom <= top:
        return None
    rows = _pread_all(screen, (bottom - top) * layout.bytes_per_line, layout.pixels_at + top * layout.bytes_per_line)
    if len(rows) < (bottom - top) * layout.bytes_per_line:
        raise ValueError("XWD file is shorter than its screen")
    step = max(1, math.ceil(max(right - left, bottom - top) / max_dimension))
    out_width = math.ceil((right - left) / step)
    line = bytearray(out_width * 3)
    out = bytearray()
    for row in range(0, bottom - top, step):
        start = row * layout.bytes_per_line + left * 4
        pixels = rows[start : start + (right - left) * 4]
        for index, channel in enumerate(layout.channels):
            line[index::3] = pixels[channel :: 4 * step]
        out += line
    return Region(out_width, len(out) // len(line), bytes(out), left, top, step)


def _pread_all(fd: int, length: int, offset: int) -> bytes:
    chunks = []
    while length > 0 and (chunk := os.pread(fd, length, offset)):
        chunks.append(chunk)
        length -= len(chunk)
        offset += len(chunk)
    return b"".join(chunks)
