"""A graphical test's surroundings: its pictures folder, its virtual display, and what it drew.

Before each test of a graphical job the harness makes an empty pictures folder, starts Xvfb on a
display number of the test's own when the job wants windows (it dies with the program's other
processes when the test ends, and /tmp is emptied before the next), and puts the shim on the
program's PYTHONPATH. Afterwards it reads the pictures the program left — checking each one, since
the program could have written anything there — keeps what fits the limits, and joins the frames
into an APNG.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import select
import stat
import time
from dataclasses import dataclass, field

from sandbox.graphics import png, shim
from sandbox.harness import shield
from sandbox.protocol import MEDIA_APNG, MEDIA_PNG, TMP_DIR, Graphics, Image

PICTURES_DIR = f"{TMP_DIR}/.labrunner-pictures"
SCREEN_DIR = f"{TMP_DIR}/.labrunner-screen"
SCREEN_FILE = f"{SCREEN_DIR}/Xvfb_screen0"  # what Xvfb's -fbdir calls screen 0's file
# Large enough for turtle's default window (half the width, three quarters of the height).
SCREEN_GEOMETRY = "1280x1024x24"
BOOT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "graphics", "boot")
_FIRST_DISPLAY = 10
_XVFB_START_S = 5.0  # it takes a fraction of a second; the host's deadline allows for this much
# Event loops are ended this long before the wall time (at most a third of it), so a program
# that handles QUIT or a closed window has time to finish by itself.
_GRACE_S = 3.0
_LAST_FRAME_MS = 1000  # an animation's last frame stays this long before it plays again
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class Session:
    graphics: Graphics
    allowance: int  # bytes of pictures this test may return
    env: dict[str, str]  # for the program, on top of the job's
    notes: list[str] = field(default_factory=list)  # for the test's stderr
    display: int | None = None  # the virtual display's number, once it accepts clients


@dataclass(frozen=True)
class _Picture:
    kind: str  # frame, figure or window
    data: bytes
    header: png.Header
    written_ns: int


def start(graphics: Graphics, test_index: int, allowance: int, wall_ms: int, live_dir: str | None = None) -> Session:
    """Set up one test; call after the scratch folders were emptied and before the program runs.
    A live run's program talks to the harness through `live_dir` (see sandbox/graphics/live_link.py)."""
    os.mkdir(PICTURES_DIR, 0o700)
    session = Session(graphics, allowance, {"PYTHONPATH": BOOT_DIR})
    screen = None
    if graphics.display:
        display = _start_xvfb(_FIRST_DISPLAY + test_index)
        if display is None:
            session.notes.append("windows (tkinter, turtle) cannot be shown: the virtual display did not start")
        else:
            session.env["DISPLAY"] = display
            session.display = _FIRST_DISPLAY + test_index
            screen = SCREEN_FILE
    wall_s = wall_ms / 1000
    config = shim.Config(
        folder=PICTURES_DIR,
        max_images=graphics.max_images,
        max_dimension=graphics.max_dimension,
        max_bytes=allowance,
        quit_after_s=wall_s - min(_GRACE_S, wall_s / 3),
        screen=screen,
        live_dir=live_dir,
        live_frame_s=graphics.live_frame_ms / 1000,
    )
    session.env[shim.CONFIG_ENV] = config.to_env()
    return session


def _start_xvfb(number: int) -> str | None:
    """Xvfb on display :number with its screen in SCREEN_FILE; the display's name once it accepts
    clients, None if it did not come up. Nobody waits for it: the reaper kills it with the test."""
    os.mkdir(SCREEN_DIR, 0o700)
    ready_r, ready_w = os.pipe()
    os.set_inheritable(ready_w, True)
    argv = [
        "Xvfb",
        f":{number}",
        "-screen",
        "0",
        SCREEN_GEOMETRY,
        "-fbdir",
        SCREEN_DIR,
        "-displayfd",
        str(ready_w),
        "-nolisten",
        "tcp",
        "-br",  # a black root window, not the grey weave
        "-nocursor",
        "-s",
        "0",  # no screen saver
        "-noreset",
    ]
    try:
        os.posix_spawnp(
            "Xvfb",
            argv,
            {"PATH": "/usr/bin:/bin", "HOME": TMP_DIR},
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
                (os.POSIX_SPAWN_DUP2, 1, 2),
            ],
            setsid=True,
            setsigdef=shield.RESET_SIGNALS,
        )
    except OSError:
        return None
    finally:
        os.close(ready_w)
    try:
        answer = _read_line(ready_r, time.monotonic() + _XVFB_START_S)
    finally:
        os.close(ready_r)
    return f":{number}" if answer == str(number).encode() else None


def _read_line(fd: int, deadline: float) -> bytes:
    data = b""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            break
        chunk = os.read(fd, 64)
        if not chunk:
            break
        data += chunk
    return data.strip()


