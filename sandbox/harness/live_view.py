"""A live graphical program's window, for the live loop: its frames out, the viewer's keys and
mouse in.

Set up like a graphical test (graphics.start: the shim, and Xvfb for tkinter and turtle), with a
live link folder (sandbox/graphics/live_link.py) on top. What is sent is what the window shows:

- a Tk window (turtle's too) is read from Xvfb's screen where the shim says the window is, and
  the viewer's keys and mouse reach it as real X input (XTEST), a close as a window manager's;
- otherwise the shim's newest frame (pygame's display, the newest matplotlib figure) is sent, and
  the viewer's input goes to the shim, which makes pygame events of it.

Everything the program can reach is untrusted: the frame file is opened without following links
or waiting on a FIFO, read up to the picture limit and checked like a recorded picture; the
window's placement only chooses which part of the program's own screen is shown; the screen file
and the X connection were opened before the program started, and the screen is read only within
the size Xvfb was started with. Nothing the harness writes to the program waits: an event that
does not fit in the FIFO is dropped. A frame is sent only when it differs from the last one sent.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zlib

from sandbox import protocol
from sandbox.graphics import keys, live_link, png, xwd
from sandbox.harness import graphics, xinput
from sandbox.protocol import MEDIA_PNG, TMP_DIR, Graphics, Image

LIVE_DIR = f"{TMP_DIR}/.labrunner-live"
_MIN_INTERVAL_MS = 20  # between two looks, whatever the job says: the loop must not spin
_SCREEN = tuple(int(side) for side in graphics.SCREEN_GEOMETRY.split("x")[:2])
_BUTTONS = (1, 2, 3)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class View:
    """Implements live.LiveView."""

    def __init__(
        self,
        limits: Graphics,
        folder: int,
        events: int,
        screen: int | None,
        display: xinput.Display | None,
    ) -> None:
        self.interval_s = max(limits.live_frame_ms, _MIN_INTERVAL_MS) / 1000
        self._limits = limits
        self._folder = folder  # the live link folder, as created
        self._events = events  # the FIFO's write end (opened read-write: writing never blocks on open)
        self._screen = screen  # Xvfb's screen file
        self._display = display
        self._placement: live_link.Placement | None = None
        self._region: xwd.Region | None = None  # the window as last looked at
        self._file_seen: tuple[int, int, int] | None = None  # the frame file's inode, size, mtime
        self._sent: bytes | None = None  # digest of what the viewer sees

    def frame(self) -> Image | None:
        self._placement = self._read_placement()
        if self._placement is not None and self._screen is not None:
            return self._window_frame(self._placement, self._screen)
        return self._file_frame()

    def _read_placement(self) -> live_link.Placement | None:
        data = graphics.read_file(self._folder, live_link.WINDOW_NAME, live_link.MAX_WINDOW_BYTES)
        return None if data is None else live_link.Placement.decode(data)

    def _window_frame(self, where: live_link.Placement, screen: int) -> Image | None:
        dimension = self._limits.max_dimension
        try:
            region = xwd.read_region(screen, where.x, where.y, where.width, where.height, dimension, _SCREEN)
        except (OSError, ValueError):
            return None  # the program spoilt the screen file: nothing more to show from it
        if region is None:
            return None
        self._region = region
        digest = b"%d %d %d " % (region.width, region.height, zlib.crc32(region.rgb))
        if digest == self._sent:
            return None
        self._sent = digest
        return Image(
            MEDIA_PNG, "window", region.width, region.height, png.encode_rgb(region.width, region.height, region.rgb)
        )

    def _file_frame(self) -> Image | None:
        try:
            info = os.stat(live_link.FRAME_NAME, dir_fd=self._folder, follow_symlinks=False)
        except OSError:
            return None
        seen = (info.st_ino, info.st_size, info.st_mtime_ns)
        if seen == self._file_seen:
            return None  # not written since the last look
        self._file_seen = seen
        data = graphics.read_file(self._folder, live_link.FRAME_NAME, self._limits.max_image_bytes)
        header = None if data is None else graphics.check(data, self._limits)
        if data is None or header is None:
            return None  # not a picture the viewer may be shown
        digest = hashlib.sha256(data).digest()
        if digest == self._sent:
            return None
        self._sent = digest
        return Image(MEDIA_PNG, "frame", header.width, header.height, data)

    def handle(self, message: protocol.KeyEvent | protocol.PointerEvent | protocol.CloseWindow) -> None:
        display = self._display if self._placement is not None else None
        match message:
            case protocol.KeyEvent():
                if display is None:
                    self._tell({"type": "key", "code": message.code, "key": message.key, "down": message.down})
                elif (key := keys.lookup(message.code, message.key)) is not None:
                    display.key(key.keysym, message.down)
            case protocol.PointerEvent():
                if display is None:
                    x, y = (min(max(0, v), 1 << 15) for v in (message.x, message.y))
                    self._tell({"type": "pointer", "kind": message.kind, "x": x, "y": y, "button": message.button})
                elif (region := self._region) is not None:
                    display.move(region.left + message.x * region.step, region.top + message.y * region.step)
                    if message.kind != "move" and message.button in _BUTTONS:
                        display.button(message.button, message.kind == "down")
            case protocol.CloseWindow():
                self._tell({"type": "close"})
                if display is not None and self._placement is not None:
                    display.close_window(self._placement.frame_id)

    def _tell(self, event: dict[str, object]) -> None:
        try:
            os.write(self._events, live_link.encode_event(event))
        except (OSError, ValueError):
            pass  # the FIFO is full (nobody reads it), or the event would not fit: dropped

    def close(self) -> None:
        if self._display is not None:
            self._display.close()
        for fd in (self._folder, self._events, self._screen):
            if fd is not None:
                os.close(fd)


def start(limits: Graphics, wall_ms: int) -> tuple[View, dict[str, str], list[str]]:
    """Set up the live run's window before its program starts: the view, the program's
    environment on top of the job's, and notes for the person (the display did not start)."""
    os.mkdir(LIVE_DIR, 0o700)
    events_path = os.path.join(LIVE_DIR, live_link.EVENTS_NAME)
    os.mkfifo(events_path, 0o600)
    events = os.open(events_path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    folder = os.open(LIVE_DIR, _DIR_FLAGS)
    session = graphics.start(limits, 0, limits.max_image_bytes, wall_ms, live_dir=LIVE_DIR)
    screen = display = None
    if session.display is not None:
        screen = _open_screen()
        display = xinput.Display.connect(session.display)
        if display is None:
            session.notes.append("keys and mouse cannot reach the window: the virtual display does not take them")
    return View(limits, folder, events, screen, display), session.env, session.notes


def _open_screen() -> int | None:
    try:
        fd = os.open(graphics.SCREEN_FILE, _FILE_FLAGS)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd
