"""A live job's one program: stdin as a person types it, output as it comes, the window as it
changes, until the program ends or the host says Stop.

The program starts like a test's (its own session, limits, the fork server for Python) and is
watched by the same loop, which also waits for the host's live frames; nothing it writes is held
back to the end. The output limit counts everything streamed, and the wall limit is the whole
session's. Events leave as soon as the loop wakes, so a prompt printed without a newline reaches
the person before the program blocks in input().
"""

from __future__ import annotations

import selectors
import time
from collections.abc import Callable, Generator
from typing import Protocol

from sandbox import protocol
from sandbox.harness import forkserver, process
from sandbox.protocol import Event, Limits

# Input a person typed that the program has not read yet, held by the harness: past this much the
# host is sending faster than any person types, and the rest waits in the pipe's back-pressure.
_MAX_PENDING_STDIN = 1 << 20
_END_OF_FILE = b"\x04"  # VEOF, as a terminal has it by default


class LiveView(Protocol):
    """A live graphical program's window: frames out, events in."""

    interval_s: float  # between two looks at the window

    def frame(self) -> protocol.Image | None:
        """The window as it looks now, if it changed since the last frame sent."""

    def handle(self, message: protocol.KeyEvent | protocol.PointerEvent | protocol.CloseWindow) -> None: ...


class _LiveWatch(process._Watch):
    def __init__(self, running: process.Running, limits: Limits, control_fd: int) -> None:
        super().__init__(running, b"", limits.output_bytes, stop_on_overflow=True, live=True)
        self.control_fd = control_fd
        self.streamed = 0
        self.pending: list[Event] = []
        self.close_when_fed = False  # the terminal stays open between two lines
        self.line_start = True  # nothing typed since the last newline
        self.selector.register(control_fd, selectors.EVENT_READ)

    def keep(self, fd: int, data: bytes) -> None:
        room = self.cap - self.streamed
        if len(data) > room:
            self.exceeded = True
            data = data[: max(room, 0)]
        if data:
            self.streamed += len(data)
            self.pending.append(protocol.Output("stdout" if fd == self.out_r else "stderr", data))

    def type_in(self, data: bytes) -> None:
        if self.stdin_w is None or len(self.stdin) + len(data) > _MAX_PENDING_STDIN:
            return  # the program closed its stdin, or nobody types this fast
        self.stdin = memoryview(bytes(self.stdin) + data)
        self.line_start = data.endswith((b"\n", _END_OF_FILE))
        if self.stdin_w not in self.selector.get_map():
            self.selector.register(self.stdin_w, selectors.EVENT_WRITE)

    def close_stdin(self) -> None:
        # The terminal's end-of-file: ^D at the start of a line (a first one ends a partial line).
        self.type_in(_END_OF_FILE if self.line_start else _END_OF_FILE * 2)

    def drained(self) -> list[Event]:
        events, self.pending = self.pending, []
        return events


def run(
    argv: tuple[str, ...],
    *,
    cwd: str,
    env: dict[str, str],
    limits: Limits,
    next_message: Callable[[], protocol.LiveMessage],
    control_fd: int,
    view: LiveView | None,
    fork_server: forkserver.ForkServer | None,
) -> Generator[Event, None, tuple[process.Outcome, bool]]:
    """Yields the program's Output (and Frame) events while it runs; returns how it ended and
    whether the host stopped it."""
    running = process.start(argv, cwd=cwd, env=env, limits=limits, fork_server=fork_server, terminal=True)
    if isinstance(running, process.Outcome):
        return running, False
    watch = _LiveWatch(running, limits, control_fd)
    deadline = running.started + limits.wall_ms / 1000
    next_look = running.started
    exit_status = None
    stopped = wall_exceeded = False
    try:
        while exit_status is None and not watch.exceeded and not stopped:
            now = time.monotonic()
            if now >= deadline:
                wall_exceeded = True
                break
            wake = deadline if view is None else min(deadline, next_look)
            for key, _ in watch.selector.select(max(0.0, wake - now)):
                if key.fd == watch.pidfd:
                    exit_status = watch._reap()
                elif key.fd == watch.stdin_w:
                    watch._feed()
                elif key.fd == control_fd:
                    stopped = _take(next_message(), watch, view)
                else:
                    watch._drain(key.fd)
            yield from watch.drained()
            if view is not None and time.monotonic() >= next_look:
                next_look = time.monotonic() + view.interval_s
                if (image := view.frame()) is not None:
                    yield protocol.Frame(image)
        outcome = watch.finish(exit_status, wall_exceeded)
        yield from watch.drained()
        return outcome, stopped
    finally:
        watch._close_all()


def _take(message: protocol.LiveMessage, watch: _LiveWatch, view: LiveView | None) -> bool:
    """Act on one live frame; True when it stops the program."""
    match message:
        case protocol.TypeIn():
            watch.type_in(message.data)
        case protocol.CloseStdin():
            watch.close_stdin()
        case protocol.Stop():
            return True
        case protocol.KeyEvent() | protocol.PointerEvent() | protocol.CloseWindow():
            if view is not None:
                view.handle(message)
        case protocol.EndLive():
            raise protocol.ProtocolError("live: the end of a live job before its Done")
    return False


def await_end(next_message: Callable[[], protocol.LiveMessage]) -> None:
    """After a live job's Done: skip what the host sent before it heard Done (typing, a late
    Stop), up to its EndLive."""
    while not isinstance(next_message(), protocol.EndLive):
        pass
