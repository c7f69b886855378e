"""PNG and APNG decoding for pixel checks, by Pillow: an oracle independent of the code under test
(sandbox/graphics/png.py writes and checks the pictures; it never reads them back here).

`decode` gives an APNG's default image (its first frame); `frames` gives every frame of an
animation with its delay, and `frame_count` how many there are.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image


@dataclass(frozen=True)
class Picture:
    width: int
    height: int
    pixels: bytes  # 8-bit RGB, rows top to bottom
    delay_ms: int | None = None  # an animation frame's, as the file says

    def rgb(self, x: int, y: int) -> tuple[int, int, int]:
        assert 0 <= x < self.width and 0 <= y < self.height, (x, y, self.width, self.height)
        at = (y * self.width + x) * 3
        red, green, blue = self.pixels[at : at + 3]
        return red, green, blue


def close(got: tuple[int, int, int], want: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(g - w) <= tolerance for g, w in zip(got, want, strict=True))


def _open(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as checked:
        assert checked.format == "PNG", checked.format
        checked.verify()  # every chunk's CRC, as a browser would refuse a damaged file
    return Image.open(io.BytesIO(data))


def _picture(image: Image.Image, delay_ms: int | None = None) -> Picture:
    converted = image.convert("RGB")
    return Picture(converted.width, converted.height, converted.tobytes(), delay_ms)


def decode(data: bytes) -> Picture:
    """The picture a viewer shows first (an APNG's default image)."""
    with _open(data) as image:
        return _picture(image)


def frames(data: bytes) -> list[Picture]:
    """Every frame of an APNG (one for a still), each with its delay."""
    out = []
    with _open(data) as image:
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            duration = image.info.get("duration")
            out.append(_picture(image, None if duration is None else round(duration)))
    return out


def frame_count(data: bytes) -> int:
    with _open(data) as image:
        return int(getattr(image, "n_frames", 1))
