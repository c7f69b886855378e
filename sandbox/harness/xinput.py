"""The viewer's keys and mouse on a live run's virtual display, through the XTEST extension: a
minimal X11 client over the display's Unix socket, written by hand (the image has no xdotool, and
a package for it would change the base image).

The connection is made, and everything that needs a reply asked (the root window, XTEST, the
keyboard map, two atoms), before the program starts, when the X server is still the harness's
Xvfb. From then on only requests without replies are sent, without ever waiting: the program may
kill Xvfb, stop it, or put another server in its place, and a request that cannot go out at once
ends the connection (the display is no longer anyone's to serve). What the server sends back
(errors for a window that is gone) is read and thrown away, so its buffer never fills.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import time

_SOCKET = "/tmp/.X11-unix/X{}"
_SETUP_S = 2.0  # every round trip before the program starts, together
_MAX_REPLY_BYTES = 1 << 20
_MAX_DISCARD_BYTES = 1 << 16  # thrown away per request sent
_MAX_COORDINATE = (1 << 15) - 1

# Core requests and event codes (X Window System Protocol, chapter 9 and 11).
_INTERN_ATOM = 16
_SEND_EVENT = 25
_QUERY_EXTENSION = 98
_GET_KEYBOARD_MAPPING = 101
_KEY_PRESS, _KEY_RELEASE, _BUTTON_PRESS, _BUTTON_RELEASE, _MOTION_NOTIFY = 2, 3, 4, 5, 6
_CLIENT_MESSAGE = 33
_XTEST_FAKE_INPUT = 2
_REPLY = 1
_UNIT = 32  # errors, events and every reply's fixed part


class _Gone(Exception):
    """The server did not answer as Xvfb does, in time."""


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


class Display:
    """A connection to one virtual display, able to press keys, move and press the mouse, and ask
    a window to close as a window manager would."""

    def __init__(self, sock: socket.socket, root: int, xtest: int, keycodes: dict[int, int], atoms: tuple[int, int]):
        self._sock: socket.socket | None = sock
        self.root = root
        self._xtest = xtest
        self._keycodes = keycodes  # keysym -> keycode, the unshifted level first
        self._protocols, self._delete = atoms

    @classmethod
    def connect(cls, number: int) -> Display | None:
        """The display's connection, None when it is not an Xvfb with XTEST answering in time."""
        deadline = time.monotonic() + _SETUP_S
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.settimeout(_SETUP_S)
            sock.connect(_SOCKET.format(number))
            sock.setblocking(False)
            display = cls._set_up(sock, deadline)
        except (OSError, _Gone, struct.error):
            sock.close()
            return None
        return display

    @classmethod
    def _set_up(cls, sock: socket.socket, deadline: float) -> Display:
        # Little-endian, protocol 11.0, no authorisation: Xvfb lets local clients in without one.
        _send_all(sock, struct.pack("<BxHHHHxx", ord("l"), 11, 0, 0, 0), deadline)
        head = _recv_exactly(sock, 8, deadline)
        status, _, _, _, extra_units = struct.unpack("<BBHHH", head)
        if status != 1 or extra_units * 4 > _MAX_REPLY_BYTES:
            raise _Gone("the X server refused the connection")
        setup = _recv_exactly(sock, extra_units * 4, deadline)
        vendor_length, _, _, formats, _, _, _, _, min_keycode, max_keycode = struct.unpack_from(
            "<HHBBBBBBBB", setup, 16
        )
        (root,) = struct.unpack_from("<I", setup, 32 + len(_pad(b"\0" * vendor_length)) + 8 * formats)

        name = b"XTEST"
        reply = _ask(
            sock, struct.pack("<BxHHxx", _QUERY_EXTENSION, 2 + len(_pad(name)) // 4, len(name)) + _pad(name), deadline
        )
        present, xtest = reply[8], reply[9]
        if not present:
            raise _Gone("the X server has no XTEST")

        count = max_keycode - min_keycode + 1
        reply = _ask(sock, struct.pack("<BxHBBxx", _GET_KEYBOARD_MAPPING, 2, min_keycode, count), deadline)
        per_keycode = reply[1]
        symbols = struct.unpack_from(f"<{count * per_keycode}I", reply, _UNIT)
        keycodes: dict[int, int] = {}
        for level in range(per_keycode):  # unshifted first: the viewer's Shift is a key of its own
            for index in range(count):
                keycodes.setdefault(symbols[index * per_keycode + level], min_keycode + index)
        keycodes.pop(0, None)  # NoSymbol

        atoms = []
        for atom in (b"WM_PROTOCOLS", b"WM_DELETE_WINDOW"):
            request = struct.pack("<BBHHxx", _INTERN_ATOM, 0, 2 + len(_pad(atom)) // 4, len(atom)) + _pad(atom)
            atoms.append(struct.unpack_from("<I", _ask(sock, request, deadline), 8)[0])
        return cls(sock, root, xtest, keycodes, (atoms[0], atoms[1]))

    def _send(self, request: bytes) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            with contextlib.suppress(BlockingIOError):
                for _ in range(_MAX_DISCARD_BYTES // 4096):
                    if not sock.recv(4096):
                        raise OSError("the X server closed the connection")
            if sock.send(request) != len(request):
                raise OSError("the X server does not keep up")  # a request cut in two: no way back
        except OSError:
            self.close()

    def _fake(self, kind: int, detail: int, x: int = 0, y: int = 0) -> None:
        self._send(
            struct.pack("<BBHBBxxIIxxxxxxxxhhxxxxxxxB", self._xtest, _XTEST_FAKE_INPUT, 9, kind, detail, 0, 0, x, y, 0)
        )

    def key(self, keysym: int, down: bool) -> None:
        keycode = self._keycodes.get(keysym)
        if keycode is not None:
            self._fake(_KEY_PRESS if down else _KEY_RELEASE, keycode)

    def move(self, x: int, y: int) -> None:
        clip = min(max(0, x), _MAX_COORDINATE), min(max(0, y), _MAX_COORDINATE)
        self._fake(_MOTION_NOTIFY, 0, *clip)

    def button(self, button: int, down: bool) -> None:
        self._fake(_BUTTON_PRESS if down else _BUTTON_RELEASE, button)

    def close_window(self, frame_id: int) -> None:
        """WM_DELETE_WINDOW to a toplevel's frame: Tk calls the window's close handler (by default
        it destroys the window; turtle's also ends its drawing)."""
        data = struct.pack("<5I", self._delete, 0, 0, 0, 0)
        event = struct.pack("<BBHII", _CLIENT_MESSAGE, 32, 0, frame_id, self._protocols) + data
        self._send(struct.pack("<BBHII", _SEND_EVENT, 0, 11, frame_id, 0) + event)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _wait(sock: socket.socket, writable: bool, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    ready = (
        select.select([], [sock], [], max(0.0, remaining))
        if writable
        else select.select([sock], [], [], max(0.0, remaining))
    )
    if remaining <= 0 or not any(ready):
        raise _Gone("the X server did not answer in time")


def _send_all(sock: socket.socket, data: bytes, deadline: float) -> None:
    view = memoryview(data)
    while view:
        _wait(sock, True, deadline)
        view = view[sock.send(view) :]


def _recv_exactly(sock: socket.socket, length: int, deadline: float) -> bytes:
    data = bytearray()
    while len(data) < length:
        _wait(sock, False, deadline)
        chunk = sock.recv(length - len(data))
        if not chunk:
            raise _Gone("the X server closed the connection")
        data += chunk
    return bytes(data)


def _ask(sock: socket.socket, request: bytes, deadline: float) -> bytes:
    """The reply to one request (its fixed part and the rest); an error is the server's no."""
    _send_all(sock, request, deadline)
    while True:
        unit = _recv_exactly(sock, _UNIT, deadline)
        if unit[0] == _REPLY:
            (extra,) = struct.unpack_from("<I", unit, 4)
            if extra * 4 > _MAX_REPLY_BYTES:
                raise _Gone("an X reply too long to be Xvfb's")
            return unit + _recv_exactly(sock, extra * 4, deadline)
        if unit[0] == 0:
            raise _Gone(f"the X server answered with error {unit[1]}")
        # An event: none was asked for, but a server may send some; skipped.
