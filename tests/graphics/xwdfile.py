"""XWD screen files as Xvfb writes them, for tests of what reads them."""

from __future__ import annotations

import struct
from collections.abc import Callable


def xwd_file(width: int, height: int, pixel: Callable[[int, int], tuple[int, int, int]]) -> bytes:
    """An XWD file as Xvfb writes it for a 24-bit screen: BGRX pixels, least significant first."""
    name = b"screen\0"
    header = struct.pack(
        ">25I",
        100 + len(name),
        7,
        2,
        24,
        width,
        height,
        0,
        0,
        32,
        0,
        32,
        32,
        width * 4,
        4,
        0xFF0000,
        0xFF00,
        0xFF,
        8,
        256,
        2,
        width,
        height,
        0,
        0,
        0,
    )
    colors = bytes(12 * 2)
    rows = b"".join(bytes((b, g, r, 0)) for y in range(height) for x in range(width) for (r, g, b) in [pixel(x, y)])
    return header + name + colors + rows
