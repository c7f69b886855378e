"""Playable graphics through the real sandbox: a live graphical program's window comes out as
frames (downscaled, sent only when it changed), and the viewer's keys, clicks and window close
reach the program — pygame through the shim, turtle through the virtual display. Every frame is
checked pixel by pixel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from runner.docker_executor import DockerExecutor
from runner.executor import ExecRequest, TestInput
from runner.live_session import LiveEnded, LiveFrame, LiveOutput, LiveSession, LiveUpdate
from sandbox import protocol
from tests.graphics.pngdecode import Picture, close, decode
from tests.sandbox.conftest import docker_client, executor, sandbox_settings  # noqa: F401 (fixtures)

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)
# Container, interpreter and display start-up on a busy 2-core machine; only a hang runs out.
WAIT_S = 30.0

# 800×600: more than the live frames' 640 pixels, so frames are half again smaller.
PYGAME = """
import pygame
pygame.init()
screen = pygame.display.set_mode((800, 600))
clock = pygame.time.Clock()
x = 80
running = True
print("ready", flush=True)
while running:
    for event in pygame.event.get():
        if event.type == pygame.QUIT:
            running = False
        elif event.type == pygame.KEYDOWN and event.key == pygame.K_RIGHT:
            x = 560
            print("moved", flush=True)
    screen.fill((0, 0, 255))
    pygame.draw.rect(screen, (255, 0, 0), (x, 260, 80, 80))
    pygame.display.flip()  # the same picture 30 times a second
    clock.tick(30)
pygame.quit()
print("bye", flush=True)
"""

TURTLE = """
import turtle
screen = turtle.Screen()
screen.bgcolor("white")
pen = turtle.Turtle()
pen.hideturtle()
pen.speed(0)
pen.penup()

def clicked(x, y):
    pen.goto(x, y)
    pen.dot(40, "red")
    print("clicked", flush=True)

def up():
    screen.bgcolor("blue")
    print("up", flush=True)

screen.onscreenclick(clicked)
screen.onkey(up, "Up")
screen.listen()
print("ready", flush=True)
turtle.done()
print("closed", flush=True)
"""


def live_request(code: str) -> ExecRequest:
    return ExecRequest(
        language="python", code=code, tests=[TestInput("live", b"")], owner="user-1", live=True, graphical=True
    )


class Viewer:
    """The person's side: the frames and output so far, and how it ended."""

    def __init__(self, session: LiveSession) -> None:
        self.session = session
        self.frames: list[Picture] = []
        self.stdout = b""
        self.ended: LiveEnded | None = None
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._follow(session.updates()))

    async def _follow(self, updates: AsyncIterator[LiveUpdate]) -> None:
        async for update in updates:
            if isinstance(update, LiveFrame):
                picture = decode(update.png)
                assert (picture.width, picture.height) == (update.width, update.height)
                self.frames.append(picture)
            elif isinstance(update, LiveOutput) and update.stream == "stdout":
                self.stdout += update.data
            elif isinstance(update, LiveEnded):
                self.ended = update
            self._changed.set()

    async def until(self, done: Callable[[], bool]) -> None:
        try:
            async with asyncio.timeout(WAIT_S):
                while not done():
                    if self._task.done():
                        raise AssertionError(f"the session ended first: {self.ended}, stdout {self.stdout!r}")
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"not seen in {WAIT_S:g} s: {len(self.frames)} frame(s), stdout {self.stdout!r}"
            ) from None

    async def frame_where(self, looks_right: Callable[[Picture], bool]) -> Picture:
        await self.until(lambda: any(looks_right(frame) for frame in self.frames))
        return next(frame for frame in self.frames if looks_right(frame))

    async def end(self) -> LiveEnded:
        async with asyncio.timeout(WAIT_S):
            await self._task
        assert self.ended is not None
        return self.ended

    async def click(self, x: int, y: int) -> None:
        await self.session.send(protocol.PointerEvent("move", x, y, 0))
        await self.session.send(protocol.PointerEvent("down", x, y, 1))
        await self.session.send(protocol.PointerEvent("up", x, y, 1))

    async def press(self, name: str) -> None:
        await self.session.send(protocol.KeyEvent(name, name, True))
        await self.session.send(protocol.KeyEvent(name, name, False))


# The square's centre before and after the key, in the frame (0.8 of the window's pixels).
LEFT, RIGHT = (96, 240), (480, 240)


def square_at(frame: Picture, here: tuple[int, int], not_there: tuple[int, int]) -> bool:
    return close(frame.rgb(*here), RED) and close(frame.rgb(*not_there), BLUE)


async def test_a_pygame_window_is_played_with_keys_and_closed(executor: DockerExecutor) -> None:  # noqa: F811
    viewer = Viewer(await executor.open_live(live_request(PYGAME)))
    first = await viewer.frame_where(lambda frame: square_at(frame, LEFT, RIGHT))
    assert (first.width, first.height) == (640, 480)  # 800×600, downscaled
    # A window that does not change is sent once, however often the program redraws it.
    await asyncio.sleep(2.0)
    assert len(viewer.frames) == 1, len(viewer.frames)
    await viewer.press("ArrowRight")
    await viewer.frame_where(lambda frame: square_at(frame, RIGHT, LEFT))
    assert b"moved" in viewer.stdout
    await viewer.session.send(protocol.CloseWindow())
    ended = await viewer.end()
    assert (ended.ending, ended.exit_code) == ("finished", 0), ended
    assert viewer.stdout.endswith(b"bye\n")


async def test_a_turtle_window_takes_clicks_keys_and_a_close(executor: DockerExecutor) -> None:  # noqa: F811
    viewer = Viewer(await executor.open_live(live_request(TURTLE)))
    await viewer.until(lambda: b"ready" in viewer.stdout)
    blank = await viewer.frame_where(lambda frame: close(frame.rgb(frame.width // 2, frame.height // 2), WHITE))
    assert max(blank.width, blank.height) <= 640
    x, y = blank.width // 4, blank.height // 3
    await viewer.click(x, y)
    drawn = await viewer.frame_where(lambda frame: close(frame.rgb(x, y), RED))
    assert close(drawn.rgb(3 * blank.width // 4, 2 * blank.height // 3), WHITE)  # only where it was clicked
    await viewer.press("ArrowUp")
    await viewer.frame_where(lambda frame: close(frame.rgb(3 * frame.width // 4, 2 * frame.height // 3), BLUE))
    await viewer.session.send(protocol.CloseWindow())
    ended = await viewer.end()
    assert (ended.ending, ended.exit_code) == ("finished", 0), ended
    assert viewer.stdout == b"ready\nclicked\nup\nclosed\n"
