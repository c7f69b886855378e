"""The quota overrides form (pages/_overrides.html): on the teacher's class page, and included in
another page with no class of its own (as the admin dashboard includes it), where a class is picked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp_jinja2
import pytest
from playwright.async_api import expect

from tests.core.test_rate_limits_http import run
from tests.ui.conftest import LAPTOP, make_room, no_docker
from tests.ui.helpers import log_in

pytestmark = pytest.mark.browser


async def test_a_teacher_lifts_the_runs_limit_of_their_class(
    server_factory: Callable[..., Any], browser: Any, shot: Callable[..., Any]
) -> None:
    server = await server_factory(app_options=no_docker(), runs_per_user_per_minute=1)
    room = await make_room(server)
    assert (await run(room.student, "print(1)")).status == 202
    assert (await run(room.student, "print(2)")).status == 429
    context = await browser.new_context(viewport=LAPTOP)
    page = await context.new_page()
    await log_in(page, server.url, room.teacher.username)
    await page.goto(f"{server.url}/teach/classes/{room.class_id}")
    runs = page.get_by_label("Runs a minute")
    await expect(runs).to_have_value("")
    row = page.locator("tr", has=runs)
    await expect(row.locator("td").first).to_have_text("1")
    await runs.fill("0")
    await page.get_by_label("Submissions to one problem an hour").fill("50")
    await page.get_by_role("button", name="Save limits").click()
    await expect(page.locator("[data-overrides-status]")).to_have_text("Saved: the new limits apply from the next run.")
    await shot(page, "class-limits")
    limits = (await room.teacher.get(f"/api/classes/{room.class_id}/limits")).json["limits"]
    values = {item["name"]: item["override"] and item["override"]["value"] for item in limits}
    assert values["runs_per_user_per_minute"] == 0 and values["submissions_per_problem_per_hour"] == 50, values
    assert values["submissions_per_user_per_minute"] is None, values
    assert (await run(room.student, "print(3)")).status == 202
    # A teacher sees no admin list; emptying a field gives the default back.
    await expect(page.locator("[data-overrides-all]")).to_be_hidden()
    await runs.fill("")
    await page.get_by_role("button", name="Save limits").click()
    await expect(runs).to_have_value("")
    limits = (await room.teacher.get(f"/api/classes/{room.class_id}/limits")).json["limits"]
    assert {item["name"]: item["override"] for item in limits}["runs_per_user_per_minute"] is None
    await context.close()


async def test_the_form_works_included_in_a_page_without_a_class(
    server_factory: Callable[..., Any], browser: Any
) -> None:
    server = await server_factory(app_options=no_docker())
    room, second = await make_room(server), await make_room(server, title="Second")
    admin = await server.make_user("admin")
    partial = aiohttp_jinja2.get_env(server.app).get_template("pages/_overrides.html").render()
    assert "data-class-id" not in partial
    context = await browser.new_context(viewport=LAPTOP)
    page = await context.new_page()
    await log_in(page, server.url, admin.username)
    await page.goto(f"{server.url}/teach")
    # Dropped into the page as the dashboard's include would put it, its script loaded by its own tag.
    await page.evaluate("(html) => document.querySelector('main').insertAdjacentHTML('beforeend', html)", partial)
    await page.evaluate("() => import('/static/js/pages/overrides.js')")
    picker = page.get_by_label("Class", exact=True)
    await expect(picker).to_be_visible()
    second_class = (await second.teacher.get("/api/classes")).json["classes"][0]
    await picker.select_option(str(second_class["id"]))
    await expect(page.locator("[data-overrides-form]")).not_to_have_attribute("aria-busy", "true")
    await page.get_by_label("Runs a minute").fill("7")
    await page.get_by_role("button", name="Save limits").click()
    await expect(page.locator("[data-overrides-list] li")).to_have_text(
        [f"Class {second_class['name']}: Runs a minute 7"]
    )
    first = (await room.teacher.get(f"/api/classes/{room.class_id}/limits")).json["limits"]
    assert all(item["override"] is None for item in first)
    picked = (await second.teacher.get(f"/api/classes/{second_class['id']}/limits")).json["limits"]
    assert {item["name"]: item["override"] for item in picked}["runs_per_user_per_minute"]["value"] == 7
    await context.close()
