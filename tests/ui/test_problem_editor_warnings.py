"""The teacher's problem editor warns before saving a problem whose test cases are all empty (issue
15's hands-on trial: such a problem saved silently, and then any program printing nothing passes)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import expect

from tests.ui.conftest import LAPTOP, Room, make_room, no_docker
from tests.ui.helpers import log_in

pytestmark = pytest.mark.browser


@pytest.fixture
async def quiet_room(server_factory: Callable[..., Any]) -> Room:
    return await make_room(await server_factory(app_options=no_docker()))


async def problem_count(room: Room) -> int:
    return len((await room.teacher.get("/api/problems")).json["problems"])


async def test_all_empty_tests_warn_before_saving(quiet_room: Room, browser: Any, shot: Callable[..., Any]) -> None:
    room = quiet_room
    before = await problem_count(room)
    context = await browser.new_context(viewport=LAPTOP)
    page = await context.new_page()
    await log_in(page, room.server.url, room.teacher.username)
    await page.goto(f"{room.server.url}/teach/problems/new")
    await page.get_by_label("Title").fill("Nothing to test yet")
    await page.get_by_role("button", name="Save problem").click()
    warning = page.locator("#empty-tests-warning")
    await expect(warning).to_be_visible()
    await expect(warning).to_contain_text("Every test case is empty")
    await shot(page, "problem-empty-tests-warning", full_page=False)
    assert await problem_count(room) == before and page.url.endswith("/teach/problems/new")

    # Filling one test case is enough: the warning goes and the problem saves.
    await page.get_by_label("Expected output").first.fill("42\n")
    await page.get_by_role("button", name="Save problem").click()
    await page.wait_for_url(re.compile(r"/teach/problems/\d+$"))
    assert await problem_count(room) == before + 1

    # Emptied again, the teacher may still save once they say so.
    await page.get_by_label("Expected output").first.fill("")
    await page.get_by_role("button", name="Save problem").click()
    await expect(warning).to_be_visible()
    await expect(page.locator("#save-status")).not_to_have_text("Saved.")
    await warning.get_by_role("button", name="Save anyway").click()
    await expect(page.locator("#save-status")).to_have_text("Saved.")
    await expect(warning).to_be_hidden()
    problem_id = int(page.url.rsplit("/", 1)[1])
    tests = (await room.teacher.get(f"/api/problems/{problem_id}")).json["test_cases"]
    assert all(not t["stdin"] and not t["expected_stdout"] for t in tests), tests
    await context.close()
