"""QR codes as inline SVG, made on the server (segno): a tablet's camera opens the address."""

from __future__ import annotations

import segno

# Pixels per module: about 300 px for an address, readable across a classroom from a projector.
_SCALE = 8


def svg(text: str, *, title: str) -> str:
    """An <svg> element (escaped by segno) encoding `text`, black on white with the quiet zone."""
    code = segno.make(text, error="m", micro=False)
    return code.svg_inline(scale=_SCALE, border=4, dark="#000", light="#fff", title=title)
