"""The kinds of file Labrunner accepts, by name: the table the `file_types_allowed` setting names.

A leaf module (it imports nothing from the appliance), so the settings loader can validate the
allow-list against it without importing any of the code that judges or stores files.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    id: str
    media_type: str
    text: bool


KINDS: dict[str, Kind] = {
    k.id: k
    for k in (
        Kind("text", "text/plain", True),
        Kind("csv", "text/csv", True),
        Kind("json", "application/json", True),
        Kind("python", "text/x-python", True),
        Kind("source", "text/plain", True),
        Kind("png", "image/png", False),
        Kind("jpeg", "image/jpeg", False),
        Kind("gif", "image/gif", False),
        Kind("bmp", "image/bmp", False),
        Kind("wav", "audio/wav", False),
        Kind("ogg", "audio/ogg", False),
        Kind("mp3", "audio/mpeg", False),
    )
}


def parse_allowed(spec: str) -> frozenset[str]:
    """The kinds a `file_types_allowed` value names ("none" alone: no kind at all)."""
    names = {part.strip().lower() for part in spec.split(",") if part.strip()}
    return frozenset() if names == {"none"} else frozenset(names)
