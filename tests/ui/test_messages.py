"""What students see when things are slow or broken — an outage, a queue, a rate limit — and the
result display for graphical programs, all without the sandbox."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import expect

from tests.ui.conftest import LAPTOP, engine_down, make_room
from tests.ui.helpers import log_in, type_code

pytestmark = pytest.mark.browser


async def test_outage_queue_and_rate_limit_messages(
    server_factory: Callable[..., Any], browser: Any, shot: Callable[..., Any]
) -> None:
    server = await server_factory(app_options=engine_down(), max_jobs_in_flight_per_user=2)
    room = await make_room(server)
    context = await browser.new_context(viewport=LAPTOP)
    page = await context.new_page()
    await log_in(page, server.url, room.student.username)
    await page.goto(f"{server.url}/problems/{room.problem_id}")
    await expect(page.locator("#banner")).to_contain_text("code runner is having trouble")
    await type_code(page, "print(input().upper())")

    status = page.locator("#job-status")
    await page.get_by_role("button", name="Run", exact=True).click()
    await expect(status).to_contain_text("yours is next")
    await page.get_by_role("button", name="Submit").click()
    await expect(status).to_contain_text("1 program ahead of yours")
    await shot(page, "student-outage-queued")

    # A third program while two wait: refused with a message saying why and when to retry.
    other = await context.new_page()
    await other.goto(f"{server.url}/scratch")
    await type_code(other, "print(1)")
    await other.get_by_role("button", name="Run", exact=True).click()
    await expect(other.locator("#job-status")).to_contain_text("You already have 2 programs waiting or running")
    await expect(other.locator("#job-status")).to_contain_text("try again in 5 seconds")
    await context.close()


def _frame(color: str) -> str:
    rect = f'<rect width="80" height="60" fill="{color}"/>'
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" width="80" height="60">{rect}</svg>'
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


async def test_graphical_output_plays_as_an_animation(
    server_factory: Callable[..., Any], browser: Any, shot: Callable[..., Any]
) -> None:
    """A result's animation plays by itself; its still pictures show as a flip-book."""
    from tests.ui.conftest import no_docker

    server = await server_factory(app_options=no_docker())
    room = await make_room(server)
    context = await browser.new_context(viewport=LAPTOP)
    page = await context.new_page()
    await log_in(page, server.url, room.student.username)
    await page.goto(f"{server.url}/scratch")
    frames = [_frame(c) for c in ("#c00", "#0a0", "#00c")]
    await page.evaluate(
        """async (frames) => {
          const { renderRun } = await import("/static/js/results.js");
          const section = document.querySelector("#output-section");
          section.hidden = false;
          renderRun(document.querySelector("#output"), {
            id: 1, status: "done", verdict: "accepted", stdout: "drew 3 frames\\n", stderr: "",
            exit_code: 0, time_ms: 120, truncated: false, images: frames, animation: frames[1],
          });
        }""",
        frames,
    )
    await expect(page.get_by_role("img", name="Animation drawn by the program")).to_have_attribute("src", frames[1])
    figure = page.locator("#output figure.graphics").nth(1)
    await expect(figure.locator("img")).to_have_attribute("alt", "Picture 1 of 3 drawn by the program")
    await figure.get_by_label("Picture").fill("2")
    await expect(figure.locator("img")).to_have_attribute("src", frames[2])
    await figure.get_by_role("button", name="Play").click()
    await expect(figure.locator("img")).not_to_have_attribute("src", frames[2])
    await figure.get_by_role("button", name="Pause").click()
    await shot(page, "graphical-output")
    await context.close()
