"""A live graphical run's pieces without Docker: key names, downscaling and the way back for the
pointer, the harness's view (frames deduplicated, bad ones refused, input routed without ever
waiting), and the shim's pygame input on a stand-in pygame."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sandbox import protocol
from sandbox.graphics import keys, live_link, png, pygame_input, xwd
from sandbox.harness import live_view
from tests.graphics.pngdecode import decode
from tests.graphics.xwdfile import xwd_file

LIMITS = protocol.Graphics(max_images=5, max_dimension=100, max_image_bytes=50_000, display=True, live_frame_ms=66)


def solid(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    return png.encode_rgb(width, height, bytes(color) * (width * height))


@pytest.mark.parametrize(
    ("code", "key", "pygame", "keysym", "text"),
    [
        ("KeyA", "A", "K_a", 0x61, "a"),  # the physical key decides: Shift is a key of its own
        ("ArrowLeft", "ArrowLeft", "K_LEFT", 0xFF51, ""),
        ("Digit7", "&", "K_7", 0x37, "7"),
        ("Space", " ", "K_SPACE", 0x20, " "),
        ("Enter", "Enter", "K_RETURN", 0xFF0D, "\r"),
        ("F5", "F5", "K_F5", 0xFFC2, ""),
        ("", "ArrowUp", "K_UP", 0xFF52, ""),  # no code (an on-screen keyboard): the key's name
        ("", "!", 33, 33, "!"),  # a printable character: its own code
        ("", "Q", ord("q"), ord("Q"), "Q"),
    ],
)
def test_browser_keys_name_pygame_and_x_keys(code: str, key: str, pygame: str | int, keysym: int, text: str) -> None:
    assert keys.lookup(code, key) == keys.Key(pygame, keysym, text)


def test_unknown_keys_and_modifiers() -> None:
    assert keys.lookup("", "Dead") is None and keys.lookup("Unidentified", "é") is None
    assert keys.modifier("ShiftRight", "Shift") == "KMOD_RSHIFT" and keys.modifier("", "Control") == "KMOD_LCTRL"
    assert keys.modifier("KeyA", "a") is None


def test_downscaling_and_the_pointer_way_back() -> None:
    assert live_link.fit(1600, 1200, 800) == (800, 600)
    assert live_link.fit(640, 480, 800) == (640, 480)  # never enlarged
    assert live_link.fit(5000, 2, 800) == (800, 1)  # never below a pixel
    assert live_link.to_window(400, 300, (800, 600), (1600, 1200)) == (800, 600)
    assert live_link.to_window(-5, 10_000, (800, 600), (1600, 1200)) == (0, 1199)  # inside the window


@pytest.mark.parametrize(
    ("data", "placement"),
    [
        (b"10 -20 300 200 4194314\n", live_link.Placement(10, -20, 300, 200, 4194314)),
        (b"10 20 0 200 1", None),  # no width
        (b"10 20 300 200", None),
        (b"10 20 300 200 1 2", None),
        (b"10 20 99999999999 200 1", None),
        (b"1e3 20 300 200 1", None),
        (b"\xff\xfe", None),
    ],
)
def test_a_window_placement_is_checked(data: bytes, placement: live_link.Placement | None) -> None:
    assert live_link.Placement.decode(data) == placement


class Display:
    """Records what the view asks of the X server."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def key(self, keysym: int, down: bool) -> None:
        self.calls.append(("key", keysym, down))

    def move(self, x: int, y: int) -> None:
        self.calls.append(("move", x, y))

    def button(self, button: int, down: bool) -> None:
        self.calls.append(("button", button, down))

    def close_window(self, frame_id: int) -> None:
        self.calls.append(("close", frame_id))

    def close(self) -> None:
        pass


@pytest.fixture
def link(tmp_path: Path) -> Path:
    os.mkfifo(tmp_path / live_link.EVENTS_NAME)
    return tmp_path


def open_view(folder: Path, screen: Path | None = None, display: Display | None = None) -> live_view.View:
    events = os.open(folder / live_link.EVENTS_NAME, os.O_RDWR | os.O_NONBLOCK)
    screen_fd = None if screen is None else os.open(screen, os.O_RDONLY)
    return live_view.View(LIMITS, os.open(folder, os.O_RDONLY | os.O_DIRECTORY), events, screen_fd, display)  # type: ignore[arg-type]


def write_frame(folder: Path, data: bytes) -> None:
    """As the shim does: whole, under a new name, then renamed."""
    (folder / ".partial").write_bytes(data)
    os.replace(folder / ".partial", folder / live_link.FRAME_NAME)


