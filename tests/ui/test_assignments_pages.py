"""Assignments through the browser (issue 15): the teacher sets starter code, due dates with each
late policy and comments on a submission in the pages; students see the starter code in their
editor, the due date in their own time zone, their late mark or the refusal, and the comment.
The sandbox is the EchoExecutor stand-in (a program's output is its own source text)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import expect

from appliance.clock import iso
from tests.ui.conftest import LAPTOP, Room
from tests.ui.helpers import JOB_TIMEOUT_MS, editor_text, log_in, type_code, wait_saved
from tests.ui.test_classroom_api import submit

pytestmark = pytest.mark.browser

TEACHER_ZONE = ZoneInfo("Europe/Berlin")
STUDENT_ZONE = ZoneInfo("Asia/Tokyo")  # far from both UTC and the teacher: a time shown in UTC would not match


async def page_for(browser: Any, room: Room, client: Any, zone: ZoneInfo) -> Any:
    context = await browser.new_context(viewport=LAPTOP, timezone_id=zone.key, locale="en-GB")
    page = await context.new_page()
    await log_in(page, room.server.url, client.username)
    return page


async def set_due_in_editor(page: Any, room: Room, local: datetime, policy: str) -> None:
    """The teacher ticks the class's due date in the problem editor, in their own time."""
    await page.goto(f"{room.server.url}/teach/problems/{room.problem_id}")
    await page.get_by_label("Due date for 7B").fill(local.strftime("%Y-%m-%dT%H:%M"))
    await page.get_by_label("Late policy for 7B").select_option(policy)
    await page.get_by_role("button", name="Save problem").click()
    await expect(page.locator("#save-status")).to_have_text("Saved.")


def shown(moment: datetime) -> str:
    """The hour and minute a student in STUDENT_ZONE reads for this moment."""
    return moment.astimezone(STUDENT_ZONE).strftime("%H:%M")


async def test_starter_code_reaches_a_new_students_editor(room: Room, browser: Any, shot: Callable[..., Any]) -> None:
    starter = "name = input()"
    teacher = await page_for(browser, room, room.teacher, TEACHER_ZONE)
    await teacher.goto(f"{room.server.url}/teach/problems/{room.problem_id}")
    await expect(teacher.get_by_label("Title")).to_have_value("Shout it")
    await teacher.get_by_label("Starter code").fill(starter)
    await teacher.get_by_role("button", name="Save problem").click()
    await expect(teacher.locator("#save-status")).to_have_text("Saved.")
    await shot(teacher, "assignment-starter-code-editor")

    newcomer = await room.server.make_user("student")
    assert (await newcomer.post("/api/classes/join", json={"code": room.join_code})).status == 200
    page = await page_for(browser, room, newcomer, STUDENT_ZONE)
    await page.goto(f"{room.server.url}/problems/{room.problem_id}")
    await expect(page.locator(".cm-content[contenteditable='true']")).to_be_visible()
    assert await editor_text(page) == starter
    await shot(page, "assignment-starter-code-student")

    # What the student types replaces it for good: a reload shows their draft, not the starter.
    await type_code(page, "print(input().upper())")
    await wait_saved(page)
    await page.reload()
    await expect(page.locator(".cm-content[contenteditable='true']")).to_be_visible()
    assert await editor_text(page) == "print(input().upper())"

    # A student who has submitted already (and has no draft) is not handed the starter again.
    await submit(room.student, room.problem_id, "HELLO\n")
    veteran = await page_for(browser, room, room.student, STUDENT_ZONE)
    await veteran.goto(f"{room.server.url}/problems/{room.problem_id}")
    await expect(veteran.locator("#history li")).to_have_count(1)
    await expect(veteran.locator(".cm-content[contenteditable='true']")).to_be_visible()
    assert await editor_text(veteran) == ""


