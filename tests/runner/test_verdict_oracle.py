"""Issue 9, finding 6: a program that picks how it fails on each hidden test (wrong answer, crash,
a limit) learns about its input from every verdict it gets back. Bounded by showing students hidden
tests only as "passed k of n" (a per-problem teacher setting) and by a per-problem submission
budget. No Docker: the sandbox is a stand-in whose "program" crashes on the hidden test."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from appliance.clock import db_epoch, epoch
from runner.executor import ExecRequest, ExecResult, TestOutcome
from tests.conftest import LiveServer
from tests.ui.conftest import FakeSandbox, make_room, no_docker
from tests.ui.test_classroom_api import submit


class SignallingExecutor:
    """Prints the program's source on visible tests; on the hidden one (its input starts with
    "secret") it fails on purpose with a runtime error — the signal a student must not see."""

    async def execute(self, request: ExecRequest) -> ExecResult:
        return ExecResult(
            None,
            [
                TestOutcome(t.name, "runtime_error", 1, b"", b"Traceback", 7)
                if t.stdin.startswith(b"secret")
                else TestOutcome(t.name, "ok", 0, request.code.encode(), b"", 3)
                for t in request.tests
            ],
        )

    async def close(self) -> None:
        return None


async def test_students_see_hidden_tests_only_as_a_count_unless_the_teacher_chooses_verdicts(
    server_factory: Callable[..., Awaitable[LiveServer]],
) -> None:
    server = await server_factory(app_options={"sandbox": FakeSandbox(SignallingExecutor)})
    room = await make_room(server)
    assert (await room.student.get(f"/api/problems/{room.problem_id}")).json["hidden_feedback"] == "summary"

    result = await submit(room.student, room.problem_id, "HELLO\n")  # passes the visible test, crashes the hidden
    assert [(t["name"], t["verdict"]) for t in result["tests"]] == [("example", "accepted")]
    assert result["hidden_tests"] == {"passed": 0, "total": 1}
    # The overall verdict is the first failing test's: here it would be the hidden test's own.
    assert (result["verdict"], result["score"]) == ("wrong_answer", 50)
    sub_id = result["id"]
    views = [
        await room.student.get(f"/api/submissions/{sub_id}"),
        await room.student.get("/api/submissions"),
        await room.student.get(f"/api/submissions?problem_id={room.problem_id}"),
        await room.student.get("/api/me/progress"),
        await room.student.get_capped(f"/api/submissions/{sub_id}/events"),
    ]
    for reply in views:
        assert reply.status == 200, reply
        assert b"runtime_error" not in reply.body and b"hidden test" not in reply.body, reply
    assert views[1].json["submissions"][0]["verdict"] == "wrong_answer"
    assert views[3].json["progress"][0]["last_verdict"] == "wrong_answer"

    # The teacher always sees every test, and the real verdict.
    staff = (await room.teacher.get(f"/api/submissions/{sub_id}")).json
    assert staff["verdict"] == "runtime_error" and staff["hidden_tests"] == {"passed": 0, "total": 1}
    assert [(t["name"], t["verdict"]) for t in staff["tests"]] == [("example", "accepted"), ("secret", "runtime_error")]
    listing = (await room.teacher.get(f"/api/submissions?problem_id={room.problem_id}")).json["submissions"]
    assert listing[0]["verdict"] == "runtime_error"

    # A teacher may choose a verdict per hidden test instead.
    bad = await room.teacher.patch(f"/api/problems/{room.problem_id}", json={"hidden_feedback": "everything"})
    assert bad.status == 400 and bad.error_code == "invalid_value", bad
    changed = await room.teacher.patch(f"/api/problems/{room.problem_id}", json={"hidden_feedback": "per_test"})
    assert changed.status == 200 and changed.json["hidden_feedback"] == "per_test", changed
    seen = (await room.student.get(f"/api/submissions/{sub_id}")).json
    assert seen["verdict"] == "runtime_error"
    assert seen["tests"][1] == {"position": 2, "name": "hidden test", "verdict": "runtime_error", "visible": False}

    openapi = (await room.student.get("/api/openapi.json")).json["paths"]["/api/problems"]["post"]
    field = openapi["requestBody"]["content"]["application/json"]["schema"]["properties"]["hidden_feedback"]
    assert field["enum"] == ["summary", "per_test"]


def _age_submissions(server: LiveServer, seconds: float) -> None:
    conn = sqlite3.connect(server.settings.db_path, timeout=10)
    try:
        with conn:
            rows = conn.execute("SELECT id, created_at FROM jobs").fetchall()
            conn.executemany(
                "UPDATE jobs SET created_at = ? WHERE id = ?", [(db_epoch(epoch(at) - seconds), i) for i, at in rows]
            )
    finally:
        conn.close()


async def test_submissions_past_the_budget_get_429_and_queue_nothing(
    server_factory: Callable[..., Awaitable[LiveServer]],
) -> None:
    # No workers: every job stays queued; the in-flight cap is raised out of the way.
    server = await server_factory(
        app_options=no_docker(),
        workers=0,
        max_jobs_in_flight_per_user=50,
        submissions_per_problem_per_minute=3,
        submissions_per_problem_per_hour=5,
    )
    room = await make_room(server)
    url = f"/api/problems/{room.problem_id}/submissions"

    async def post(client: Any, code: str, path: str = url) -> Any:
        return await client.post(path, json={"language": "python", "code": code})

    def queued_for(user_id: int, problem_id: int) -> int:
        return sum(1 for row in server.db_rows()["jobs"] if row[2] == user_id and row[3] == problem_id)

    for code in ("a", "b", "c"):
        assert (await post(room.student, code)).status == 202
    again = await post(room.student, "c")  # the same code again returns the earlier job: no cost
    assert again.status == 202 and again.json["deduplicated"] is True, again
    burst = await post(room.student, "d")
    assert burst.status == 429 and burst.error_code == "too_many_submissions", burst
    assert 1 <= int(burst.headers["Retry-After"]) <= 60
    assert queued_for(room.student.user_id, room.problem_id) == 3

    # The budget is per problem: another problem of the class is not affected.
    other = await room.teacher.post(
        "/api/problems",
        json={
            "title": "Another",
            "statement": "",
            "language": "python",
            "classes": [room.class_id],
            "test_cases": [{"stdin": "", "expected_stdout": "x"}],
        },
    )
    assert (await post(room.student, "a", f"/api/problems/{other.json['id']}/submissions")).status == 202

    _age_submissions(server, 120)  # two minutes later: the burst limit allows more, the hour's does not
    assert (await post(room.student, "d")).status == 202
    assert (await post(room.student, "e")).status == 202
    hourly = await post(room.student, "f")
    assert hourly.status == 429 and hourly.error_code == "too_many_submissions", hourly
    assert 3000 < int(hourly.headers["Retry-After"]) <= 3600 - 120 and "hour" in hourly.error["message"]
    assert queued_for(room.student.user_id, room.problem_id) == 5

    # Staff are exempt (a teacher checking solutions), and runs are not submissions.
    for index in range(7):
        assert (await post(room.teacher, f"teacher {index}")).status == 202
    assert (await room.student.post("/api/runs", json={"language": "python", "code": "print(1)"})).status == 202
