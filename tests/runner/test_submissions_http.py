"""Runs and submissions through the HTTP API with the real sandbox: verdicts, visibility, dedup,
caps, live status and rejudges."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import aiohttp

from tests.conftest import LiveServer

SECRET_IN, SECRET_OUT = "HIDDEN-IN-7731 HIDDEN-OUT-4\n", "HIDDEN-OUT-4\n"


def _problem(class_id: int, **extra: object) -> dict[str, object]:
    return {
        **extra,
        "title": "Echo the last word",
        "statement": "Print the last word of the line.",
        "language": "python",
        "classes": [class_id],
        "test_cases": [
            {"name": "shown", "stdin": "hello world\n", "expected_stdout": "world\n", "visible": True},
            {"name": "secret", "stdin": SECRET_IN, "expected_stdout": SECRET_OUT, "visible": False},
        ],
    }


SOLUTION = "print(input().split()[-1])"
WRONG = "print(input())"


async def _classroom(server: LiveServer, **problem_fields: object):  # type: ignore[no-untyped-def]
    teacher = await server.make_user("teacher")
    klass = (await teacher.post("/api/classes", json={"name": "7B"})).json
    student = await server.make_user("student")
    assert (await student.post("/api/classes/join", json={"code": klass["join_code"]})).status == 200
    problem = (await teacher.post("/api/problems", json=_problem(klass["id"], **problem_fields))).json
    return teacher, student, problem


async def test_student_sees_visible_details_and_hidden_verdicts_only(
    server_factory: Callable[..., Awaitable[LiveServer]], sandbox_ready: None
) -> None:
    server = await server_factory()
    # A verdict per hidden test, as the teacher may choose (the default, a count, is in test_verdict_oracle.py).
    teacher, student, problem = await _classroom(server, hidden_feedback="per_test")
    reply = await student.post(f"/api/problems/{problem['id']}/submissions", json={"language": "python", "code": WRONG})
    assert reply.status == 202 and reply.json["deduplicated"] is False
    again = await student.post(f"/api/problems/{problem['id']}/submissions", json={"language": "python", "code": WRONG})
    assert (again.json["id"], again.json["deduplicated"]) == (reply.json["id"], True)

    seen = await student.get(f"/api/submissions/{reply.json['id']}", params={"wait": "30"})
    assert seen.json["status"] == "done" and seen.json["verdict"] == "wrong_answer"
    shown, hidden = seen.json["tests"]
    assert shown["visible"] and shown["stdout"] == "hello world\n" and shown["expected_stdout"] == "world\n"
    assert hidden == {"position": 2, "name": "hidden test", "verdict": "wrong_answer", "visible": False}
    assert b"HIDDEN" not in seen.body and b"7731" not in seen.body
    listing = await student.get("/api/submissions")
    assert b"HIDDEN" not in listing.body and listing.json["submissions"][0]["verdict"] == "wrong_answer"

    full = await teacher.get(f"/api/submissions/{reply.json['id']}")
    assert full.json["tests"][1]["stdout"] == SECRET_IN and full.json["tests"][1]["expected_stdout"] == SECRET_OUT

    stranger = await server.make_user("student")
    assert (await stranger.get(f"/api/submissions/{reply.json['id']}")).status == 404
    assert (await stranger.get(f"/api/runs/{reply.json['id']}")).status == 404


async def test_verdicts_and_live_status_stream(
    server_factory: Callable[..., Awaitable[LiveServer]], sandbox_ready: None
) -> None:
    server = await server_factory()
    _, student, problem = await _classroom(server)
    reply = await student.post(
        f"/api/problems/{problem['id']}/submissions", json={"language": "python", "code": SOLUTION}
    )
    events = []
    async with aiohttp.ClientSession(cookie_jar=student._session.cookie_jar) as session:
        async with session.get(f"{server.url}/api/submissions/{reply.json['id']}/events") as stream:
            assert stream.headers["Content-Type"].startswith("text/event-stream")
            async for line in stream.content:
                if line.startswith(b"data: "):
                    events.append(json.loads(line[6:]))
    assert events[-1]["status"] == "done" and all("position" in e for e in events)
    result = (await student.get(f"/api/submissions/{reply.json['id']}")).json
    assert (result["verdict"], result["score"], result["attempts"]) == ("accepted", 100.0, 1)

    crash = await student.post("/api/runs", json={"language": "python", "code": "raise SystemExit(3)"})
    run = (await student.get(f"/api/runs/{crash.json['id']}", params={"wait": "30"})).json
    assert (run["verdict"], run["exit_code"], run["infra_retries"]) == ("runtime_error", 3, 0)
    bad = await student.post("/api/runs", json={"language": "c", "code": "int main( {"})
    compiled = (await student.get(f"/api/runs/{bad.json['id']}", params={"wait": "30"})).json
    assert compiled["verdict"] == "compile_error" and "error" in compiled["compile_output"]


async def test_rejudge_keeps_old_results_until_published(
    server_factory: Callable[..., Awaitable[LiveServer]], sandbox_ready: None
) -> None:
    server = await server_factory()
    teacher, student, problem = await _classroom(server)
    sub = await student.post(f"/api/problems/{problem['id']}/submissions", json={"language": "python", "code": WRONG})
    first = (await student.get(f"/api/submissions/{sub.json['id']}", params={"wait": "30"})).json
    assert first["verdict"] == "wrong_answer"

    # The teacher decides the whole line is what they wanted after all, and rejudges.
    tests = [
        {"name": "shown", "stdin": "hello world\n", "expected_stdout": "hello world\n", "visible": True},
        {"name": "secret", "stdin": SECRET_IN, "expected_stdout": SECRET_IN, "visible": False},
    ]
    assert (await teacher.patch(f"/api/problems/{problem['id']}", json={"test_cases": tests})).status == 200
    rejudge = await teacher.post(f"/api/problems/{problem['id']}/rejudge")
    assert rejudge.status == 202 and len(rejudge.json["rejudges"]) == 1
    rejudge_id = rejudge.json["rejudges"][0]
    view = (await teacher.get(f"/api/submissions/{rejudge_id}", params={"wait": "30"})).json
    assert view["verdict"] == "accepted"
    assert (await student.get(f"/api/submissions/{rejudge_id}")).status == 404

    before = (await student.get(f"/api/submissions/{sub.json['id']}")).json
    assert before["verdict"] == "wrong_answer"
    staff = (await teacher.get(f"/api/submissions/{sub.json['id']}")).json
    assert staff["original"]["verdict"] == "wrong_answer" and staff["rejudges"][0]["verdict"] == "accepted"

    assert (await teacher.post(f"/api/problems/{problem['id']}/rejudge/publish")).json["published"] == 1
    after = (await student.get(f"/api/submissions/{sub.json['id']}")).json
    assert after["verdict"] == "accepted" and after["score"] == 100.0


async def test_per_student_cap_and_full_queue_answer_clearly(
    server_factory: Callable[..., Awaitable[LiveServer]],
) -> None:
    # No workers: jobs stay queued, so the limits are hit deterministically (no sandbox needed).
    server = await server_factory(workers=0, max_jobs_in_flight_per_user=2, queue_max=3)
    student = await server.make_user("student")
    other = await server.make_user("student")
    for index in range(2):
        reply = await student.post("/api/runs", json={"language": "python", "code": f"print({index})"})
        assert reply.status == 202 and reply.json["position"] == index + 1
    capped = await student.post("/api/runs", json={"language": "python", "code": "print(9)"})
    assert capped.status == 429 and capped.error_code == "too_many_jobs" and "Retry-After" in capped.headers
    assert (await other.post("/api/runs", json={"language": "python", "code": "print(1)"})).status == 202
    full = await other.post("/api/runs", json={"language": "python", "code": "print(2)"})
    assert full.status == 503 and full.error_code == "queue_full" and "Retry-After" in full.headers
    assert server.db_rows()["jobs"].__len__() == 3
    unknown = await other.post("/api/runs", json={"language": "cobol", "code": "x"})
    assert unknown.status == 400 and unknown.error_code == "unknown_language"
    bad_wait = await student.get("/api/runs/1", params={"wait": "9999"})
    assert bad_wait.status == 400 and bad_wait.error_code == "invalid_wait"


async def test_a_students_sandbox_is_started_at_login_and_shown_to_the_admin(
    server_factory: Callable[..., Awaitable[LiveServer]], sandbox_ready: None
) -> None:
    server = await server_factory()
    admin = await server.make_user("admin")
    await server.make_user("student")  # logs in: the runner starts a sandbox for them
    for _ in range(200):
        warm = (await admin.get("/api/admin/stats")).json["runner"]["warm_sandboxes"]
        # The admin's own login may have warmed one too: one per user, at most two.
        if warm is not None and warm["users"] >= 1:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("no sandbox was started for the student who logged in")
    assert warm["idle"] == warm["users"] <= 2 and 0 < warm["memory_bytes"] < warm["idle"] * 32 * 1024 * 1024
