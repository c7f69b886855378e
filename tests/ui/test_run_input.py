"""The input box for Run is kept per page across reloads, like the code (issue 15's hands-on trial)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import expect

from tests.ui.conftest import LAPTOP, Room, make_room, no_docker
from tests.ui.helpers import log_in, type_code, wait_saved

pytestmark = pytest.mark.browser


@pytest.fixture
async def quiet_room(server_factory: Callable[..., Any]) -> Room:
    return await make_room(await server_factory(app_options=no_docker()))


async def test_run_input_is_kept_per_page(quiet_room: Room, browser: Any) -> None:
    room = quiet_room
    context = await browser.new_context(viewport=LAPTOP)
    page = await context.new_page()
    await log_in(page, room.server.url, room.student.username)
    pages = {f"/problems/{room.problem_id}": "3 4\n", "/scratch": "hello\nworld"}
    for path, stdin in pages.items():
        await page.goto(room.server.url + path)
        await type_code(page, "print(input())")
        await wait_saved(page)
        # Only the input box changes, and the page is reloaded before the timed save.
        await page.locator("#stdin").click()
        await page.keyboard.type(stdin)
        await page.reload()
        await page.locator(".cm-content[contenteditable='true']").wait_for()
        await expect(page.locator("#stdin")).to_have_value(stdin)
        await wait_saved(page)
    await context.close()
    # Each page keeps its own input, on the server too: another computer shows it.
    context = await browser.new_context(viewport=LAPTOP)
    page = await context.new_page()
    await log_in(page, room.server.url, room.student.username)
    for path, stdin in pages.items():
        await page.goto(room.server.url + path)
        await page.locator(".cm-content[contenteditable='true']").wait_for()
        await expect(page.locator("#stdin")).to_have_value(stdin)
    await context.close()
