"""In a real browser (issue 15): after a teacher edits a problem's tests, the teacher's view of an
older submission still shows the input and expected output it was judged against, the student's
shows nothing of the hidden test (old or new), and a rejudge lists old → new verdicts, its message
turning from "being rejudged" to "done" by itself.

The sandbox is the EchoExecutor stand-in (a program's output is its code), held at a gate so the
rejudge is seen running before it finishes.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import expect

from tests.conftest import LiveServer
from tests.ui.conftest import LAPTOP, FakeSandbox, GatedEcho, NetworkLog, make_room
from tests.ui.helpers import log_in
from tests.ui.test_classroom_api import submit

pytestmark = pytest.mark.browser


async def test_old_test_data_for_the_teacher_and_a_rejudge_that_reports_back(
    server_factory: Callable[..., Any], browser: Any, shot: Callable[..., Any]
) -> None:
    gate = asyncio.Event()
    gate.set()
    server: LiveServer = await server_factory(app_options={"sandbox": FakeSandbox(lambda: GatedEcho(gate))})
    room = await make_room(server)
    base = server.url
    new_secret_in = f"EDITED-{uuid.uuid4().hex[:10]}"
    judged = await submit(room.student, room.problem_id, "HELLO\n")  # passes the example only
    assert judged["verdict"] == "wrong_answer"

    try:
        # --- the teacher edits the hidden test in the problem editor --------------------------------
        teacher_ctx = await browser.new_context(viewport=LAPTOP)
        teacher = await teacher_ctx.new_page()
        await log_in(teacher, base, room.teacher.username)
        await teacher.goto(f"{base}/teach/problems/{room.problem_id}")
        hidden = teacher.locator(".test-case").nth(1)
        await expect(hidden.get_by_label("Input")).to_have_value(room.hidden_in)
        await hidden.get_by_label("Input").fill(new_secret_in)
        await hidden.get_by_label("Expected output").fill("HELLO\n")
        await teacher.get_by_role("button", name="Save problem").click()
        await expect(teacher.locator("#save-status")).to_contain_text("Saved")

        # --- the teacher's view of the old submission: the data it was judged against ---------------
        await teacher.goto(f"{base}/submissions/{judged['id']}")
        tests = teacher.locator("#result table.tests")
        await expect(tests).to_contain_text("as they were when this was judged")
        secret_row = tests.locator("tr.details-row").nth(1)
        await expect(secret_row.locator(".io").nth(0)).to_contain_text(room.hidden_in)
        await expect(secret_row.locator(".io").nth(1)).to_contain_text(room.hidden_out)
        await expect(secret_row.locator(".io").nth(2)).to_contain_text("HELLO")
        example_row = tests.locator("tr.details-row").nth(0)
        await expect(example_row.locator(".io").nth(0)).to_contain_text("hello")
        await expect(tests).not_to_contain_text("(no input)")
        await expect(tests).not_to_contain_text(new_secret_in)
        await shot(teacher, "teacher-submission-as-judged")

        # --- the student's view: nothing of the hidden test, old or new ----------------------------
        student_ctx = await browser.new_context(viewport=LAPTOP)
        log = NetworkLog(base)
        log.attach(student_ctx)
        student = await student_ctx.new_page()
        await log_in(student, base, room.student.username)
        await student.goto(f"{base}/submissions/{judged['id']}")
        await expect(student.locator("#result")).to_contain_text("Score 50 / 100")  # the page did load it
        await expect(student.locator("#result")).to_contain_text("hidden tests")
        for secret in (room.hidden_in, room.hidden_out, new_secret_in):
            assert secret not in await student.content()
            for url, data in await log.bodies():
                assert secret.encode() not in data, f"{secret} reached the student in {url}"
        await student_ctx.close()

        # --- a rejudge: "being rejudged", then "done" with old → new verdicts ----------------------
        gate.clear()
        await teacher.goto(f"{base}/teach/problems/{room.problem_id}")
        await teacher.get_by_role("button", name="Rejudge all submissions").click()
        status = teacher.locator("#manage-status")
        await expect(status).to_contain_text("1 submission being rejudged")
        await shot(teacher, "teacher-rejudge-running")
        gate.set()
        await expect(status).to_contain_text("Rejudge done: 1 submission rejudged, 1 result changed")
        row = teacher.locator("#rejudge-list table.rejudges tbody tr")
        await expect(row).to_have_count(1)
        await expect(row).to_have_class(re.compile(r"\bchanged\b"))
        await expect(row.locator("td").nth(0)).to_contain_text("Wrong answer")
        await expect(row.locator("td").nth(1)).to_contain_text("Accepted")
        await expect(row.locator("th")).to_contain_text(room.student.username)
        await shot(teacher, "teacher-rejudge-done")

        # Opened later, the page shows the last rejudge's list without announcing it again.
        await teacher.reload()
        await expect(teacher.locator("#rejudge-list table.rejudges tbody tr")).to_have_count(1)
        await expect(status).to_be_empty()
        await teacher_ctx.close()
    finally:
        gate.set()  # a job held at the gate would hold the server's shutdown
