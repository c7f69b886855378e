"""Exam mode through the browser (issue 11): the teacher schedules an exam on the class page; the
student sees the exam banner with its countdown and only the exam's problems, no Run button and
their submissions used; the teacher's live view shows the student online and their submission
count rising after a submission, without a reload. The sandbox is the EchoExecutor stand-in."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import expect

from tests.ui.conftest import LAPTOP, Room
from tests.ui.helpers import JOB_TIMEOUT_MS, log_in, type_code

pytestmark = pytest.mark.browser

ZONE = ZoneInfo("Europe/Berlin")
# What the countdown reads during an hour-long exam: "M:SS left" or "H h MM min left".
COUNTDOWN = re.compile(r"^(\d+:\d\d|\d+ h \d\d min) left$")


async def page_for(browser: Any, room: Room, username: str) -> Any:
    context = await browser.new_context(viewport=LAPTOP, timezone_id=ZONE.key, locale="en-GB")
    page = await context.new_page()
    await log_in(page, room.server.url, username)
    return page


def local(minutes: float) -> str:
    """A datetime-local value in the browser's zone, `minutes` from now."""
    return (datetime.now(UTC) + timedelta(minutes=minutes)).astimezone(ZONE).strftime("%Y-%m-%dT%H:%M")


async def test_the_student_sees_only_the_exam_and_the_teacher_watches_it_live(
    room: Room, browser: Any, shot: Callable[..., Any]
) -> None:
    url = room.server.url
    other = await room.teacher.post(
        "/api/problems",
        json={
            "title": "Homework",
            "statement": "Not in the exam.",
            "language": "python",
            "classes": [room.class_id],
            "test_cases": [{"expected_stdout": "x\n", "visible": True}],
        },
    )
    assert other.status == 201, other

    # The teacher schedules the exam on the class's page.
    teacher = await page_for(browser, room, room.teacher.username)
    await teacher.goto(f"{url}/teach/classes/{room.class_id}")
    form = teacher.locator("#exam-form")
    await form.get_by_label("Title").fill("Midterm")
    await form.get_by_label("Starts").fill(local(-2))
    await form.get_by_label("Ends").fill(local(60))
    await form.get_by_label("Shout it").check()
    await form.get_by_label("Students may run their code").uncheck()
    await form.get_by_label("Submissions per problem").fill("2")
    await form.get_by_role("button", name="Schedule exam").click()
    await expect(teacher.locator("#exam-status")).to_have_text("Scheduled Midterm.")
    await expect(teacher.locator("#exam-list li[data-state='running']")).to_contain_text("Running now")
    await shot(teacher, "exam-class-page-form")

    # The student: the banner with the end and a countdown, and only the exam's problem.
    student = await page_for(browser, room, room.student.username)
    banner = student.locator("#exam-banner")
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("Exam in progress: Midterm")
    await expect(banner).to_contain_text("Running code is turned off")
    await expect(student.locator("#exam-countdown")).to_have_text(COUNTDOWN)
    await expect(student.locator(".problem-link")).to_have_text(["Shout it"])
    await shot(student, "exam-student-home")
    # Another problem's page is not found.
    missing = await student.goto(f"{url}/problems/{other.json['id']}")
    assert missing is not None and missing.status == 404

    # The teacher's live view: the student online, nothing submitted yet.
    await teacher.goto(f"{url}/teach/classes/{room.class_id}/exam")
    row = teacher.locator(f"#exam-live-table tr[data-student='{room.student.username}']")
    await expect(row.locator(".presence")).to_have_attribute("data-online", "true")
    await expect(row.locator("td[data-submissions]")).to_have_text("0 of 2 submitted")

    # The student submits: Run is hidden, the banner counts the submission.
    await student.goto(f"{url}/problems/{room.problem_id}")
    await expect(student.locator("#exam-submissions")).to_have_text(" · 0 of 2 submissions used")
    await expect(student.locator("#run-button")).to_be_hidden()
    await type_code(student, "HELLO")
    await student.get_by_role("button", name="Submit").click()
    await expect(student.locator("#job-status")).to_contain_text("Judged", timeout=JOB_TIMEOUT_MS)
    await expect(student.locator("#exam-submissions")).to_have_text(" · 1 of 2 submissions used")
    await shot(student, "exam-student-problem")

    # ... and the teacher's page shows it without a reload.
    await expect(row.locator("td[data-submissions]")).to_contain_text("1 of 2 submitted")
    await shot(teacher, "exam-live-view")

    # Logging in on another computer ends this browser's session, and it says why.
    elsewhere = await page_for(browser, room, room.student.username)
    await expect(elsewhere.locator("#exam-banner")).to_be_visible()
    await student.goto(f"{url}/problems/{room.problem_id}")
    await expect(student.locator("#session-ended")).to_contain_text("You logged in elsewhere")
    await shot(student, "exam-session-ended")
