"""The live link between the harness and a live graphical program, through one folder.

The program's side (the shim) writes its newest frame (`frame.png`, whole: temporary name, then
rename) and where its Tk window is on the virtual screen (`window`); the harness looks at them at
its own pace, so a program that draws faster than frames are sent costs the harness nothing. The
harness's side writes the viewer's keys, mouse and window close, one JSON line each, into a FIFO
(`events`) that the shim reads on a thread of its own.

Everything in the folder is within the program's reach: the harness reads it as untrusted (see
sandbox/harness/live_view.py), and the harness's writes never wait for the program.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FRAME_NAME = "frame.png"
WINDOW_NAME = "window"
EVENTS_NAME = "events"
# One event line: far below PIPE_BUF, so each write to the FIFO is whole or not at all.
MAX_EVENT_BYTES = 1024
MAX_WINDOW_BYTES = 100
_MAX_COORDINATE = 1 << 15  # X's coordinates are 16-bit


@dataclass(frozen=True)
class Placement:
    """A Tk window on the virtual screen: its rectangle, and its window manager frame (the X
    window a close request goes to)."""

    x: int
    y: int
    width: int
    height: int
    frame_id: int

    def encode(self) -> bytes:
        return b"%d %d %d %d %d\n" % (self.x, self.y, self.width, self.height, self.frame_id)

    @classmethod
    def decode(cls, data: bytes) -> Placement | None:
        """None for anything that is not one placement within X's ranges."""
        parts = data.split()
        if len(parts) != 5 or not all(p.lstrip(b"-").isdigit() and len(p) <= 11 for p in parts):
            return None
        x, y, width, height, frame_id = (int(p) for p in parts)
        inside = all(abs(v) < _MAX_COORDINATE for v in (x, y)) and 0 < width < _MAX_COORDINATE
        if not inside or not 0 < height < _MAX_COORDINATE or not 0 <= frame_id < 1 << 32:
            return None
        return cls(x, y, width, height, frame_id)


def encode_event(event: dict[str, Any]) -> bytes:
    line = json.dumps(event, separators=(",", ":"), ensure_ascii=True).encode("ascii") + b"\n"
    if len(line) > MAX_EVENT_BYTES:
        raise ValueError("a live event line is too long")
    return line


def decode_event(line: bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


class LiveLink:
    """The program's side."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._placed: Placement | None = None
        self._listening = False
        self._lock = threading.Lock()

    def _replace(self, name: str, data: bytes) -> None:
        partial = os.path.join(self.folder, f".{name}-{os.getpid()}-{threading.get_ident()}")
        with open(partial, "wb") as out:
            out.write(data)
        os.replace(partial, os.path.join(self.folder, name))

    def show(self, picture: bytes) -> None:
        """The window as it looks now (a PNG within the size limit)."""
        self._replace(FRAME_NAME, picture)

    def place(self, placement: Placement) -> None:
        with self._lock:
            if placement == self._placed:
                return
            self._placed = placement
        self._replace(WINDOW_NAME, placement.encode())

    def listen(self, handle: Callable[[dict[str, Any]], None]) -> None:
        """Hand every event to `handle`, on a daemon thread started the first time."""
        with self._lock:
            if self._listening:
                return
            self._listening = True
        threading.Thread(target=self._read, args=(handle,), name="labrunner-live", daemon=True).start()

    def _read(self, handle: Callable[[dict[str, Any]], None]) -> None:
        try:
            fd = os.open(os.path.join(self.folder, EVENTS_NAME), os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return  # the program removed it: no more events reach it
        pending = b""
        while chunk := _read_some(fd):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            pending = pending[-MAX_EVENT_BYTES:]  # not a line the harness wrote: dropped in parts
            for line in lines:
                event = decode_event(line)
                if event is not None:
                    handle(event)


def _read_some(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except OSError:
        return b""


def fit(width: int, height: int, max_dimension: int) -> tuple[int, int]:
    """A picture's size once its longest side is at most max_dimension (never below a pixel)."""
    scale = max(width, height) / max_dimension
    if scale <= 1:
        return width, height
    return (
        max(1, min(max_dimension, int(width / scale))),
        max(1, min(max_dimension, int(height / scale))),
    )


def to_window(x: int, y: int, shown: tuple[int, int], window: tuple[int, int]) -> tuple[int, int]:
    """A point of a frame as sent (size `shown`) as the point of the window (size `window`) it
    shows, inside the window."""
    wx = x * window[0] // max(1, shown[0])
    wy = y * window[1] // max(1, shown[1])
    return min(max(0, wx), window[0] - 1), min(max(0, wy), window[1] - 1)