def collect(session: Session) -> tuple[list[Image], list[str]]:
    """The pictures the program left, within the limits, and notes on what could not be shown.
    Call once the program and everything it started are gone."""
    graphics = session.graphics
    notes = list(session.notes)
    pictures, refused = _read_pictures(session)
    if refused:
        notes.append(
            f"{refused} picture(s) could not be shown: not a PNG of at most"
            f" {graphics.max_dimension}×{graphics.max_dimension} pixels and {session.allowance} bytes"
        )
    # Within the byte allowance, figures and windows come first, then the last frame (what the
    # display showed at the end), then the other frames; they are returned in the order drawn.
    frames = [p for p in pictures if p.kind == "frame"]
    priority = [p for p in pictures if p.kind != "frame"] + frames[-1:] + frames[:-1]
    chosen: set[int] = set()
    used = 0
    for picture in priority:
        if used + len(picture.data) <= session.allowance:
            chosen.add(id(picture))
            used += len(picture.data)
    kept = [p for p in pictures if id(p) in chosen]
    if len(kept) < len(pictures):
        notes.append(
            f"{len(pictures) - len(kept)} picture(s) left out: together they pass the limit of"
            f" {session.allowance} bytes of pictures"
        )
    counts: dict[str, int] = {}
    images = []
    for picture in kept:
        counts[picture.kind] = counts.get(picture.kind, 0) + 1
        images.append(
            Image(
                MEDIA_PNG,
                f"{picture.kind} {counts[picture.kind]}",
                picture.header.width,
                picture.header.height,
                picture.data,
            )
        )
    animation = _animate([p for p in kept if p.kind == "frame"])
    if animation is not None:
        if used + len(animation.data) <= session.allowance:
            images.append(animation)
        else:
            notes.append("the animation of the frames was left out: it would pass the limit of bytes of pictures")
    return images, notes


def _read_pictures(session: Session) -> tuple[list[_Picture], int]:
    """Well-formed pictures in the order they were written, duplicates dropped; and how many files
    had to be refused. Everything in the folder is the program's doing: symlinks are not followed,
    a folder it locked is opened up again (it is the harness's own uid), and nothing in it may
    make the harness fail."""
    graphics = session.graphics
    try:
        folder = os.open(PICTURES_DIR, _DIR_FLAGS)
    except OSError:
        return [], 0  # the program removed or replaced the folder
    try:
        os.fchmod(folder, 0o700)
        found: list[tuple[int, str, str]] = []
        with os.scandir(folder) as entries:
            for entry in entries:
                match = shim.PICTURE_NAME.match(entry.name)
                if match and entry.is_file(follow_symlinks=False):
                    found.append((entry.stat(follow_symlinks=False).st_mtime_ns, entry.name, match.group(3)))
        found.sort()
        if len(found) > graphics.max_images:
            # More than the shim writes (a program's python children each have their own budget,
            # and a program may write files here itself): the first ones and the very last.
            found = found[: graphics.max_images - 1] + found[-1:] if graphics.max_images > 0 else []
        pictures: list[_Picture] = []
        seen: set[bytes] = set()
        refused = 0
        for written_ns, name, kind in found:
            data = read_file(folder, name, session.allowance)
            header = check(data, graphics) if data is not None else None
            if data is None or header is None:
                refused += 1
                continue
            digest = hashlib.sha256(data).digest()
            if digest not in seen:
                seen.add(digest)
                pictures.append(_Picture(kind, data, header, written_ns))
        return pictures, refused
    except OSError:
        return [], 0
    finally:
        os.close(folder)


def read_file(folder: int, name: str, max_bytes: int) -> bytes | None:
    """A regular file the program may have written (in the folder open as `folder`), if it is at
    most max_bytes; never follows a link or waits on a FIFO."""
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=folder)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            return None
        chunks = []
        while chunk := os.read(fd, max_bytes + 1 - sum(map(len, chunks))):
            chunks.append(chunk)
        data = b"".join(chunks)
        return data if len(data) <= max_bytes else None
    except OSError:
        return None
    finally:
        os.close(fd)


def check(data: bytes, graphics: Graphics) -> png.Header | None:
    """The header of a picture a program wrote, if it is a plain PNG within the size limit."""
    try:
        header = png.read_header(data)
    except ValueError:
        return None
    fits = header.width <= graphics.max_dimension and header.height <= graphics.max_dimension
    plain = header.bit_depth == 8 and header.color_type in (png.COLOR_RGB, png.COLOR_RGBA)
    return header if fits and plain and not header.interlaced and not header.animated else None


def _animate(frames: list[_Picture]) -> Image | None:
    """An APNG of the frames the size of the last one (a program may change its display's size),
    each shown as long as it was on the display; None for fewer than two."""
    if not frames:
        return None
    last = frames[-1].header
    shape = (last.width, last.height, last.color_type)
    same = [f for f in frames if (f.header.width, f.header.height, f.header.color_type) == shape]
    if len(same) < 2:
        return None
    delays = [(b.written_ns - a.written_ns) // 1_000_000 for a, b in itertools.pairwise(same)]
    try:
        movie = png.animate([png.Frame(f.data, d) for f, d in zip(same, [*delays, _LAST_FRAME_MS], strict=True)])
    except ValueError:
        return None  # frames a program wrote itself that do not join up (a palette, other settings)
    return Image(MEDIA_APNG, "animation", last.width, last.height, movie)
