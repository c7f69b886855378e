"""A live run in a real browser with the real sandbox: answers typed one line at a time into a
running program, each reply seen before the next answer; Stop; a second live run refused."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import expect

from tests.ui.conftest import LAPTOP
from tests.ui.helpers import JOB_TIMEOUT_MS, scratchpad_with, type_code

pytestmark = [pytest.mark.browser, pytest.mark.docker]

QUIZ = (
    'name = input("What is your name? ")\n'
    'print("Hello,", name)\n'
    'n = int(input("Pick a number: "))\n'
    'print("Twice that is", 2 * n)\n'
)
SPIN = "print('spinning', flush=True)\nwhile True:\n    pass\n"


async def test_a_student_types_answers_while_the_program_runs(
    server_factory: Callable[..., Any], browser: Any, shot: Callable[..., Any], sandbox_ready: None
) -> None:
    server = await server_factory()
    _, page = await scratchpad_with(server, browser, LAPTOP, QUIZ)
    context = page.context
    await page.get_by_role("button", name="Run live").click()

    console = page.locator("#live-output")
    await expect(console).to_have_text("What is your name? ", timeout=JOB_TIMEOUT_MS)
    box = page.get_by_label("Type a line for your program; Enter sends it")
    await box.fill("Ada")
    await box.press("Enter")
    # The reply to the first answer, and the next prompt, come before the second answer is typed.
    await expect(console).to_have_text("What is your name? Ada\nHello, Ada\nPick a number: ", timeout=10_000)
    await box.fill("21")
    await box.press("Enter")
    await expect(console).to_have_text(
        "What is your name? Ada\nHello, Ada\nPick a number: 21\nTwice that is 42\n", timeout=10_000
    )
    await expect(page.locator("#live-status")).to_have_text("Finished: finished", timeout=10_000)
    await expect(page.locator("#live-output .typed")).to_have_count(2)  # typed lines are marked
    await shot(page, "live-console")
    await context.close()


async def test_stop_ends_an_endless_loop_and_a_second_live_run_is_refused(
    server_factory: Callable[..., Any], browser: Any, shot: Callable[..., Any], sandbox_ready: None
) -> None:
    server = await server_factory()
    _, page = await scratchpad_with(server, browser, LAPTOP, SPIN)
    context = page.context
    await page.get_by_role("button", name="Run live").click()
    await expect(page.locator("#live-output")).to_have_text("spinning\n", timeout=JOB_TIMEOUT_MS)

    # The same student in another tab: told plainly that one live run is the most.
    other = await context.new_page()
    await other.goto(f"{server.url}/scratch")
    await type_code(other, "print(1)\n")
    await other.get_by_role("button", name="Run live").click()
    await expect(other.locator("#live-status")).to_contain_text("You already have a live run going")
    await shot(other, "live-second-refused")

    pressed = time.monotonic()
    await page.get_by_role("button", name="Stop").click()
    await expect(page.locator("#live-status")).to_have_text("Stopped: stopped", timeout=5_000)
    assert time.monotonic() - pressed < 3.0  # within a second in the sandbox; the page adds a little
    await expect(page.get_by_label("Type a line for your program; Enter sends it")).to_be_disabled()
    # Its place is free again.
    await other.get_by_role("button", name="Run live").click()
    await expect(other.locator("#live-status")).to_contain_text("Finished", timeout=JOB_TIMEOUT_MS)
    await context.close()


async def test_stop_ends_a_run_of_the_input_box_mode_too(
    server_factory: Callable[..., Any], browser: Any, shot: Callable[..., Any], sandbox_ready: None
) -> None:
    server = await server_factory()
    _, page = await scratchpad_with(server, browser, LAPTOP, SPIN)
    await page.get_by_role("button", name="Run", exact=True).click()
    await expect(page.locator("#job-status")).to_have_text("Running your program…", timeout=JOB_TIMEOUT_MS)
    pressed = time.monotonic()
    await page.get_by_role("button", name="Stop").click()
    await expect(page.locator("#job-status")).to_have_text("Run stopped.", timeout=5_000)
    assert time.monotonic() - pressed < 3.0  # within a second in the sandbox; the page adds a little
    await expect(page.locator("#output .badge")).to_have_text("Stopped")
    await expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    await shot(page, "run-stopped")
    await page.context.close()
