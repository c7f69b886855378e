"""Playable graphics through the real sandbox: a live graphical program's window comes out as
frames (downscaled, sent only when it changed), and the viewer's keys, clicks and window close
reach the program — pygame through the shim, turtle through the virtual display. Every frame is
checked pixel by pixel."""

from __future__ import annotations

import asyncio

from runner.docker_executor import DockerExecutor
from sandbox import protocol
from tests.graphics.pngdecode import Picture, close
from tests.sandbox.conftest import docker_client, executor, sandbox_settings  # noqa: F401 (fixtures)
from tests.sandbox.live_console import Console, live_request

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)

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


# The square's centre before and after the key, in the frame (0.8 of the window's pixels).
LEFT, RIGHT = (96, 240), (480, 240)


def square_at(frame: Picture, here: tuple[int, int], not_there: tuple[int, int]) -> bool:
    return close(frame.rgb(*here), RED) and close(frame.rgb(*not_there), BLUE)


async def test_a_pygame_window_is_played_with_keys_and_closed(executor: DockerExecutor) -> None:  # noqa: F811
    viewer = Console(await executor.open_live(live_request(PYGAME, graphical=True)))
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
    viewer = Console(await executor.open_live(live_request(TURTLE, graphical=True)))
    await viewer.until(lambda: b"ready" in viewer.stdout)
    blank = await viewer.frame_where(
        lambda frame: (
            min(frame.width, frame.height) >= 200  # the window laid out, not a first glimpse
            and close(frame.rgb(frame.width // 2, frame.height // 2), WHITE)
        )
    )
    assert max(blank.width, blank.height) <= 640
    x, y = blank.width // 4, blank.height // 3
    await viewer.click(x, y)
    # Only frames of the whole window count (Tk may show it half laid out for a moment).
    size = (blank.width, blank.height)
    drawn = await viewer.frame_where(lambda frame: (frame.width, frame.height) == size and close(frame.rgb(x, y), RED))
    # The dot shows before its handler prints (turtle updates the window mid-handler, which also
    # runs events already waiting): the key goes in once the click is wholly handled.
    await viewer.until(lambda: b"clicked" in viewer.stdout)
    assert close(drawn.rgb(3 * blank.width // 4, 2 * blank.height // 3), WHITE)  # only where it was clicked
    await viewer.press("ArrowUp")
    await viewer.frame_where(lambda frame: close(frame.rgb(3 * frame.width // 4, 2 * frame.height // 3), BLUE))
    await viewer.session.send(protocol.CloseWindow())
    ended = await viewer.end()
    assert (ended.ending, ended.exit_code) == ("finished", 0), ended
    assert viewer.stdout == b"ready\nclicked\nup\nclosed\n"