async def test_accept_late_due_date_shown_in_local_time_and_late_marked(
    room: Room, browser: Any, shot: Callable[..., Any]
) -> None:
    teacher = await page_for(browser, room, room.teacher, TEACHER_ZONE)
    # Due in a day first: the student sees when, in their own time, on their home page and the problem.
    soon = (datetime.now(TEACHER_ZONE) + timedelta(days=1)).replace(second=0, microsecond=0)
    await set_due_in_editor(teacher, room, soon, "accept_late")
    problem = await room.teacher.get(f"/api/problems/{room.problem_id}")
    assert problem.json["due_dates"][0]["due_at"] == iso(soon.astimezone(UTC))

    student = await page_for(browser, room, room.student, STUDENT_ZONE)
    card = student.locator(".problem-card")
    await expect(card).to_contain_text("Due ")
    await expect(card).to_contain_text(shown(soon))
    await student.goto(f"{room.server.url}/problems/{room.problem_id}")
    deadline = student.locator("#deadline")
    await expect(deadline).to_contain_text(shown(soon))
    await expect(deadline).to_contain_text("marked late")

    # Then the due date passes: submissions are still taken, and marked late.
    gone = (datetime.now(TEACHER_ZONE) - timedelta(hours=3)).replace(second=0, microsecond=0)
    await set_due_in_editor(teacher, room, gone, "accept_late")
    await student.reload()
    await expect(deadline).to_contain_text("The due date has passed")
    await expect(deadline).to_contain_text(shown(gone))
    await type_code(student, "HELLO\n")
    await student.get_by_role("button", name="Submit").click()
    await expect(student.locator("#result")).to_contain_text("Score 50 / 100", timeout=JOB_TIMEOUT_MS)
    await expect(student.locator("#history li .late-mark")).to_have_count(1)
    await shot(student, "assignment-late-submission")
    await student.goto(f"{room.server.url}/submissions")
    await expect(student.locator("#submission-list tbody tr .late-mark")).to_have_count(1)

    await teacher.goto(f"{room.server.url}/teach/submissions?problem_id={room.problem_id}")
    await expect(teacher.locator("#submission-list tbody tr .late-mark")).to_have_count(1)
    await teacher.goto(f"{room.server.url}/teach/classes/{room.class_id}")
    await expect(teacher.locator(".gradebook .late-mark")).to_have_count(1)
    await shot(teacher, "assignment-late-gradebook")


async def test_closed_problem_refuses_the_student_not_the_teacher(
    room: Room, browser: Any, shot: Callable[..., Any]
) -> None:
    teacher = await page_for(browser, room, room.teacher, TEACHER_ZONE)
    gone = (datetime.now(TEACHER_ZONE) - timedelta(hours=1)).replace(second=0, microsecond=0)
    await set_due_in_editor(teacher, room, gone, "close")
    assert (await room.teacher.get(f"/api/problems/{room.problem_id}")).json["due_dates"][0]["late_policy"] == "close"

    student = await page_for(browser, room, room.student, STUDENT_ZONE)
    await expect(student.locator(".problem-card")).to_contain_text("Closed since")
    await student.goto(f"{room.server.url}/problems/{room.problem_id}")
    await expect(student.locator("#deadline")).to_contain_text("Closed")
    await expect(student.locator("#deadline")).to_contain_text(shown(gone))
    await type_code(student, "HELLO\n")
    await student.get_by_role("button", name="Submit").click()
    await expect(student.locator("#job-status")).to_contain_text("takes no more submissions")
    await expect(student.locator("#history")).to_contain_text("None yet.")
    await shot(student, "assignment-closed")
    assert (await room.student.get("/api/submissions")).json["submissions"] == []

    # The teacher's preview of the same page still submits.
    await teacher.goto(f"{room.server.url}/problems/{room.problem_id}")
    await expect(teacher.locator("#deadline")).to_be_hidden()
    await type_code(teacher, "HELLO\n")
    await teacher.get_by_role("button", name="Submit").click()
    await expect(teacher.locator("#result")).to_contain_text("Score 50 / 100", timeout=JOB_TIMEOUT_MS)


async def test_teacher_comment_reaches_only_the_student(room: Room, browser: Any, shot: Callable[..., Any]) -> None:
    sub = await submit(room.student, room.problem_id, "HELLO\n")
    url = f"{room.server.url}/submissions/{sub['id']}"
    teacher = await page_for(browser, room, room.teacher, TEACHER_ZONE)
    await teacher.goto(url)
    await teacher.get_by_label(re.compile("^Your comment")).fill("Nice: now make the hidden test pass.")
    await teacher.get_by_role("button", name="Add comment").click()
    comments = teacher.locator("#comments .comment")
    await expect(comments).to_have_count(1)
    await expect(comments).to_contain_text("Nice: now make the hidden test pass.")
    await comments.get_by_role("button", name="Edit").click()
    await teacher.get_by_label(re.compile("^Your comment")).fill("Nice: now make the hidden test pass too.")
    await teacher.get_by_role("button", name="Save comment").click()
    await expect(comments).to_contain_text("pass too.")
    await expect(comments).to_contain_text("edited")
    await shot(teacher, "assignment-comment-teacher")

    student = await page_for(browser, room, room.student, STUDENT_ZONE)
    await student.goto(url)
    await expect(student.locator("#comments .comment")).to_contain_text("Nice: now make the hidden test pass too.")
    await expect(student.locator("#comment-form")).to_be_hidden()
    await shot(student, "assignment-comment-student")

    outsider = await page_for(browser, room, room.outsider, STUDENT_ZONE)
    await outsider.goto(url)
    await expect(outsider.locator("#result .notice.error")).to_contain_text(
        re.compile("no such submission", re.IGNORECASE)
    )
    await expect(outsider.locator("#comments-section")).to_be_hidden()
    await expect(outsider.get_by_text("hidden test pass")).to_have_count(0)
