"""The live dashboard in a browser, on a real server with the real Docker sandbox: a scripted class
of 30 students submits at once and the queue figure rises and falls; abort, requeue, pause and
resume are clicked on the page; maintenance mode set from the page reaches a student's page."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import expect

from tests.conftest import ApiClient
from tests.ui.conftest import LAPTOP, TABLET, Room, make_room, no_docker
from tests.ui.helpers import JOB_TIMEOUT_MS, log_in

pytestmark = [pytest.mark.browser, pytest.mark.docker]

CLASS_SIZE = 30
# Passes the visible test (the room's hidden one wants its input's letters kept as they were).
SOLUTION = "print(input().upper())\n"
JUDGED = {"accepted", "wrong_answer"}
# Collects every value the queue figure takes, as the page draws it.
WATCH_QUEUE = """() => {
  window.seenQueued = [];
  const el = document.querySelector('#queue-queued');
  new MutationObserver(() => window.seenQueued.push(Number(el.dataset.value)))
    .observe(el, { attributes: true, attributeFilter: ['data-value'] });
}"""


async def submit_all(room: Room, students: list[ApiClient], code: str) -> list[int]:
    async def one(student: ApiClient) -> int:
        reply = await student.post(
            f"/api/problems/{room.problem_id}/submissions", json={"language": "python", "code": code}
        )
        assert reply.status == 202, reply
        return int(reply.json["id"])

    return list(await asyncio.gather(*(one(s) for s in students)))


async def final(client: ApiClient, job_id: int, kind: str = "submissions") -> dict[str, Any]:
    for _ in range(6):
        reply = await client.get(f"/api/{kind}/{job_id}?wait=30")
        if reply.json["status"] in ("done", "failed"):
            return dict(reply.json)
    raise AssertionError(f"{kind} {job_id} did not finish: {reply}")


async def test_the_dashboard_follows_a_class_and_its_buttons_work(
    server_factory: Callable[..., Any],
    browser: Any,
    shot: Callable[..., Any],
    sandbox_ready: None,
    fast_passwords: None,
) -> None:
    server = await server_factory(
        dashboard_interval_s=1,
        maintenance_poll_s=1,
        register_max_per_address=CLASS_SIZE + 10,
        default_time_limit_ms=10_000,  # a run's wall time: 30 s, room to click Abort on a running one
    )
    room = await make_room(server)
    admin = await server.make_user("admin")
    students = [room.student, *[await server.make_user("student") for _ in range(CLASS_SIZE - 1)]]
    for student in students[1:]:
        assert (await student.post("/api/classes/join", json={"code": room.join_code})).status == 200

    context = await browser.new_context(viewport=LAPTOP)
    page = await context.new_page()
    await log_in(page, server.url, admin.username)
    await page.goto(f"{server.url}/admin")
    await expect(page.locator("#dash-connection")).to_have_attribute("data-state", "live")
    await expect(page.locator("#queue-queued")).to_have_attribute("data-value", "0")
    await page.evaluate(WATCH_QUEUE)

    # 1. The class submits at once: the queue figure rises, then falls back to nothing as the
    # sandbox works through it.
    first = await submit_all(room, students, SOLUTION)
    await expect(page.locator("#queue-queued")).not_to_have_attribute("data-value", "0")
    await shot(page, "dashboard-class-burst")
    results = await asyncio.gather(*(final(s, j) for s, j in zip(students, first, strict=True)))
    assert {r["status"] for r in results} == {"done"} and {r["verdict"] for r in results} <= JUDGED, results
    await expect(page.locator("#queue-queued")).to_have_attribute("data-value", "0", timeout=JOB_TIMEOUT_MS)
    await expect(page.locator("#queue-running")).to_have_attribute("data-value", "0", timeout=JOB_TIMEOUT_MS)
    seen = await page.evaluate("window.seenQueued")
    assert max(seen) >= 5 and seen[-1] == 0, seen
    await expect(page.locator("#windows-body [data-window='5'] td").first).not_to_have_text("0")

    # 2. Paused, nothing is claimed: the whole class waits.
    await page.locator("#pause-button").click()
    await expect(page.locator("#queue-state")).to_have_text("paused")
    await expect(page.locator("#pause-button")).to_have_text("Resume the queue")
    second = await submit_all(room, students, SOLUTION + "# again\n")
    await expect(page.locator("#queue-queued")).to_have_attribute("data-value", str(CLASS_SIZE))
    await shot(page, "dashboard-paused")
    await asyncio.sleep(2)
    assert {(await admin.get(f"/api/submissions/{j}")).json["status"] for j in second} == {"queued"}

    # Abort a waiting job from its row: it ends at once, stopped, and leaves the queue.
    await page.locator(f"button[data-action='abort'][data-job='{second[0]}']").click()
    await expect(page.locator("#queue-queued")).to_have_attribute("data-value", str(CLASS_SIZE - 1))
    aborted = (await students[0].get(f"/api/submissions/{second[0]}")).json
    assert (aborted["status"], aborted["verdict"]) == ("done", "stopped"), aborted

    # A job the runner gave up on shows under Failed; Requeue puts it back in the queue.
    with sqlite3.connect(server.settings.db_path) as conn:
        conn.execute("UPDATE jobs SET status = 'failed', infra_attempts = 4 WHERE id = ?", (second[1],))
    server.app[_events_key()].poke()
    failed_row = page.locator(f"#failed-table [data-job-row='{second[1]}']")
    await expect(failed_row).to_be_visible()
    await expect(page.locator("#queue-queued")).to_have_attribute("data-value", str(CLASS_SIZE - 2))
    await failed_row.locator("button[data-action='requeue']").click()
    await expect(failed_row).to_have_count(0)
    await expect(page.locator("#queue-queued")).to_have_attribute("data-value", str(CLASS_SIZE - 1))

    # Resume: every waiting job runs, none lost.
    await page.locator("#pause-button").click()
    await expect(page.locator("#queue-state")).to_have_text("running")
    waited = await asyncio.gather(*(final(s, j) for s, j in zip(students[1:], second[1:], strict=True)))
    assert {r["status"] for r in waited} == {"done"} and {r["verdict"] for r in waited} <= JUDGED, waited
    await expect(page.locator("#queue-queued")).to_have_attribute("data-value", "0", timeout=JOB_TIMEOUT_MS)

    # 3. Abort a running job: its sandbox is stopped and it ends stopped.
    sleeper = await room.outsider.post(
        "/api/runs", json={"language": "python", "code": "import time\ntime.sleep(25)\n"}
    )
    assert sleeper.status == 202, sleeper
    running_row = page.locator(f"#jobs-table [data-job-row='{sleeper.json['id']}'][data-status='running']")
    await expect(running_row).to_be_visible(timeout=JOB_TIMEOUT_MS)
    await running_row.locator("button[data-action='abort']").click()
    stopped = await final(room.outsider, sleeper.json["id"], "runs")
    assert (stopped["status"], stopped["verdict"]) == ("done", "stopped"), stopped

    # 4. Verbose runner logging, on and off from the page.
    await page.locator("#verbose-button").click()
    await expect(page.locator("#verbose-state")).to_contain_text("On until")
    assert logging.getLogger("runner").getEffectiveLevel() == logging.DEBUG
    await page.locator("#verbose-button").click()
    await expect(page.locator("#verbose-state")).to_have_text("Off")
    assert logging.getLogger("runner").getEffectiveLevel() != logging.DEBUG

    # 5. Maintenance mode from the page reaches a student's open page (a second browser context).
    student_context = await browser.new_context(viewport=LAPTOP)
    student_page = await student_context.new_page()
    await log_in(student_page, server.url, students[2].username)
    banner = student_page.locator("#maintenance-banner")
    await expect(banner).to_be_hidden()
    message = "The code runner is being updated; back at 10:15."
    await page.locator("#maintenance-text").fill(message)
    await page.locator("#maintenance-on").click()
    await expect(page.locator("#maintenance-state")).to_contain_text(message)
    await expect(banner).to_be_visible(timeout=10_000)
    await expect(banner).to_contain_text(message)
    await shot(student_page, "dashboard-maintenance-student")
    refused = await students[2].post("/api/runs", json={"language": "python", "code": "print(1)"})
    assert refused.status == 503 and refused.error_code == "maintenance", refused
    await shot(page, "dashboard-admin")
    await page.locator("#maintenance-off").click()
    await expect(banner).to_be_hidden(timeout=10_000)
    await student_context.close()
    await context.close()


def _events_key() -> Any:
    from appliance.app_keys import EVENTS

    return EVENTS


async def test_a_teachers_dashboard_on_a_tablet_shows_their_classes_only(
    server_factory: Callable[..., Any], browser: Any, shot: Callable[..., Any], fast_passwords: None
) -> None:
    server = await server_factory(app_options=no_docker(), dashboard_interval_s=1)
    admin = await server.make_user("admin")
    assert (await admin.post("/api/admin/queue", json={"paused": True})).status == 200  # jobs wait
    mine, theirs = await make_room(server, title="Mine"), await make_room(server, title="Theirs")
    [my_job] = await submit_all(mine, [mine.student], SOLUTION)
    [their_job] = await submit_all(theirs, [theirs.student], SOLUTION)

    context = await browser.new_context(viewport=TABLET)
    page = await context.new_page()
    await log_in(page, server.url, mine.teacher.username)
    await page.get_by_role("link", name="Live dashboard").click()
    await expect(page.locator("#dash-connection")).to_have_attribute("data-state", "live")
    await expect(page.locator(f"[data-job-row='{my_job}']")).to_be_visible()
    await expect(page.locator("#queue-queued")).to_have_attribute("data-value", "1")
    assert await page.locator(f"[data-job-row='{their_job}']").count() == 0
    assert theirs.student.username not in await page.locator("main").inner_text()
    assert await page.locator("#pause-button, #storage, #runner-health").count() == 0
    fits = await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert fits, "the dashboard scrolls sideways on a tablet"
    await shot(page, "dashboard-teacher-tablet")
    await context.close()
