"""The teacher's problem-set page (/teach/problem-sets, issue 13's down-sync) in Chromium: reached
from the teaching navigation, it lists a received set, and the teacher ticks a problem and a class
and imports it; the student of that class then has the problem, with its visible test only. (The
other problem-set tests are tests/sync/test_problem_sets_*.py.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import expect

from appliance import problem_sets, problem_sets_trust
from appliance.app_keys import BLOBS, DB, SETTINGS
from tests.sync.attack_bundles import Signer, problem, problem_set
from tests.ui.conftest import LAPTOP, TABLET, Room
from tests.ui.helpers import log_in

pytestmark = pytest.mark.browser

HIDDEN_IN = "page-hidden-in-51c2"


def _record(origin: int, title: str, hidden: bool) -> dict[str, Any]:
    tests = [{"name": "example", "stdin": "Ann\n", "expected_stdout": "Hello Ann\n", "visibility": "visible"}]
    if hidden:
        tests.append({"name": "secret", "stdin": HIDDEN_IN, "expected_stdout": "Hello\n", "visibility": "hidden"})
    return problem(
        origin,
        title,
        statement=f"{title}: say hello.",
        test_cases=[{**test, "position": n, "reveal_at": None, "weight": 1.0} for n, test in enumerate(tests, start=1)],
    )


async def _receive_a_set(classroom: Room) -> None:
    app = classroom.server.app
    signer = Signer(appliance_id="c" * 32)
    await problem_sets_trust.add(app[DB], "Central", signer.public_key)
    records = [_record(21, "Greet", hidden=True), _record(22, "Wave", hidden=False)]
    raw = problem_set(signer, records, set_id=problem_sets.set_id_for("c" * 32, "Greetings"), name="Greetings")
    await problem_sets.receive(app[DB], app[BLOBS], app[SETTINGS], raw)


@pytest.mark.parametrize("viewport", [LAPTOP, TABLET], ids=["laptop", "tablet"])
async def test_a_teacher_ticks_a_problem_and_a_class_and_imports_it(
    room: Room, browser: Any, shot: Callable[..., Any], viewport: dict[str, int]
) -> None:
    await _receive_a_set(room)
    context = await browser.new_context(viewport=viewport)
    page = await context.new_page()
    await log_in(page, room.server.url, room.teacher.username)
    await page.goto(f"{room.server.url}/teach")
    await page.get_by_role("link", name="Problem sets").click()
    await page.wait_for_url("**/teach/problem-sets")
    form = page.locator("form.problem-set")
    await expect(form.get_by_role("heading")).to_contain_text("Greetings")
    await expect(form).to_contain_text("1 visible test, 1 hidden test")
    await expect(form).not_to_contain_text(HIDDEN_IN)

    await form.get_by_role("button", name="Import chosen problems").click()
    await expect(form.get_by_role("alert")).to_have_text("Tick at least one problem to import.")

    await form.get_by_label("Greet").check()
    await form.get_by_label("7B").check()
    await form.get_by_role("button", name="Import chosen problems").click()
    await expect(form.get_by_role("status")).to_contain_text("Created Greet")
    await expect(form).to_contain_text("Imported: your copy")
    await shot(page, f"problem-sets-imported-{viewport['width']}")

    mine = (await room.teacher.get("/api/problems")).json["problems"]
    greet = next(p for p in mine if p["title"] == "Greet")
    assert greet["classes"] == [room.class_id] and not any(p["title"] == "Wave" for p in mine)
    seen = (await room.student.get(f"/api/problems/{greet['id']}")).json
    assert [t["name"] for t in seen["test_cases"]] == ["example"] and seen["hidden_test_count"] == 1
    await context.close()
