"""Exam mode attacked (issue 11 red team): a student during their exam trying to reach what the
exam hides through routes the exam's own tests do not walk, to keep a second session, or to read
their other standing; and a teacher's live view outliving their session. A real server on its
SQLite file; the sandbox is the EchoExecutor stand-in."""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from tests.ui.test_exam_api import PYTHON, Exam, at, exam_room, running, submit

pytestmark = pytest.mark.usefixtures("fast_passwords")


@pytest.fixture
async def exam(server_factory: Callable[..., Any]) -> Exam:
    return await exam_room(server_factory, exam_live_refresh_s=1)


HOMEWORK_CODE = "print('homework answer kept for later')"


async def homework_then_exam(exam: Exam, *, submitted: bool = True) -> None:
    """The student drafts (and submits to) the other problem, then the exam starts."""
    student = exam.room.student
    draft = await student.put(f"/api/problems/{exam.other}/draft", json={"language": PYTHON, "code": HOMEWORK_CODE})
    assert draft.status == 200, draft
    if submitted:
        homework = await submit(student, exam.other, HOMEWORK_CODE)
        assert homework.status == 202, homework
        assert (await student.get(f"/api/submissions/{homework.json['id']}", params={"wait": "10"})).status == 200
    assert (await exam.schedule(running(), runs_allowed=False)).status == 201


@pytest.mark.parametrize("submitted", [False, True], ids=["drafted", "submitted"])
async def test_the_data_export_does_not_carry_other_problems_out_during_the_exam(exam: Exam, submitted: bool) -> None:
    room, student = exam.room, exam.room.student
    await homework_then_exam(exam, submitted=submitted)
    path = f"/api/users/{student.user_id}/export"
    refused = await student.get(path)
    # The zip would hold every earlier submission and draft: the code the exam hides.
    assert refused.status == 403 and refused.error_code == "exam_export_refused", refused
    assert HOMEWORK_CODE.encode() not in refused.body
    # Their teacher's export of them waits too (it was a bare 404 "no such submission" before).
    by_teacher = await room.teacher.get(path)
    assert by_teacher.status == 403 and by_teacher.error_code == "exam_export_refused", by_teacher
    assert "after it" in by_teacher.error["message"]
    await exam.move({"ends_at": at(-0.5)})
    after = await student.get(path)
    assert after.status == 200, after
    names = zipfile.ZipFile(io.BytesIO(after.body)).namelist()
    assert any(HOMEWORK_CODE.encode() in zipfile.ZipFile(io.BytesIO(after.body)).read(n) for n in names)


async def test_progress_during_the_exam_shows_only_its_problems(exam: Exam) -> None:
    room, student = exam.room, exam.room.student
    await homework_then_exam(exam)
    reply = await student.get("/api/me/progress")
    assert reply.status == 200, reply
    assert {row["problem_id"] for row in reply.json["progress"]} <= {room.problem_id}, reply.json
    await exam.move({"ends_at": at(-0.5)})
    after = await student.get("/api/me/progress")
    assert exam.other in {row["problem_id"] for row in after.json["progress"]}, after.json


async def test_two_sessions_made_before_the_exam_do_not_both_last_into_it(exam: Exam) -> None:
    room, first = exam.room, exam.room.student
    # A second browser (a phone, a friend's laptop) logged in before the exam started.
    second = room.server.client()
    assert (await second.login(first.username, first.password)).status == 200
    assert (await first.get("/api/me")).status == 200
    assert (await exam.schedule(running())).status == 201

    # The newer session is the student's one session; the older one ends as after a login elsewhere.
    assert (await second.get("/api/me")).status == 200
    ended = await first.get("/api/me")
    assert ended.status == 401 and ended.error_code == "session_ended", ended
    assert (await first.get(f"/api/problems/{room.problem_id}")).status == 401
    assert (await second.get(f"/api/problems/{room.problem_id}")).status == 200
    # Logging in again makes that browser the one session, as during any exam.
    assert (await first.login(first.username, first.password)).status == 200
    assert (await first.get("/api/me")).status == 200
    assert (await second.get("/api/me")).status == 401
    # Other students and staff keep their several sessions.
    teacher_again = room.server.client()
    assert (await teacher_again.login(room.teacher.username, room.teacher.password)).status == 200
    assert (await room.teacher.get("/api/me")).status == 200
    assert (await teacher_again.get("/api/me")).status == 200