def test_a_frame_is_sent_once_until_it_changes(link: Path) -> None:
    view = open_view(link)
    try:
        assert view.frame() is None  # nothing drawn yet
        write_frame(link, solid(40, 30, (255, 0, 0)))
        first = view.frame()
        assert first is not None and (first.label, first.width, first.height) == ("frame", 40, 30)
        assert decode(first.data).rgb(5, 5) == (255, 0, 0)
        assert view.frame() is None  # nothing new
        write_frame(link, solid(40, 30, (255, 0, 0)))
        assert view.frame() is None  # written again, the same picture
        write_frame(link, solid(40, 30, (0, 0, 255)))
        second = view.frame()
        assert second is not None and decode(second.data).rgb(5, 5) == (0, 0, 255)
    finally:
        view.close()


@pytest.mark.parametrize(
    "spoil",
    [
        lambda folder: write_frame(folder, b"not a picture"),
        lambda folder: write_frame(folder, solid(101, 10, (1, 2, 3))),  # over the size limit
        lambda folder: write_frame(folder, solid(100, 100, (1, 2, 3))[:-12]),  # cut short
        lambda folder: write_frame(folder, os.urandom(60_000)),  # over the byte limit
        lambda folder: os.symlink(folder / "elsewhere.png", folder / live_link.FRAME_NAME),
        lambda folder: os.mkfifo(folder / live_link.FRAME_NAME),  # opening it must not wait
    ],
)
def test_a_bad_frame_is_refused(link: Path, spoil: Any) -> None:
    (link / "elsewhere.png").write_bytes(solid(10, 10, (9, 9, 9)))
    spoil(link)
    view = open_view(link)
    try:
        assert view.frame() is None
    finally:
        view.close()


def screen_file(folder: Path) -> Path:
    screen = folder / "Xvfb_screen0"
    # Green, with a red square at 100..120 × 60..80.
    screen.write_bytes(xwd_file(400, 300, lambda x, y: (255, 0, 0) if 100 <= x < 120 and 60 <= y < 80 else (0, 128, 0)))
    return screen


def test_a_tk_window_is_read_from_the_screen_shrunk_and_the_pointer_maps_back(link: Path) -> None:
    display = Display()
    view = open_view(link, screen_file(link), display)
    try:
        (link / live_link.WINDOW_NAME).write_bytes(live_link.Placement(50, 40, 200, 150, 77).encode())
        shown = view.frame()
        assert shown is not None and (shown.label, shown.width, shown.height) == ("window", 100, 75)
        picture = decode(shown.data)
        assert picture.rgb(27, 12) == (255, 0, 0) and picture.rgb(5, 5) == (0, 128, 0)  # (104, 64) on screen
        assert view.frame() is None  # the screen did not change
        view.handle(protocol.PointerEvent("down", 27, 12, 1))
        view.handle(protocol.PointerEvent("up", 27, 12, 9))  # no such button: only the move
        view.handle(protocol.KeyEvent("ArrowUp", "ArrowUp", True))
        view.handle(protocol.KeyEvent("", "Dead", True))  # no such key: nothing
        view.handle(protocol.CloseWindow())
        assert display.calls == [
            ("move", 104, 64),
            ("button", 1, True),
            ("move", 104, 64),
            ("key", 0xFF52, True),
            ("close", 77),
        ]
    finally:
        view.close()


def test_a_forged_screen_is_refused_without_reading_it(tmp_path: Path) -> None:
    screen = tmp_path / "Xvfb_screen0"
    screen.write_bytes(xwd_file(64, 32, lambda x, y: (0, 0, 0)))
    fd = os.open(screen, os.O_RDONLY)
    try:
        assert xwd.read_region(fd, 0, 0, 64, 32, 100, max_screen=(64, 32)) is not None
        with pytest.raises(ValueError):
            xwd.read_region(fd, 0, 0, 64, 32, 100, max_screen=(63, 32))  # claims more than Xvfb has
    finally:
        os.close(fd)


def read_events(folder: Path) -> list[dict[str, Any]]:
    fd = os.open(folder / live_link.EVENTS_NAME, os.O_RDONLY | os.O_NONBLOCK)
    try:
        data = os.read(fd, 1 << 20)
    except BlockingIOError:
        data = b""
    finally:
        os.close(fd)
    return [event for line in data.splitlines() if (event := live_link.decode_event(line)) is not None]


