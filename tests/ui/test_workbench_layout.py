"""The workbench fits the screen (issue 15's hands-on trial): on a classroom laptop (1366x768) Run
and Submit are on screen without scrolling, on a portrait tablet (768x1024) the editor starts on
the first screen, and after Run or Submit the result is scrolled into view on both."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import expect

from tests.ui.conftest import LAPTOP, TABLET, Room
from tests.ui.helpers import log_in, type_code, wait_saved

pytestmark = pytest.mark.browser

STATEMENT = "\n\n".join(
    [
        "# Shout it",
        "Read one line of text and print it again in capital letters. " * 4,
        "## Input",
        "One line with at most 100 characters: letters, digits and spaces. " * 3,
        "## Output",
        "The same line, every letter in capitals; digits and spaces stay as they are. " * 3,
        "## Hints",
        "- Python strings have a method for this.\n- Read the line with `input()`.\n- Print it with `print()`.",
        "## Example",
        "```\nhello world 42\n```\n\nbecomes\n\n```\nHELLO WORLD 42\n```",
    ]
)


async def box(page: Any, selector: str) -> dict[str, float]:
    found = await page.locator(selector).bounding_box()
    assert found is not None, f"{selector} is not shown"
    return found


async def assert_on_screen(page: Any, selector: str, what: str) -> None:
    """The element's top part (its heading and first lines) is inside the viewport."""
    height = page.viewport_size["height"]
    found = await box(page, selector)
    assert 0 <= found["y"] and found["y"] + min(found["height"], 80) <= height, f"{what} at {found}, window {height}"


@pytest.mark.parametrize("size", [LAPTOP, TABLET], ids=["laptop", "tablet"])
async def test_problem_page_shows_buttons_editor_and_results(
    room: Room, browser: Any, size: dict[str, int], shot: Callable[..., Any]
) -> None:
    # A statement as long as a real one: the trial's tablet showed the editor 1000 px down.
    patched = await room.teacher.patch(f"/api/problems/{room.problem_id}", json={"statement": STATEMENT})
    assert patched.status == 200, patched
    context = await browser.new_context(viewport=size)
    page = await context.new_page()
    await log_in(page, room.server.url, room.student.username)
    await page.goto(f"{room.server.url}/problems/{room.problem_id}")
    await page.locator(".cm-content[contenteditable='true']").wait_for()
    await page.wait_for_load_state("networkidle")
    assert await page.evaluate("window.scrollY") == 0
    await shot(page, f"workbench-top-{size['width']}", full_page=False)
    editor = await box(page, "#editor")
    assert editor["y"] + 100 < size["height"], f"the editor starts at {editor['y']}"
    if size == LAPTOP:
        for button in ("#run-button", "#submit-button"):
            found = await box(page, button)
            assert found["y"] + found["height"] <= size["height"], f"{button} at {found}"

    await type_code(page, "HELLO\n")  # the EchoExecutor prints the code: this passes the example
    await wait_saved(page)
    await page.evaluate("window.scrollTo(0, 0)")
    await page.locator("#run-button").click()
    await expect(page.locator("#output")).to_contain_text("HELLO")
    await expect(page.locator("#job-status")).to_contain_text("Run finished")
    await assert_on_screen(page, "#output-section", "the output of Run")

    await page.evaluate("window.scrollTo(0, 0)")
    await page.locator("#submit-button").click()
    await expect(page.locator("#job-status")).to_contain_text("Judged")
    await assert_on_screen(page, "#result-section", "the result of Submit")
    await shot(page, f"workbench-result-{size['width']}", full_page=False)
    await context.close()


@pytest.mark.parametrize("size", [LAPTOP, TABLET], ids=["laptop", "tablet"])
async def test_scratchpad_output_comes_into_view(room: Room, browser: Any, size: dict[str, int]) -> None:
    context = await browser.new_context(viewport=size)
    page = await context.new_page()
    await log_in(page, room.server.url, room.student.username)
    await page.goto(f"{room.server.url}/scratch")
    await type_code(page, "\n".join(f"print({n})" for n in range(40)))
    found = await box(page, "#run-button")
    assert found["y"] + found["height"] <= size["height"], f"Run at {found}"
    await page.locator("#run-button").click()
    await expect(page.locator("#job-status")).to_contain_text("Run finished")
    await assert_on_screen(page, "#output-section", "the output of Run")
    await context.close()
