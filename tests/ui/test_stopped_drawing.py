"""A graphical program the runner stopped at its wall time, in a real browser with the real sandbox:
its result says it was stopped and shows what it drew, never a green "Finished"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import expect

from tests.ui.conftest import LAPTOP
from tests.ui.helpers import JOB_TIMEOUT_MS, scratchpad_with

pytestmark = [pytest.mark.browser, pytest.mark.docker]

WALL_S = 3
# Draws a red window, again and again, and never looks at its events: only the wall time ends it.
ENDLESS = (
    "import pygame\n"
    "screen = pygame.display.set_mode((60, 40))\n"
    "while True: screen.fill((255, 0, 0)); pygame.display.flip(); pygame.time.wait(100)\n"
)


async def test_a_drawing_stopped_at_its_wall_time_says_so(
    server_factory: Callable[..., Any], browser: Any, shot: Callable[..., Any], sandbox_ready: None
) -> None:
    server = await server_factory(graphical_wall_time_s=WALL_S)
    student, page = await scratchpad_with(server, browser, LAPTOP, ENDLESS)
    context = page.context
    await page.get_by_role("button", name="Run", exact=True).click()

    line = page.locator("#output .verdict-line")
    await expect(line).to_contain_text(f"Stopped after {WALL_S} s — here is what it drew", timeout=JOB_TIMEOUT_MS)
    await expect(line.locator(".badge")).to_have_text("Stopped")
    await expect(page.locator("#output")).not_to_contain_text("Finished")
    await expect(page.get_by_role("img", name="Picture drawn by the program")).to_be_visible()
    await expect(page.locator("#job-status")).to_contain_text("Stopped after")
    await shot(page, "graphical-stopped")

    # The API says so in a field of its own, beside the verdict its drawing earned.
    run_id = await page.evaluate("() => sessionStorage.getItem(`labrunner:lastrun:${location.pathname}`)")
    run = (await student.get(f"/api/runs/{run_id}")).json
    assert (run["verdict"], run["stopped"]) == ("accepted", True), run
    assert WALL_S * 1000 <= run["time_ms"] < WALL_S * 1000 + 1000
    await context.close()
