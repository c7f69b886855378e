"""Quota overrides (issue 11): set over the API, in force at the next request, and only by those
who may: a class's teacher for the class and their students, an admin for anyone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from appliance.app_keys import DB
from tests.conftest import LiveServer
from tests.core.test_rate_limits_http import RATES, assert_rate_limited, jobs_of, lesson, run, submit
from tests.ui.conftest import engine_down

ONE_RUN = {**RATES, "runs_per_user_per_minute": 1}


def lift(**limits: int | None) -> dict[str, object]:
    return {"limits": limits}


async def test_an_override_lifts_a_limit_at_the_next_request(
    server_factory: Callable[..., Awaitable[LiveServer]],
) -> None:
    server = await server_factory(app_options=engine_down(), **ONE_RUN)
    room = await lesson(server, 2)
    student = room.students[0]
    assert (await run(student, "print(1)")).status == 202
    assert_rate_limited(await run(student, "print(2)"))
    put = await room.teacher.put(f"/api/users/{student.user_id}/limits", json=lift(runs_per_user_per_minute=3))
    assert put.status == 200, put
    mine = {item["name"]: item for item in put.json["limits"]}["runs_per_user_per_minute"]
    assert (mine["default"], mine["override"]["value"], mine["effective"], mine["source"]) == (1, 3, 3, "user")
    # The same server, no restart: the next two pass (three in the minute), the fourth does not.
    assert (await run(student, "print(2)")).status == 202
    assert (await run(student, "print(3)")).status == 202
    assert_rate_limited(await run(student, "print(4)"))
    # 0 is no limit at all; null gives the setting back.
    await room.teacher.put(f"/api/users/{student.user_id}/limits", json=lift(runs_per_user_per_minute=0))
    assert [(await run(student, f"print({i})")).status for i in range(5, 10)] == [202] * 5
    back = await room.teacher.put(f"/api/users/{student.user_id}/limits", json=lift(runs_per_user_per_minute=None))
    assert {i["name"]: i["override"] for i in back.json["limits"]}["runs_per_user_per_minute"] is None
    assert_rate_limited(await run(student, "print(10)"))
    # Their classmate was never lifted.
    assert (await run(room.students[1])).status == 202
    assert_rate_limited(await run(room.students[1], "print(2)"))


async def test_a_class_override_applies_to_its_students_only(
    server_factory: Callable[..., Awaitable[LiveServer]],
) -> None:
    server = await server_factory(app_options=engine_down(), **ONE_RUN)
    room, other_room = await lesson(server, 1), await lesson(server, 1)
    member, outsider = room.students[0], other_room.students[0]
    put = await room.teacher.put(f"/api/classes/{room.class_id}/limits", json=lift(runs_per_user_per_minute=2))
    assert put.status == 200, put
    assert {i["name"]: i["override"] for i in put.json["limits"]}["runs_per_user_per_minute"]["value"] == 2
    assert [(await run(member, f"print({i})")).status for i in range(3)] == [202, 202, 429]
    assert [(await run(outsider, f"print({i})")).status for i in range(2)] == [202, 429]
    # In two classes: the more generous override wins; the student's own override comes first.
    assert (await member.post("/api/classes/join", json={"code": other_room.join_code})).status == 200
    await other_room.teacher.put(f"/api/classes/{other_room.class_id}/limits", json=lift(runs_per_user_per_minute=5))
    seen = await member.get(f"/api/users/{member.user_id}/limits")
    runs = {i["name"]: i for i in seen.json["limits"]}["runs_per_user_per_minute"]
    assert (runs["effective"], runs["source"]) == (5, "class"), runs
    await room.teacher.put(f"/api/users/{member.user_id}/limits", json=lift(runs_per_user_per_minute=2))
    runs = {i["name"]: i for i in (await member.get(f"/api/users/{member.user_id}/limits")).json["limits"]}
    assert (runs["runs_per_user_per_minute"]["effective"], runs["runs_per_user_per_minute"]["source"]) == (2, "user")


async def test_overrides_cover_the_existing_quotas(server_factory: Callable[..., Awaitable[LiveServer]]) -> None:
    server = await server_factory(
        app_options=engine_down(),
        **{**RATES, "max_jobs_in_flight_per_user": 1, "submissions_per_problem_per_minute": 1},
    )
    room = await lesson(server, 1)
    student = room.students[0]
    assert (await submit(student, room.problem_id, "print(1)")).status == 202
    refused = await submit(student, room.problem_id, "print(2)")
    assert refused.status == 429 and refused.error_code == "too_many_submissions", refused
    await room.teacher.put(
        f"/api/classes/{room.class_id}/limits",
        json=lift(submissions_per_problem_per_minute=0, max_jobs_in_flight_per_user=5),
    )
    assert (await submit(student, room.problem_id, "print(2)")).status == 202  # within its 2 a minute


async def test_an_override_ends_at_its_until(server_factory: Callable[..., Awaitable[LiveServer]]) -> None:
    server = await server_factory(app_options=engine_down(), **ONE_RUN)
    room = await lesson(server, 1)
    student = room.students[0]
    body = {"limits": {"runs_per_user_per_minute": 0}, "until": "2999-01-01T10:30:00Z"}
    put = await room.teacher.put(f"/api/classes/{room.class_id}/limits", json=body)
    assert put.status == 200, put
    assert {i["name"]: i["override"] for i in put.json["limits"]}["runs_per_user_per_minute"]["until"] == (
        "2999-01-01T10:30:00Z"
    )
    assert [(await run(student, f"print({i})")).status for i in range(3)] == [202] * 3
    # The lesson ends (the stored time moved to the past, as time would).
    await server.app[DB].execute("UPDATE limit_overrides SET until = '2000-01-01T00:00:00.000000Z'")
    assert_rate_limited(await run(student, "print(9)"))
    listed = await room.teacher.get(f"/api/classes/{room.class_id}/limits")
    assert all(item["override"] is None for item in listed.json["limits"]), listed


async def test_nobody_else_may_set_or_read_them(server_factory: Callable[..., Awaitable[LiveServer]]) -> None:
    server = await server_factory(app_options=engine_down(), **ONE_RUN)
    room, other_room = await lesson(server, 1), await lesson(server, 1)
    student, stranger = room.students[0], other_room.students[0]
    admin = await server.make_user("admin")
    body = lift(runs_per_user_per_minute=0)
    # Another teacher: not their class, not their student (even after adding them by username).
    other = other_room.teacher
    added = await other.post(f"/api/classes/{other_room.class_id}/members", json={"usernames": [student.username]})
    assert added.status == 200, added
    before = server.db_rows()
    for method, path in (
        ("PUT", f"/api/classes/{room.class_id}/limits"),
        ("GET", f"/api/classes/{room.class_id}/limits"),
        ("PUT", f"/api/users/{student.user_id}/limits"),
        ("GET", f"/api/users/{student.user_id}/limits"),
        ("PUT", f"/api/users/{room.teacher.user_id}/limits"),
        ("PUT", f"/api/users/{admin.user_id}/limits"),
        ("PUT", "/api/classes/987654/limits"),
        ("PUT", "/api/users/987654/limits"),
    ):
        reply = await other.request(method, path, json=body if method == "PUT" else None)
        assert reply.status == 404 and reply.error_code == "not_found", (method, path, reply)
    # A student: refused setting anything, their own limits included (403), and reading others' (404).
    for path in (
        f"/api/classes/{room.class_id}/limits",
        f"/api/users/{student.user_id}/limits",
        f"/api/users/{stranger.user_id}/limits",
    ):
        reply = await student.put(path, json=body)
        assert reply.status == 403 and reply.error_code == "forbidden", (path, reply)
    assert (await student.get(f"/api/classes/{room.class_id}/limits")).status == 404
    assert (await student.get(f"/api/users/{stranger.user_id}/limits")).status == 404
    assert (await student.get("/api/admin/overrides")).status == 403
    assert (await room.teacher.get("/api/admin/overrides")).status == 403
    assert (await server.client().put(f"/api/users/{student.user_id}/limits", json=body)).status == 401
    assert server.db_rows() == before
    # The class override of a teacher who only added the student by username does not reach them.
    lifted = await other.put(f"/api/classes/{other_room.class_id}/limits", json=body)
    assert lifted.status == 200, lifted
    assert (await run(student)).status == 202
    assert_rate_limited(await run(student, "print(2)"))
    # An admin may set anyone's; the list shows every override.
    assert (await admin.put(f"/api/users/{student.user_id}/limits", json=body)).status == 200
    assert (await run(student, "print(3)")).status == 202
    listed = (await admin.get("/api/admin/overrides")).json["overrides"]
    assert [(o["class_id"], o["user_id"], o["name"], o["value"]) for o in listed] == [
        (other_room.class_id, None, "runs_per_user_per_minute", 0),
        (None, student.user_id, "runs_per_user_per_minute", 0),
    ]


async def test_bad_names_and_values_are_refused_and_change_nothing(
    server_factory: Callable[..., Awaitable[LiveServer]],
) -> None:
    server = await server_factory(app_options=engine_down(), **ONE_RUN)
    room = await lesson(server, 1)
    url = f"/api/classes/{room.class_id}/limits"
    assert (await room.teacher.put(url, json=lift(runs_per_user_per_minute=4))).status == 200
    before = server.db_rows()
    cases = [
        ({"limits": {"login_max_failures_per_address": 1}}, "unknown_field", "limits.login_max_failures_per_address"),
        ({"limits": {"queue_max": 0}}, "unknown_field", "limits.queue_max"),
        ({"limits": {"runs_per_user_per_minute": -1}}, "out_of_range", "limits.runs_per_user_per_minute"),
        ({"limits": {"runs_per_user_per_minute": 10_001}}, "out_of_range", "limits.runs_per_user_per_minute"),
        ({"limits": {"runs_per_user_per_minute": "lots"}}, "invalid_type", "limits.runs_per_user_per_minute"),
        ({"limits": {"runs_per_user_per_minute": 1.5}}, "invalid_type", "limits.runs_per_user_per_minute"),
        ({"limits": {"runs_per_user_per_minute": True}}, "invalid_type", "limits.runs_per_user_per_minute"),
        ({"limits": {}}, "empty", None),
        ({"limits": {"runs_per_user_per_minute": 5}, "until": "2001-01-01T00:00:00Z"}, "invalid_until", "until"),
        ({"limits": {"runs_per_user_per_minute": 5}, "until": "next lesson"}, "invalid_until", "until"),
        ({"runs_per_user_per_minute": 5}, "unknown_field", "runs_per_user_per_minute"),
    ]
    for body, code, field in cases:
        reply = await room.teacher.put(url, json=body)
        assert reply.status == 400 and reply.error_code == code, (body, reply)
        assert reply.error.get("field") == field, (body, reply)
        assert reply.error["message"], reply
    assert server.db_rows() == before
    assert jobs_of(server, room.students[0].user_id) == []