def test_without_a_tk_window_input_goes_to_the_shim_and_never_waits(link: Path) -> None:
    view = open_view(link, screen_file(link), Display())
    reader = os.open(link / live_link.EVENTS_NAME, os.O_RDONLY | os.O_NONBLOCK)  # the shim's end
    try:
        view.frame()  # no window placed: a pygame program's frames
        view.handle(protocol.KeyEvent("ArrowLeft", "ArrowLeft", True))
        view.handle(protocol.PointerEvent("move", -3, 99_999, 0))
        view.handle(protocol.CloseWindow())
        lines = os.read(reader, 4096).splitlines()
        assert [live_link.decode_event(line) for line in lines] == [
            {"type": "key", "code": "ArrowLeft", "key": "ArrowLeft", "down": True},
            {"type": "pointer", "kind": "move", "x": 0, "y": 32768, "button": 0},
            {"type": "close"},
        ]
        # Nobody reads: the FIFO fills, and the view drops what does not fit instead of waiting.
        for _ in range(5000):
            view.handle(protocol.KeyEvent("KeyA", "a", True))
    finally:
        os.close(reader)
        view.close()


class FakePygame(SimpleNamespace):
    """What the shim's pygame input touches of pygame, recording the events it posts."""

    def __init__(self) -> None:
        posted: list[tuple[int, dict[str, Any]]] = []
        surface = SimpleNamespace(get_size=lambda: (640, 480))
        super().__init__(
            posted=posted,
            error=RuntimeError,
            QUIT=256,
            KEYDOWN=768,
            KEYUP=769,
            TEXTINPUT=771,
            MOUSEMOTION=1024,
            MOUSEBUTTONDOWN=1025,
            MOUSEBUTTONUP=1026,
            K_LEFT=1073741904,
            K_a=97,
            K_LSHIFT=1073742049,
            KMOD_LSHIFT=1,
            display=SimpleNamespace(get_init=lambda: True, get_surface=lambda: surface),
            event=SimpleNamespace(Event=lambda kind, **kw: (kind, kw), post=posted.append),
            # pygame's own table is indexed by key constant, as this one
            key=SimpleNamespace(get_pressed=lambda: defaultdict(bool), get_mods=lambda: 0),
            mouse=SimpleNamespace(get_pos=lambda: (0, 0), get_pressed=lambda num_buttons=3: (False,) * num_buttons),
        )


def test_the_shims_pygame_input() -> None:
    pg = FakePygame()
    handler = pygame_input.PygameInput(pg)  # type: ignore[arg-type]
    handler.install()
    handler.shown = (320, 240)  # the frames are half the window's size
    handler.handle({"type": "key", "code": "ShiftLeft", "key": "Shift", "down": True})
    handler.handle({"type": "key", "code": "KeyA", "key": "A", "down": True})
    assert pg.key.get_pressed()[pg.K_a] and not pg.key.get_pressed()[pg.K_LEFT]
    assert pg.key.get_mods() == pg.KMOD_LSHIFT
    handler.handle({"type": "key", "code": "KeyA", "key": "A", "down": False})
    handler.handle({"type": "pointer", "kind": "down", "x": 10, "y": 20, "button": 1})
    assert pg.mouse.get_pos() == (20, 40) and pg.mouse.get_pressed() == (True, False, False)
    handler.handle({"type": "pointer", "kind": "up", "x": 10, "y": 20, "button": 1})
    handler.handle({"type": "key", "code": "NoSuchKey", "key": "Dead", "down": True})
    handler.handle({"type": "pointer", "kind": "down", "x": "10", "y": 20, "button": 1})  # not the harness's
    handler.handle({"type": "close"})
    assert not pg.key.get_pressed()[pg.K_a] and pg.mouse.get_pressed() == (False, False, False)
    assert pg.posted == [
        (pg.KEYDOWN, {"key": pg.K_LSHIFT, "mod": 1, "unicode": "", "scancode": 0}),
        (pg.KEYDOWN, {"key": pg.K_a, "mod": 1, "unicode": "A", "scancode": 0}),
        (pg.TEXTINPUT, {"text": "A"}),
        (pg.KEYUP, {"key": pg.K_a, "mod": 1, "unicode": "A", "scancode": 0}),
        (pg.MOUSEMOTION, {"pos": (20, 40), "rel": (0, 0), "buttons": (False, False, False)}),
        (pg.MOUSEBUTTONDOWN, {"pos": (20, 40), "button": 1}),
        (pg.MOUSEBUTTONUP, {"pos": (20, 40), "button": 1}),
        (pg.QUIT, {}),
    ]