async def test_the_live_view_ends_when_its_teacher_logs_out(exam: Exam) -> None:
    room = exam.room
    assert (await exam.schedule(running())).status == 201
    stream = asyncio.create_task(room.teacher.get_capped(f"/api/exams/{exam.id}/live", seconds=60))
    await asyncio.sleep(1)
    assert (await room.teacher.post("/api/auth/logout")).status in (200, 204)
    await submit(room.student, room.problem_id, "print('wakes the stream')")
    # Without the check the stream goes on showing the class to whoever holds the tab, for minutes.
    reply = await asyncio.wait_for(stream, 15)
    assert reply.status == 200 and reply.text.startswith("event: progress"), reply


async def test_every_route_with_a_hidden_problem_or_submission_is_not_found(exam: Exam) -> None:
    """The examinee walks every route that takes a problem or job id with the other problem's and
    their earlier submission to it: each is not found, and nothing changes."""
    room, student = exam.room, exam.room.student
    homework = await submit(student, exam.other, HOMEWORK_CODE)
    assert (await student.get(f"/api/submissions/{homework.json['id']}", params={"wait": "10"})).status == 200
    await homework_then_exam(exam, submitted=False)
    other, job = exam.other, homework.json["id"]
    before = room.server.db_rows(exclude=("sessions", "api_tokens"))
    html = {"Accept": "text/html"}
    for method, path, kwargs in (
        ("GET", f"/api/problems/{other}", {}),
        ("GET", f"/api/problems/{other}/test-cases", {}),
        ("GET", f"/api/problems/{other}/assets", {}),
        ("GET", f"/api/problems/{other}/draft", {}),
        ("PUT", f"/api/problems/{other}/draft", {"json": {"language": PYTHON, "code": "notes"}}),
        ("POST", f"/api/problems/{other}/submissions", {"json": {"language": PYTHON, "code": "print(9)"}}),
        ("GET", f"/api/submissions/{job}", {}),
        ("GET", f"/api/submissions/{job}/events", {}),
        ("GET", f"/api/submissions/{job}/tests/1/stdout", {}),
        ("GET", f"/api/submissions/{job}/tests/1/images/0", {}),
        ("GET", f"/api/submissions/{job}/comments", {}),
        ("POST", f"/api/submissions/{job}/comments", {"json": {"body": "hi"}}),
        ("GET", f"/problems/{other}", {"headers": html}),
    ):
        reply = await student.request(method, path, **kwargs)
        assert reply.status == 404, (method, path, reply)
    # The submission page is an empty shell for any id; its data comes from the API above.
    shell = await student.get(f"/submissions/{job}", headers=html)
    assert HOMEWORK_CODE not in shell.text and "Homework kept out" not in shell.text
    for path in ("/api/submissions", f"/api/submissions?problem_id={other}", "/api/problems"):
        reply = await student.get(path)
        assert HOMEWORK_CODE not in reply.text and "Homework kept out" not in reply.text, (path, reply)
    # Staff-only routes stay closed to a student whatever the exam.
    for method, path in (
        ("POST", f"/api/problems/{other}/check"),
        ("POST", f"/api/problems/{other}/rejudge"),
        ("GET", f"/api/problems/{other}/export"),
        ("GET", f"/api/problems/{other}/test-cases/all"),
    ):
        reply = await (student.post(path, json={}) if method == "POST" else student.get(path))
        assert reply.status in (403, 404), (method, path, reply)
    assert room.server.db_rows(exclude=("sessions", "api_tokens")) == before


async def test_a_burst_of_submissions_cannot_exceed_the_limit(exam: Exam) -> None:
    room, student = exam.room, exam.room.student
    limit = 2
    assert (await exam.schedule(running(), max_submissions_per_problem=limit)).status == 201
    replies = await asyncio.gather(*(submit(student, room.problem_id, f"print({n})") for n in range(limit + 5)))
    accepted = [r for r in replies if r.status == 202]
    refused = [r for r in replies if r.status != 202]
    assert len(accepted) == limit, replies
    assert all(r.status == 403 and r.error_code == "exam_submission_limit" for r in refused), refused
    mine = (await student.get("/api/me/exam")).json["exams"][0]["problems"][0]
    assert mine["submissions_used"] == limit


async def test_a_live_run_made_before_the_exam_does_not_start_in_it(exam: Exam) -> None:
    student = exam.room.student
    created = await student.post("/api/live-runs", json={"language": PYTHON, "code": "exec(input())"})
    assert created.status == 201, created
    assert (await exam.schedule(running(), runs_allowed=False)).status == 201
    # An interpreter fed over the socket would be every run the exam turns off.
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        async with student.websocket(created.json["socket"]):
            pass
    assert refused.value.status == 403
    again = await student.post("/api/live-runs", json={"language": PYTHON, "code": "print(1)"})
    assert again.status == 403 and again.error_code == "exam_runs_disabled", again
