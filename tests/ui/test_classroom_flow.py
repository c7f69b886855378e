"""The whole classroom loop in a real browser, against a real server and the real Docker sandbox:
a teacher makes a class and a problem with a visible and a hidden test; a student registers,
joins, writes code, runs it with input and submits it; both see the result their role allows —
and nothing the student's browser receives ever contains the hidden test's data.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import expect

from tests.conftest import DEFAULT_PASSWORD, LiveServer, unique_username, years_ago
from tests.ui.conftest import LAPTOP, NetworkLog
from tests.ui.helpers import JOB_TIMEOUT_MS, editor_text, log_in, type_code, wait_saved

pytestmark = pytest.mark.browser


@pytest.mark.docker
async def test_student_and_teacher_loop(
    server: LiveServer, browser: Any, shot: Callable[..., Any], sandbox_ready: None
) -> None:
    tag = uuid.uuid4().hex[:10]
    hidden_in = f"secret-{tag}"
    hidden_out = hidden_in.upper()
    teacher_api = await server.make_user("teacher")
    base = server.url

    # --- the teacher: a class, then a problem with one visible and one hidden test ----------------
    teacher_ctx = await browser.new_context(viewport=LAPTOP)
    teacher_log = NetworkLog(base)
    teacher_log.attach(teacher_ctx)
    teacher = await teacher_ctx.new_page()
    await log_in(teacher, base, teacher_api.username)
    await teacher.get_by_label("Class name").fill("7B Computing")
    await teacher.get_by_role("button", name="Create class").click()
    await teacher.wait_for_url(re.compile(r"/teach/classes/\d+$"))
    await expect(teacher.locator("#join-code")).not_to_be_empty()
    join_code = (await teacher.locator("#join-code").inner_text()).strip()
    assert re.fullmatch(r"[A-Z0-9]{8}", join_code), join_code

    await teacher.goto(f"{base}/teach/problems/new")
    await teacher.get_by_label("Title").fill("Shout it")
    await teacher.get_by_label("Statement").fill("Read one line and print it in **capital letters**.")
    await teacher.get_by_label("7B Computing", exact=True).check()
    visible, hidden = teacher.locator(".test-case").nth(0), teacher.locator(".test-case").nth(1)
    await visible.get_by_label("Input").fill("hello\n")
    await visible.get_by_label("Expected output").fill("HELLO\n")
    await expect(hidden.get_by_label("Who sees it")).to_have_value("hidden")
    await hidden.get_by_label("Input").fill(hidden_in + "\n")
    await hidden.get_by_label("Expected output").fill(hidden_out + "\n")
    await shot(teacher, "teacher-new-problem")
    await teacher.get_by_role("button", name="Save problem").click()
    await teacher.wait_for_url(re.compile(r"/teach/problems/\d+$"))
    problem_id = int(teacher.url.rsplit("/", 1)[1])

    # "Check my solution": the reference solution against every test, the hidden one included.
    await type_code(teacher, "print(input().upper())\n")
    await teacher.get_by_role("button", name="Check against all tests").click()
    await expect(teacher.locator("#job-status")).to_contain_text("All 2 tests pass", timeout=JOB_TIMEOUT_MS)
    await shot(teacher, "teacher-check-solution")

    # --- the student: register (age gate and legal texts), join, solve ---------------------------
    student_ctx = await browser.new_context(viewport=LAPTOP)
    log = NetworkLog(base)
    log.attach(student_ctx)
    student = await student_ctx.new_page()
    await student.goto(base + "/")
    await shot(student, "login")
    await student.get_by_role("link", name="Create a student account").click()
    username = unique_username("pupil")
    await student.get_by_label("Username").fill(username)
    await student.get_by_label("Password").fill(DEFAULT_PASSWORD)
    await student.get_by_label("Date of birth").fill(years_ago(10))
    await student.get_by_label(re.compile("terms of use")).check()
    await student.get_by_label(re.compile("privacy notice")).check()
    await student.get_by_role("button", name="Create account").click()
    # Ten years old is under the self-registration age: a clear message, no account.
    await expect(student.locator("#register-error")).to_contain_text("ask your teacher")
    await shot(student, "register-too-young")
    await student.get_by_label("Date of birth").fill(years_ago(14))
    await student.get_by_role("button", name="Create account").click()
    await student.wait_for_url(base + "/")

    await student.get_by_label("Class code").fill(join_code.lower())
    await student.get_by_role("button", name="Join").click()
    await expect(student.locator("#join-status")).to_contain_text("7B Computing")
    problem_link = student.get_by_role("link", name="Shout it")
    await expect(problem_link).to_be_visible()
    await expect(student.locator(".problem-card")).to_contain_text("Not started")
    await shot(student, "student-home")

    await problem_link.click()
    await student.wait_for_url(f"{base}/problems/{problem_id}")
    await expect(student.locator(".statement strong")).to_have_text("capital letters")
    await expect(student.locator("#examples")).to_contain_text("HELLO")
    await expect(student.locator("#examples")).to_contain_text("1 hidden test")

    await type_code(student, "print(input().upper())")
    assert await editor_text(student) == "print(input().upper())"
    await student.get_by_label(re.compile("^Input for Run")).fill("quiet please")
    await student.get_by_role("button", name="Run", exact=True).click()
    await expect(student.locator("#output")).to_contain_text("QUIET PLEASE", timeout=JOB_TIMEOUT_MS)
    await wait_saved(student)

    await student.get_by_role("button", name="Submit").click()
    result = student.locator("#result")
    await expect(result).to_contain_text("Score 100 / 100", timeout=JOB_TIMEOUT_MS)
    await expect(result.locator("table.tests tbody tr").first).to_contain_text("Accepted")
    await expect(result).to_contain_text("Passed 1 of 1 hidden test.")
    await expect(student.locator("#history li")).to_have_count(1)
    await shot(student, "student-problem-accepted")

    # The draft is on the server: a reload (with this browser's own copy wiped) shows the code.
    await student.evaluate("() => localStorage.clear()")
    await student.reload()
    await expect(student.locator(".cm-content[contenteditable='true']")).to_have_count(1)
    assert await editor_text(student) == "print(input().upper())"

    # Earlier submissions: the list, and one in detail with its code and per-test results.
    await student.get_by_role("link", name="My submissions").click()
    await student.locator("table.list").get_by_role("link").first.click()
    await expect(student.locator("#result")).to_contain_text("Passed 1 of 1 hidden test.")
    await expect(student.locator("#code .cm-content")).to_contain_text("print(input().upper())")
    await shot(student, "student-submission")

    await student.goto(base + "/")
    await expect(student.locator(".problem-card")).to_contain_text("Solved")

    # The scratchpad: an uploaded file is in the program's working directory.
    await student.get_by_role("link", name="Scratchpad", exact=True).click()
    # The files section shows once the page knows the caller's files (a person cannot use it sooner).
    await expect(student.get_by_label("Upload files")).to_be_visible()
    await student.get_by_label("Upload files").set_input_files(
        {"name": "words.txt", "mimeType": "text/plain", "buffer": b"apple\nbanana\n"}
    )
    await expect(student.get_by_label("words.txt")).to_be_checked()
    await type_code(student, "print(open('words.txt').read().upper())")
    await student.get_by_role("button", name="Run", exact=True).click()
    await expect(student.locator("#output")).to_contain_text("APPLE\nBANANA", timeout=JOB_TIMEOUT_MS)
    await shot(student, "student-scratchpad-file")

    # Graphical output, where this appliance's runner returns pictures (it lands with the graphics work).
    paths = (await teacher_api.get("/api/openapi.json")).json["paths"]
    if "/api/runs/{id}/images/{index}" in paths:
        await type_code(student, "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()")
        await student.get_by_role("button", name="Run", exact=True).click()
        picture = student.get_by_role("img", name="Picture drawn by the program")
        await expect(picture).to_be_visible(timeout=JOB_TIMEOUT_MS)
        assert await picture.evaluate("(img) => img.complete && img.naturalWidth > 100")
        await shot(student, "student-scratchpad-plot")

    # --- the teacher sees the student's result for both tests, the hidden one in full -------------
    await teacher.goto(f"{base}/teach/submissions?problem_id={problem_id}")
    row = teacher.locator("table.list tbody tr", has_text=username)
    await expect(row).to_contain_text("Accepted")
    await shot(teacher, "teacher-submissions")
    await row.get_by_role("link").click()
    await teacher.wait_for_url(re.compile(r"/submissions/\d+$"))
    tests = teacher.locator("#result table.tests")
    await expect(tests).to_contain_text("hidden from students")
    await teacher.get_by_text("Details of hidden 1").click()
    await expect(tests).to_contain_text(hidden_in)
    await expect(tests).to_contain_text(hidden_out)
    await shot(teacher, "teacher-submission-detail")

    await teacher.goto(f"{base}/teach/classes/{(await teacher_api.get('/api/classes')).json['classes'][0]['id']}")
    await expect(teacher.locator("#gradebook")).to_contain_text("100 ✓ after 1 try")  # one submission: not "1 tries"
    await expect(teacher.locator("#roster")).to_contain_text(username)
    await shot(teacher, "teacher-class")

    # --- nothing the student's browser received holds hidden test data ---------------------------
    assert not log.foreign, f"the student's browser asked another host: {log.foreign}"
    assert not teacher_log.foreign, f"the teacher's browser asked another host: {teacher_log.foreign}"
    received = await log.bodies()
    assert len(received) > 20
    for url, body in received:
        for marker in (hidden_in, hidden_out):
            assert marker.encode() not in body, f"hidden test data {marker} reached the student in {url}"
    await student_ctx.close()
    await teacher_ctx.close()
