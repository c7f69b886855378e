"""Exam mode (issue 11) through the API of a real server on its SQLite file: outside the window
nothing changes; inside it a student sees only the exam's problems, runs may be refused, the
submission limit holds, and a second login ends the first session. Every request to an exam route
is also checked against the OpenAPI document. The sandbox is the EchoExecutor stand-in: nothing
here needs a program to really run."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from appliance.clock import iso, now
from tests.conftest import ApiClient, LiveServer, Reply, class_with, problem_for
from tests.core.test_openapi import Walk
from tests.ui.conftest import Room, echo, make_room

pytestmark = pytest.mark.usefixtures("fast_passwords")

# Rows that change on every request whatever the request does.
VOLATILE = ("sessions", "api_tokens")
PYTHON = "python"


def at(minutes: float) -> str:
    return iso(now() + timedelta(minutes=minutes))


def running() -> dict[str, str]:
    return {"starts_at": at(-1), "ends_at": at(60)}


def upcoming() -> dict[str, str]:
    return {"starts_at": at(60), "ends_at": at(120)}


def over() -> dict[str, str]:
    return {"starts_at": at(-120), "ends_at": at(-60)}


class Exam:
    """A room with a second problem, and an exam of the first one, every call checked against the document."""

    def __init__(self, room: Room, walk: Walk, other_problem_id: int) -> None:
        self.room = room
        self.walk = walk
        self.other = other_problem_id
        self.id = 0

    async def call(self, client: ApiClient, method: str, path: str, **kwargs: Any) -> Reply:
        return await self.walk.call(client, method, path, **kwargs)

    async def schedule(self, window: dict[str, str], **fields: Any) -> Reply:
        body = {"title": "Midterm", "problem_ids": [self.room.problem_id], **window, **fields}
        reply = await self.call(self.room.teacher, "POST", f"/api/classes/{self.room.class_id}/exams", json=body)
        if reply.status == 201:
            self.id = reply.json["id"]
        return reply

    async def move(self, window: dict[str, str]) -> None:
        reply = await self.call(self.room.teacher, "PATCH", f"/api/exams/{self.id}", json=window)
        assert reply.status == 200, reply


async def exam_room(server_factory: Callable[..., Any], **settings: Any) -> Exam:
    """A room with a second problem kept out of the exam; `settings` go to the server."""
    # The appliance's own per-minute submission budget is not what these tests are about.
    room = await make_room(
        await server_factory(
            app_options=echo(), submissions_per_problem_per_minute=0, max_jobs_in_flight_per_user=20, **settings
        )
    )
    other = await room.teacher.post(
        "/api/problems",
        json={
            "title": "Not in the exam",
            "statement": "Homework.",
            "language": PYTHON,
            "classes": [room.class_id],
            "test_cases": [{"stdin": "", "expected_stdout": "x\n", "visible": True}],
        },
    )
    assert other.status == 201, other
    doc = await room.teacher.get("/api/openapi.json")
    return Exam(room, Walk(doc.json), other.json["id"])


@pytest.fixture
async def exam(server_factory: Callable[..., Any]) -> Exam:
    return await exam_room(server_factory)


async def submit(client: ApiClient, problem_id: int, code: str) -> Reply:
    return await client.post(f"/api/problems/{problem_id}/submissions", json={"language": PYTHON, "code": code})


async def run(client: ApiClient) -> Reply:
    return await client.post("/api/runs", json={"language": PYTHON, "code": "print(1)"})


def job_count(server: LiveServer) -> int:
    return len(server.db_rows()["jobs"])


async def listed(client: ApiClient) -> set[int]:
    reply = await client.get("/api/problems")
    assert reply.status == 200, reply
    return {p["id"] for p in reply.json["problems"]}


async def assert_unrestricted(exam: Exam, when: str) -> None:
    room, student = exam.room, exam.room.student
    assert await listed(student) == {room.problem_id, exam.other}
    for path in (f"/api/problems/{exam.other}", f"/api/problems/{exam.other}/test-cases"):
        reply = await student.get(path)
        assert reply.status == 200, reply
    assert (await run(student)).status == 202
    # More submissions than the exam allows: the limit is the exam's, not the problem's.
    for n in range(3):
        reply = await submit(student, room.problem_id, f"print({n})  # {when}")
        assert reply.status == 202 and not reply.json["deduplicated"], reply
    mine = await exam.call(student, "GET", "/api/me/exam")
    assert mine.status == 200 and mine.json == {"exams": []}, mine
    # A second login keeps the first session; a token works.
    again = exam.room.server.client()
    assert (await again.login(student.username, student.password)).status == 200
    assert (await student.get("/api/me")).status == 200
    token = await student.create_token()
    assert (await student.with_token(token).get("/api/me")).status == 200


async def test_outside_the_window_nothing_changes(exam: Exam) -> None:
    created = await exam.schedule(upcoming(), runs_allowed=False, max_submissions_per_problem=1)
    assert created.status == 201 and created.json["state"] == "upcoming", created
    await assert_unrestricted(exam, "before")
    await exam.move(over())
    assert (await exam.call(exam.room.teacher, "GET", f"/api/exams/{exam.id}")).json["state"] == "over"
    await assert_unrestricted(exam, "after")


async def test_inside_the_window_only_exam_problems_no_runs_and_the_limit_holds(exam: Exam) -> None:
    room, student = exam.room, exam.room.student
    draft = await student.put(f"/api/problems/{exam.other}/draft", json={"language": PYTHON, "code": "x = 1"})
    assert draft.status == 200, draft
    homework = await submit(student, exam.other, "x\n")
    assert homework.status == 202, homework
    created = await exam.schedule(running(), runs_allowed=False, max_submissions_per_problem=2)
    assert created.status == 201 and created.json["state"] == "running", created

    # Only the exam's problems: listed, readable; the other one is not found anywhere.
    assert await listed(student) == {room.problem_id}
    assert (await student.get(f"/api/problems/{room.problem_id}")).status == 200
    for path in (
        f"/api/problems/{exam.other}",
        f"/api/problems/{exam.other}/test-cases",
        f"/api/problems/{exam.other}/draft",
    ):
        reply = await student.get(path)
        assert reply.status == 404 and reply.error_code == "not_found", reply
    before = job_count(room.server)
    refused = await submit(student, exam.other, "x\n")
    assert refused.status == 404, refused
    page = await student.get(f"/problems/{exam.other}", headers={"Accept": "text/html"})
    assert page.status == 404, page
    # Their earlier submission to it is not found either, nor listed.
    earlier = await student.get(f"/api/submissions/{homework.json['id']}")
    assert earlier.status == 404, earlier
    assert (await student.get("/api/submissions")).json["submissions"] == []

    # No runs of any kind.
    refused = await run(student)
    assert refused.status == 403 and refused.error_code == "exam_runs_disabled", refused
    live = await student.post("/api/live-runs", json={"language": PYTHON, "code": "print(1)"})
    assert live.status == 403 and live.error_code == "exam_runs_disabled", live
    assert job_count(room.server) == before

    # Two submissions; the same code again is the earlier job and costs nothing; a third is refused.
    first = await submit(student, room.problem_id, "print('a')")
    assert first.status == 202, first
    again = await submit(student, room.problem_id, "print('a')")
    assert again.status == 202 and again.json["deduplicated"] and again.json["id"] == first.json["id"], again
    second = await submit(student, room.problem_id, "print('b')")
    assert second.status == 202 and not second.json["deduplicated"], second
    queued = job_count(room.server)
    third = await submit(student, room.problem_id, "print('c')")
    assert third.status == 403 and third.error_code == "exam_submission_limit", third
    # With the limit used, the same code again is still the earlier job, not a refusal.
    repeat = await submit(student, room.problem_id, "print('b')")
    assert repeat.status == 202 and repeat.json["id"] == second.json["id"], repeat
    assert "2 submissions" in third.error["message"]
    assert job_count(room.server) == queued, "a refused submission queued a job"

    mine = await exam.call(student, "GET", "/api/me/exam")
    assert mine.status == 200, mine
    (banner,) = mine.json["exams"]
    assert banner["max_submissions_per_problem"] == 2 and banner["runs_allowed"] is False
    assert banner["problems"] == [{"id": room.problem_id, "title": "Shout it", "submissions_used": 2}]

    # Staff are never restricted.
    assert await listed(room.teacher) >= {room.problem_id, exam.other}
    assert (await run(room.teacher)).status == 202

    # Ending the exam early gives everything back, drafts included.
    await exam.move({"ends_at": at(-0.5)})
    assert await listed(student) == {room.problem_id, exam.other}
    assert (await student.get(f"/api/problems/{exam.other}/draft")).json["draft"]["code"] == "x = 1"
    assert (await student.get(f"/api/submissions/{homework.json['id']}")).status == 200
    assert (await submit(student, room.problem_id, "print('d')")).status == 202
    assert exam.walk.problems == [], exam.walk.problems


async def test_runs_stay_allowed_when_the_exam_allows_them(exam: Exam) -> None:
    assert (await exam.schedule(running(), runs_allowed=True)).status == 201
    assert (await run(exam.room.student)).status == 202
    for n in range(4):  # no limit of the exam's own
        assert (await submit(exam.room.student, exam.room.problem_id, f"print({n})")).status == 202


async def test_a_second_login_during_the_exam_ends_the_first_session(exam: Exam) -> None:
    student = exam.room.student
    token = await student.create_token()
    assert (await exam.schedule(running())).status == 201
    second = exam.room.server.client()
    assert (await second.login(student.username, student.password)).status == 200

    ended = await student.get("/api/me")
    assert ended.status == 401 and ended.error_code == "session_ended", ended
    assert "elsewhere" in ended.error["message"]
    login_page = await student.get("/login", headers={"Accept": "text/html"})
    assert login_page.status == 200 and "You logged in elsewhere" in login_page.text
    assert (await second.get("/api/me")).status == 200
    # A fresh browser with no session is just asked to log in.
    anon = await exam.room.server.client().get("/api/me")
    assert anon.status == 401 and anon.error_code == "login_required", anon
    # A token would be a second session.
    scripted = await student.with_token(token).get("/api/problems")
    assert scripted.status == 403 and scripted.error_code == "exam_token_refused", scripted
    # Other students of the class and the teacher keep their sessions.
    assert (await exam.room.teacher.get("/api/me")).status == 200


async def test_other_teachers_and_students_cannot_read_or_change_an_exam(exam: Exam) -> None:
    room = exam.room
    assert (await exam.schedule(running())).status == 201
    stranger = await room.server.make_user("teacher")
    before = room.server.db_rows(exclude=VOLATILE)
    for client in (stranger, room.student, room.outsider):
        for method, path, body in (
            ("GET", f"/api/exams/{exam.id}", None),
            ("PATCH", f"/api/exams/{exam.id}", {"title": "mine now"}),
            ("DELETE", f"/api/exams/{exam.id}", None),
            ("GET", f"/api/exams/{exam.id}/progress", None),
            ("GET", f"/api/exams/{exam.id}/live", None),
            ("GET", f"/api/classes/{room.class_id}/exams", None),
            ("POST", f"/api/classes/{room.class_id}/exams", {"title": "x", "problem_ids": [1], **upcoming()}),
        ):
            kwargs = {} if body is None else {"json": body}
            reply = await client.request(method, path, **kwargs)
            expected = (404,) if client is stranger or method == "GET" else (403, 404)
            assert reply.status in expected, (client.username, reply)
        page = await client.get(f"/teach/classes/{room.class_id}/exam", headers={"Accept": "text/html"})
        assert page.status == 404, page
    assert room.server.db_rows(exclude=VOLATILE) == before


async def test_bad_exams_are_refused_with_codes_and_change_nothing(exam: Exam) -> None:
    room = exam.room
    mine = await room.teacher.post(
        "/api/problems",
        json={"title": "Not shown", "statement": "", "language": PYTHON, "test_cases": [{"expected_stdout": ""}]},
    )
    stranger = await room.server.make_user("teacher")
    theirs = await problem_for(
        stranger, (await class_with(stranger, [], "9C"))["id"], "Theirs", {"expected_stdout": ""}
    )
    window = upcoming()
    assert (await exam.schedule(window)).status == 201
    before = room.server.db_rows(exclude=VOLATILE)
    limit = room.server.settings.exam_max_minutes
    cases = [
        ({"starts_at": at(30), "ends_at": at(10)}, {}, 400, "exam_ends_before_start"),
        ({"starts_at": at(10), "ends_at": at(10)}, {}, 400, "exam_ends_before_start"),
        ({"starts_at": at(10), "ends_at": at(10 + limit + 1)}, {}, 400, "exam_too_long"),
        ({"starts_at": "tomorrow", "ends_at": at(10)}, {}, 400, "invalid_datetime"),
        (running(), {"problem_ids": [mine.json["id"]]}, 400, "problem_not_in_class"),
        (running(), {"problem_ids": [theirs]}, 400, "problem_not_in_class"),
        (running(), {"problem_ids": [room.problem_id, room.problem_id]}, 400, "duplicate_problem"),
        (running(), {"problem_ids": []}, 400, "no_problems"),
        (running(), {"max_submissions_per_problem": 0}, 400, None),
        ({"starts_at": at(90), "ends_at": at(150)}, {}, 409, "exam_overlap"),
        ({"starts_at": at(30), "ends_at": at(61)}, {}, 409, "exam_overlap"),
    ]
    for times, fields, status, code in cases:
        reply = await exam.schedule(times, **fields)
        assert reply.status == status, (times, fields, reply)
        if code:
            assert reply.error_code == code, reply
    # PATCH checks the same, against the exam's other values.
    bad = await room.teacher.patch(f"/api/exams/{exam.id}", json={"ends_at": window["starts_at"]})
    assert bad.status == 400 and bad.error_code == "exam_ends_before_start", bad
    assert room.server.db_rows(exclude=VOLATILE) == before
    # Back to back is not an overlap.
    assert (await exam.schedule({"starts_at": window["ends_at"], "ends_at": at(180)})).status == 201
    listed_exams = await exam.call(room.teacher, "GET", f"/api/classes/{room.class_id}/exams")
    assert [e["state"] for e in listed_exams.json["exams"]] == ["upcoming", "upcoming"], listed_exams
    deleted = await exam.call(room.teacher, "DELETE", f"/api/exams/{exam.id}")
    assert deleted.status == 204, deleted
    assert (await room.teacher.get(f"/api/exams/{exam.id}")).status == 404
    assert exam.walk.problems == [], exam.walk.problems


async def test_the_teacher_sees_who_is_online_and_their_submissions(exam: Exam) -> None:
    room = exam.room
    assert (await exam.schedule(running(), max_submissions_per_problem=3)).status == 201
    progress = await exam.call(room.teacher, "GET", f"/api/exams/{exam.id}/progress")
    assert progress.status == 200, progress
    (me,) = [s for s in progress.json["students"] if s["id"] == room.student.user_id]
    assert me["online"] is True  # seen at its last request, moments ago
    assert me["problems"] == {str(room.problem_id): {"submissions": 0, "best_score": None}}

    reply = await submit(room.student, room.problem_id, "HELLO\n")  # passes the visible test only
    assert reply.status == 202, reply
    done = await room.student.get(f"/api/submissions/{reply.json['id']}", params={"wait": "10"})
    assert done.json["status"] == "done", done
    stream = await room.teacher.get_capped(f"/api/exams/{exam.id}/live", seconds=1.5)
    assert stream.status == 200 and stream.headers["Content-Type"].startswith("text/event-stream"), stream
    assert stream.text.startswith("event: progress\ndata: "), stream.text[:200]
    import json

    live = json.loads(stream.text.split("data: ", 1)[1].split("\n", 1)[0])
    (me,) = [s for s in live["students"] if s["id"] == room.student.user_id]
    assert me["problems"][str(room.problem_id)] == {"submissions": 1, "best_score": done.json["score"]}
    assert exam.walk.problems == [], exam.walk.problems


async def test_a_student_in_two_classes_is_restricted_while_either_is_in_an_exam(exam: Exam) -> None:
    room = exam.room
    club = await class_with(room.teacher, [room.student], "Club")
    club_problem = await problem_for(room.teacher, club["id"], "Club", {"expected_stdout": ""})
    assert await listed(room.student) == {room.problem_id, exam.other, club_problem}
    assert (await exam.schedule(running())).status == 201
    assert await listed(room.student) == {room.problem_id}
    assert (await room.student.get(f"/api/problems/{club_problem}")).status == 404


async def test_a_live_view_takes_one_of_the_bounded_staff_stream_slots(server_factory: Callable[..., Any]) -> None:
    room = await make_room(await server_factory(app_options=echo(), dashboard_streams_per_user=1))
    body = {"title": "Midterm", "problem_ids": [room.problem_id], **running()}
    created = await room.teacher.post(f"/api/classes/{room.class_id}/exams", json=body)
    assert created.status == 201, created
    live = f"/api/exams/{created.json['id']}/live"
    first = asyncio.create_task(room.teacher.get_capped(live, seconds=3))
    await asyncio.sleep(1)
    second = await room.teacher.get_capped(live, seconds=1)
    assert second.status == 503 and second.error_code == "too_many_streams", second
    assert (await first).status == 200
