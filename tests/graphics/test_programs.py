"""Graphical programs in the real sandbox: each finishes within the graphical wall time with the
right verdict, and what it drew comes back — checked pixel by pixel, not just that a file exists."""

from __future__ import annotations

from tests.graphics.conftest import WALL_S, Draw, labels
from tests.graphics.pngdecode import close, decode, frame_count

RED, GREEN, BLUE, WHITE, YELLOW = (255, 0, 0), (0, 128, 0), (0, 0, 255), (255, 255, 255), (255, 255, 0)
# Container and interpreter start-up on a busy 2-core machine: a job may take this much longer
# than its program's wall time. A program that ended by itself (exit code, no "stopped" note) is
# the proof that it finished within the graphical limit; this bound only catches a hang.
SLACK_S = 10.0

ENDLESS_PYGAME = """
import pygame
pygame.init()
screen = pygame.display.set_mode((320, 240))
clock = pygame.time.Clock()
x = 0
print("started", flush=True)
while True:  # never looks at its events: only the wall time ends it
    screen.fill((0, 0, 255))
    pygame.draw.rect(screen, (255, 0, 0), (x % 280, 100, 40, 40))
    pygame.display.flip()
    x += 7
    clock.tick(30)
"""

QUITTING_PYGAME = """
import pygame
pygame.init()
screen = pygame.display.set_mode((320, 240))
clock = pygame.time.Clock()
x = 0
running = True
while running:
    for event in pygame.event.get():
        if event.type == pygame.QUIT:
            running = False
    screen.fill((0, 0, 255))
    pygame.draw.rect(screen, (255, 0, 0), (x % 280, 100, 40, 40))
    pygame.display.flip()
    x += 7
    clock.tick(30)
pygame.quit()
print("bye after", x // 7, "frames")
"""

TURTLE = """
import turtle
pen = turtle.Turtle()
pen.speed(0)
pen.pencolor("red")
pen.pensize(12)
pen.forward(150)
print("drawn")
turtle.done()
print("window closed")
"""

PLOTS = """
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

figure = plt.figure(figsize=(4, 3), dpi=100, facecolor="yellow")
figure.patches.append(Rectangle((0, 0), 0.5, 1, transform=figure.transFigure, color="red"))
plt.show()
print("shown")
second = plt.figure(figsize=(2, 2), dpi=50, facecolor="blue")
second.savefig("plot.png")
print("saved")
"""

TK_MAINLOOP = """
import tkinter as tk
root = tk.Tk()
canvas = tk.Canvas(root, width=200, height=100, bg="green", highlightthickness=0)
canvas.create_rectangle(50, 25, 150, 75, fill="red", outline="red")
canvas.pack()
root.mainloop()
print("mainloop returned")
"""


def _pygame_frame_checks(frame: bytes) -> None:
    picture = decode(frame)
    assert (picture.width, picture.height) == (320, 240)
    assert close(picture.rgb(5, 5), BLUE) and close(picture.rgb(315, 235), BLUE)
    # The red square is somewhere on row 120 (between y 100 and 140), and only there.
    assert any(close(picture.rgb(x, 120), RED) for x in range(320))
    assert not any(close(picture.rgb(x, 60), RED) for x in range(320))


async def test_a_pygame_loop_that_never_ends_is_stopped_with_what_it_drew(draw: Draw) -> None:
    drawn = await draw(ENDLESS_PYGAME)
    assert drawn.outcome.status == "ok", drawn.stderr
    assert drawn.outcome.stdout == b"started\n"
    assert f"stopped after {WALL_S:g} s — here is what it drew" in drawn.stderr
    assert WALL_S * 1000 <= drawn.outcome.time_ms < WALL_S * 1000 + 1000
    assert drawn.seconds < WALL_S + SLACK_S
    frames = drawn.stills()
    assert 2 <= len(frames) <= 20 and all(label.startswith("frame ") for label in labels(drawn)[:-1])
    for frame in (frames[0], frames[-1]):
        _pygame_frame_checks(frame)
    animation = drawn.animation()
    assert animation is not None and frame_count(animation) >= 2
    _pygame_frame_checks(animation)  # its default image is the first frame


async def test_a_pygame_loop_that_handles_quit_ends_normally(draw: Draw) -> None:
    drawn = await draw(QUITTING_PYGAME)
    assert drawn.outcome.status == "ok" and drawn.outcome.exit_code == 0, drawn.stderr
    assert drawn.outcome.stdout.startswith(b"bye after ")
    # QUIT came before the wall time: the frame budget was spent, or the picture stood still.
    assert drawn.outcome.signal is None and "stopped after" not in drawn.stderr
    assert drawn.seconds < WALL_S + SLACK_S
    frames = drawn.stills()
    assert len(frames) >= 2
    for frame in frames:
        _pygame_frame_checks(frame)
    # The square moves: the frames differ.
    assert len(set(frames)) == len(frames)
    assert drawn.animation() is not None


async def test_a_turtle_drawing_is_pictured_and_its_window_closed(draw: Draw) -> None:
    drawn = await draw(TURTLE)
    assert drawn.outcome.status == "ok" and drawn.outcome.exit_code == 0, drawn.stderr
    assert drawn.outcome.stdout == b"drawn\nwindow closed\n"
    assert drawn.seconds < WALL_S + SLACK_S
    assert labels(drawn) == ["window 1"]
    picture = decode(drawn.stills()[0])
    # Turtle starts at the canvas's centre, heading right.
    cx, cy = picture.width // 2, picture.height // 2
    assert close(picture.rgb(cx + 75, cy), RED) and close(picture.rgb(cx + 20, cy + 3), RED)
    assert close(picture.rgb(cx, cy - 60), WHITE) and close(picture.rgb(cx - 75, cy), WHITE)


