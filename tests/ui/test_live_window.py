"""Playing a live graphical program in a real browser with the real sandbox: a key press moves a
pygame rectangle in the next streamed frame (pixel-checked), a click makes turtle draw, and
closing the window ends the program."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page, expect

from tests.ui.conftest import LAPTOP
from tests.ui.helpers import JOB_TIMEOUT_MS, scratchpad_with

pytestmark = [pytest.mark.browser, pytest.mark.docker]

RED = (255, 0, 0)
MOVING_SQUARE = (
    "import pygame\n"
    "screen = pygame.display.set_mode((200, 100))\n"
    "x = 20\n"
    "while True:\n"
    "    for event in pygame.event.get():\n"
    "        if event.type == pygame.QUIT:\n"
    "            raise SystemExit\n"
    "        if event.type == pygame.KEYDOWN and event.key == pygame.K_RIGHT:\n"
    "            x += 100\n"
    "    screen.fill((0, 0, 0))\n"
    "    pygame.draw.rect(screen, (255, 0, 0), (x, 40, 20, 20))\n"
    "    pygame.display.flip()\n"
    "    pygame.time.wait(30)\n"
)
DOT_ON_CLICK = (
    "import turtle\n"
    "pen = turtle.Turtle()\n"
    "pen.hideturtle()\n"
    "def dot(x, y):\n"
    "    pen.penup()\n"
    "    pen.goto(x, y)\n"
    "    pen.dot(60, 'red')\n"
    "turtle.onscreenclick(dot)\n"
    "turtle.done()\n"
)

PIXEL = """async ([fx, fy]) => {
  const img = document.querySelector("#live-window");
  if (!img.naturalWidth) return null;
  try {
    await img.decode();
  } catch {
    return null; // a newer frame replaced this one meanwhile: look again
  }
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const g = canvas.getContext("2d");
  g.drawImage(img, 0, 0);
  const x = Math.floor(fx * img.naturalWidth), y = Math.floor(fy * img.naturalHeight);
  return Array.from(g.getImageData(x, y, 1, 1).data.slice(0, 3));
}"""


async def pixel_becomes(page: Page, fx: float, fy: float, colour: tuple[int, int, int], timeout_s: float = 10) -> None:
    """Wait until the streamed frame's pixel at (fx, fy), as fractions of its size, is `colour`."""
    seen = None
    for _ in range(int(timeout_s / 0.1)):
        seen = await page.evaluate(PIXEL, [fx, fy])
        if seen is not None and all(abs(a - b) <= 8 for a, b in zip(seen, colour, strict=True)):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"pixel at {fx, fy} is {seen}, not {colour}")


async def _live(server: Any, browser: Any, code: str) -> tuple[Any, Page]:
    _, page = await scratchpad_with(server, browser, LAPTOP, code, paste=True)
    await page.get_by_role("button", name="Run live").click()
    await expect(page.locator("#live-window")).to_be_visible(timeout=JOB_TIMEOUT_MS)
    return page.context, page


async def test_a_key_press_moves_the_square_in_the_next_frame(
    server_factory: Callable[..., Any], browser: Any, shot: Callable[..., Any], sandbox_ready: None
) -> None:
    server = await server_factory()
    context, page = await _live(server, browser, MOVING_SQUARE)
    await pixel_becomes(page, 0.15, 0.5, RED)  # the square at x 20-40 of 200
    window = page.get_by_role("img", name="Your program's window")
    await window.click()
    await window.press("ArrowRight")
    await pixel_becomes(page, 0.65, 0.5, RED)  # now at x 120-140
    await pixel_becomes(page, 0.15, 0.5, (0, 0, 0))
    await shot(page, "live-pygame")
    # Another student cannot watch or play it.
    socket = await page.locator("#live-section").get_attribute("data-socket")
    assert socket
    other = await server.make_user("student")
    try:
        async with other.websocket(socket):
            raise AssertionError("another student's socket to the run was opened")
    except aiohttp.WSServerHandshakeError as exc:
        assert exc.status == 404
    await page.get_by_role("button", name="Close the window").click()
    await expect(page.locator("#live-status")).to_have_text("Finished: finished", timeout=10_000)
    await context.close()


async def test_a_click_makes_turtle_draw(
    server_factory: Callable[..., Any], browser: Any, shot: Callable[..., Any], sandbox_ready: None
) -> None:
    server = await server_factory()
    context, page = await _live(server, browser, DOT_ON_CLICK)
    await pixel_becomes(page, 0.5, 0.5, (255, 255, 255))
    window = page.get_by_role("img", name="Your program's window")
    box = await window.bounding_box()
    assert box is not None
    await window.click(position={"x": box["width"] / 2, "y": box["height"] / 2})
    await pixel_becomes(page, 0.5, 0.5, RED)
    await shot(page, "live-turtle")
    await page.get_by_role("button", name="Stop").click()
    await expect(page.locator("#live-status")).to_have_text("Stopped: stopped", timeout=10_000)
    await context.close()