async def test_a_turtle_program_stuck_after_drawing_is_stopped_with_its_window(draw: Draw) -> None:
    # Tk never gets to run again: the window is pictured from the screen by the shim's own thread.
    code = TURTLE.replace("turtle.done()", "turtle.update()\nwhile True:\n    pass")
    drawn = await draw(code)
    assert drawn.outcome.status == "ok" and f"stopped after {WALL_S:g} s" in drawn.stderr
    picture = decode(drawn.stills()[0])
    assert close(picture.rgb(picture.width // 2 + 75, picture.height // 2), RED)


async def test_matplotlib_figures_shown_or_saved_are_pictured(draw: Draw) -> None:
    drawn = await draw(PLOTS)
    assert drawn.outcome.status == "ok" and drawn.outcome.exit_code == 0, drawn.stderr
    assert drawn.outcome.stdout == b"shown\nsaved\n"
    assert labels(drawn) == ["figure 1", "figure 2"]
    shown, saved = (decode(data) for data in drawn.stills())
    assert (shown.width, shown.height) == (400, 300)
    assert close(shown.rgb(100, 150), RED) and close(shown.rgb(300, 150), YELLOW)
    assert (saved.width, saved.height) == (100, 100) and close(saved.rgb(50, 50), BLUE)


async def test_a_tk_program_blocked_in_mainloop_gets_its_window_closed(draw: Draw) -> None:
    drawn = await draw(TK_MAINLOOP)
    assert drawn.outcome.status == "ok" and drawn.outcome.exit_code == 0, drawn.stderr
    assert drawn.outcome.stdout == b"mainloop returned\n"
    assert drawn.seconds < WALL_S + SLACK_S
    assert labels(drawn) == ["window 1"]
    picture = decode(drawn.stills()[0])
    assert (picture.width, picture.height) == (200, 100)
    assert close(picture.rgb(10, 10), GREEN) and close(picture.rgb(190, 90), GREEN)
    assert close(picture.rgb(100, 50), RED) and close(picture.rgb(55, 30), RED)


async def test_flipping_as_fast_as_possible_stays_within_the_frame_limits(draw: Draw) -> None:
    code = """
import pygame
pygame.init()
screen = pygame.display.set_mode((1600, 1200))
n = 0
running = True
while running:
    for event in pygame.event.get():
        if event.type == pygame.QUIT:
            running = False
    screen.fill((n % 256, 255 - n % 256, 0))
    pygame.display.flip()
    n += 1
print(n > 100)
"""
    drawn = await draw(code, graphics_max_frames=6, graphics_max_dimension=400)
    assert drawn.outcome.status == "ok" and drawn.outcome.stdout == b"True\n", drawn.stderr
    stills = drawn.stills()
    assert len(stills) <= 6 and len(drawn.outcome.images) <= 7
    for still in stills:
        picture = decode(still)
        assert (picture.width, picture.height) == (400, 300)  # shrunk to the largest side, in proportion
    assert drawn.seconds < WALL_S + SLACK_S


async def test_a_huge_surface_is_pictured_shrunk(draw: Draw) -> None:
    code = """
import pygame
pygame.init()
screen = pygame.display.set_mode((10000, 10000))
screen.fill((255, 0, 0))
pygame.draw.rect(screen, (0, 0, 255), (5000, 0, 5000, 10000))
pygame.display.flip()
pygame.quit()
print("drawn")
"""
    drawn = await draw(code, memory_limit_mb=768)
    assert drawn.outcome.status == "ok" and drawn.outcome.stdout == b"drawn\n", drawn.stderr
    (still,) = drawn.stills()
    picture = decode(still)
    assert (picture.width, picture.height) == (800, 800)
    assert close(picture.rgb(200, 400), RED) and close(picture.rgb(600, 400), BLUE)


async def test_pictures_stay_within_the_byte_limit(draw: Draw) -> None:
    # Noise does not compress: every frame is about 120 KB.
    code = """
import os, pygame
pygame.init()
screen = pygame.display.set_mode((200, 200))
for _ in range(40):
    screen.blit(pygame.image.frombuffer(os.urandom(200 * 200 * 3), (200, 200), "RGB"), (0, 0))
    pygame.display.flip()
    pygame.time.wait(120)
"""
    drawn = await draw(code, graphics_max_image_bytes=400_000)
    assert drawn.outcome.status == "ok", drawn.stderr
    assert 1 <= len(drawn.outcome.images) <= 4
    assert sum(len(image.data) for image in drawn.outcome.images) <= 400_000
    assert "picture limit" in drawn.stderr


async def test_what_cannot_be_shown_is_said_plainly(draw: Draw) -> None:
    sound = await draw(
        """
import pygame
pygame.mixer.init()
pygame.mixer.Sound(buffer=bytes(4000)).play()
print("played")
"""
    )
    assert sound.outcome.status == "ok" and sound.outcome.stdout == b"played\n"
    assert "sound is not played in the sandbox" in sound.stderr

    missing = await draw("import pyglet\nwindow = pyglet.window.Window()\n")
    assert missing.outcome.status == "runtime_error"
    assert "ModuleNotFoundError" in missing.stderr and "'pyglet' is not installed in the sandbox" in missing.stderr

    opengl = await draw("import pygame\npygame.init()\npygame.display.set_mode((100, 100), pygame.OPENGL)\n")
    assert opengl.outcome.status == "runtime_error"
    assert "OpenGL windows cannot be shown in the sandbox" in opengl.stderr
