"""Per-student rate limits on runs and submissions (issue 11), over HTTP on a real server and file.

The runner's engine is "down" (tests/ui/conftest.py `engine_down`): every accepted job stays in the
queue, so the jobs table says exactly what each request queued. Every client here connects from
127.0.0.1, so the server sees one address for the whole class, as behind a school's router.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from appliance.app_keys import LIVE_RUNS
from tests import dbaccess
from tests.conftest import ApiClient, LiveServer, Reply, class_with, problem_for
from tests.ui.conftest import engine_down

CLASS_SIZE = 30
# The per-problem budget and the in-flight cap are switched off, so the per-minute rate is what refuses.
RATES = {
    "runs_per_user_per_minute": 2,
    "submissions_per_user_per_minute": 2,
    "submissions_per_problem_per_minute": 0,
    "submissions_per_problem_per_hour": 0,
    "max_jobs_in_flight_per_user": 0,
    "register_max_per_address": 100,  # the whole class registers from this one address first
}


@dataclass
class Lesson:
    server: LiveServer
    teacher: ApiClient
    students: list[ApiClient]
    class_id: int
    join_code: str
    problem_id: int


async def lesson(server: LiveServer, size: int) -> Lesson:
    teacher = await server.make_user("teacher")
    students = [await server.make_user("student") for _ in range(size)]
    klass = await class_with(teacher, students)
    problem_id = await problem_for(
        teacher, klass["id"], "Echo", {"stdin": "1\n", "expected_stdout": "1\n", "visible": True}
    )
    return Lesson(server, teacher, students, klass["id"], klass["join_code"], problem_id)


def jobs_of(server: LiveServer, user_id: int) -> list[tuple[Any, ...]]:
    # What was queued, not its state (a worker may have tried a job meanwhile).
    return dbaccess.query(
        server.settings, "SELECT id, kind, problem_id, code FROM jobs WHERE user_id = ? ORDER BY id", (user_id,)
    )


def run(client: ApiClient, code: str = "print(1)") -> Awaitable[Reply]:
    return client.post("/api/runs", json={"language": "python", "code": code, "stdin": ""})


def submit(client: ApiClient, problem_id: int, code: str) -> Awaitable[Reply]:
    return client.post(f"/api/problems/{problem_id}/submissions", json={"language": "python", "code": code})


def assert_rate_limited(reply: Reply, *, window_s: int = 60) -> int:
    assert reply.status == 429 and reply.error_code == "rate_limited", reply
    retry_after = int(reply.headers["Retry-After"])
    assert 1 <= retry_after <= window_s, retry_after
    assert f"try again in {retry_after} s" in reply.error["message"], reply
    return retry_after


async def test_a_class_behind_one_address_is_never_blocked_but_one_student_over_their_limit_is(
    server_factory: Callable[..., Awaitable[LiveServer]],
) -> None:
    server = await server_factory(app_options=engine_down(), **RATES)
    room = await lesson(server, CLASS_SIZE)
    # The whole class, one address, everyone at once: a submission and a run each.
    replies = await asyncio.gather(
        *(submit(s, room.problem_id, f"print({i})") for i, s in enumerate(room.students)),
        *(run(s, f"print('run {i}')") for i, s in enumerate(room.students)),
    )
    assert [r.status for r in replies] == [202] * (2 * CLASS_SIZE), [r for r in replies if r.status != 202]

    # One student goes on: their second submission passes, the third is refused and queues nothing.
    eager, other = room.students[0], room.students[1]
    assert (await submit(eager, room.problem_id, "print('second')")).status == 202
    before = jobs_of(server, eager.user_id)
    refused = await submit(eager, room.problem_id, "print('third')")
    assert_rate_limited(refused)
    assert jobs_of(server, eager.user_id) == before
    # The same code as before returns the earlier job, over the limit or not: it costs nothing.
    again = await submit(eager, room.problem_id, "print('second')")
    assert again.status == 202 and again.json["deduplicated"], again
    assert jobs_of(server, eager.user_id) == before
    # Runs are counted apart from submissions, and their classmates, same address, go on.
    assert (await run(eager, "print('again')")).status == 202
    assert_rate_limited(await run(eager, "print('and again')"))
    assert (await submit(other, room.problem_id, "print('mine')")).status == 202


async def test_concurrent_requests_cannot_all_slip_under_the_limit(
    server_factory: Callable[..., Awaitable[LiveServer]],
) -> None:
    server = await server_factory(app_options=engine_down(), **{**RATES, "runs_per_user_per_minute": 3})
    student = await server.make_user("student")
    replies = await asyncio.gather(*(run(student, f"print({i})") for i in range(12)))
    assert sorted(r.status for r in replies) == [202] * 3 + [429] * 9, replies
    for reply in replies:
        if reply.status == 429:
            assert_rate_limited(reply)
    assert len(jobs_of(server, student.user_id)) == 3


async def test_a_request_refused_for_another_reason_costs_nothing(
    server_factory: Callable[..., Awaitable[LiveServer]],
) -> None:
    server = await server_factory(app_options=engine_down(), **{**RATES, "max_jobs_in_flight_per_user": 1})
    student = await server.make_user("student")
    assert (await run(student, "print(1)")).status == 202
    # The in-flight cap refuses these (429 too_many_jobs): none of them uses up the minute's runs.
    for i in range(3):
        reply = await run(student, f"print({i + 2})")
        assert reply.status == 429 and reply.error_code == "too_many_jobs", reply
    teacher = await server.make_user("teacher")
    lifted = await teacher.put(
        f"/api/users/{student.user_id}/limits", json={"limits": {"max_jobs_in_flight_per_user": 0}}
    )
    # The teacher neither made this account nor has it in a class: not theirs to change.
    assert lifted.status == 404, lifted
    admin = await server.make_user("admin")
    lifted = await admin.put(
        f"/api/users/{student.user_id}/limits", json={"limits": {"max_jobs_in_flight_per_user": 0}}
    )
    assert lifted.status == 200, lifted
    assert (await run(student, "print(5)")).status == 202  # the second run of the minute
    assert_rate_limited(await run(student, "print(6)"))


async def test_live_runs_count_as_runs(server_factory: Callable[..., Awaitable[LiveServer]]) -> None:
    server = await server_factory(app_options=engine_down(), **{**RATES, "runs_per_user_per_minute": 1})
    live_first, queued_first = await server.make_user("student"), await server.make_user("student")
    live = await live_first.post("/api/live-runs", json={"language": "python", "code": "input()"})
    assert live.status == 201, live
    assert_rate_limited(await run(live_first))
    assert (await run(queued_first)).status == 202
    refused = await queued_first.post("/api/live-runs", json={"language": "python", "code": "print(2)"})
    assert_rate_limited(refused)
    assert server.app[LIVE_RUNS].count() == 1  # the refused one was not created
    assert jobs_of(server, live_first.user_id) == [] and len(jobs_of(server, queued_first.user_id)) == 1


async def test_teachers_and_admins_are_exempt(server_factory: Callable[..., Awaitable[LiveServer]]) -> None:
    server = await server_factory(app_options=engine_down(), **{**RATES, "runs_per_user_per_minute": 1})
    room = await lesson(server, 1)
    admin = await server.make_user("admin")
    for staff in (room.teacher, admin):
        replies = [await run(staff, f"print({i})") for i in range(5)]
        assert [r.status for r in replies] == [202] * 5, replies
        submitted = [await submit(staff, room.problem_id, f"print({i})") for i in range(5)]
        assert [r.status for r in submitted] == [202] * 5, submitted
    assert (await run(room.students[0])).status == 202
    assert_rate_limited(await run(room.students[0], "print(2)"))


async def test_wrong_join_codes_are_limited_per_account_not_per_address(
    server_factory: Callable[..., Awaitable[LiveServer]],
) -> None:
    server = await server_factory(join_max_failures_per_user=3)
    room = await lesson(server, 0)
    guesser, classmate = await server.make_user("student"), await server.make_user("student")
    for guess in ("AAAAAAAA", "BBBBBBBB", "CCCCCCCC"):
        reply = await guesser.post("/api/classes/join", json={"code": guess})
        assert reply.status == 404 and reply.error_code == "invalid_join_code", reply
    blocked = await guesser.post("/api/classes/join", json={"code": room.join_code})
    assert blocked.status == 429 and blocked.error_code == "too_many_join_attempts", blocked
    assert 1 <= int(blocked.headers["Retry-After"]) <= server.settings.join_failure_window_s
    # Concurrent guesses are counted while in flight: none gets a lookup past the limit.
    others = await asyncio.gather(
        *(classmate.post("/api/classes/join", json={"code": f"ZZZZZZ{i:02d}"}) for i in range(8))
    )
    assert sorted(r.status for r in others) == [404] * 3 + [429] * 5, others
    # A classmate on the same address who types the right code joins.
    newcomer = await server.make_user("student")
    assert (await newcomer.post("/api/classes/join", json={"code": room.join_code})).status == 200


async def test_a_class_logging_in_at_once_from_one_address_is_not_refused(
    server_factory: Callable[..., Awaitable[LiveServer]],
) -> None:
    """Logins from one address are limited by their failures; a class's logins still being checked
    are no failures, so the class waits for them instead of being told to go away."""
    server = await server_factory(register_max_per_address=100)
    accounts = [await server.make_user("student") for _ in range(CLASS_SIZE)]
    tabs = [server.client() for _ in accounts]
    replies = await asyncio.gather(*(tab.login(a.username, a.password) for tab, a in zip(tabs, accounts, strict=True)))
    assert [r.status for r in replies] == [200] * CLASS_SIZE, [r for r in replies if r.status != 200]
    # Failures still count: past the address's limit, the next attempt is refused.
    limit = server.settings.login_max_failures_per_address
    for i in range(limit):
        assert (await tabs[0].login(f"nobody{i}", "wrong-password")).status == 401
    refused = await tabs[0].login(accounts[0].username, accounts[0].password)
    assert refused.status == 429 and refused.error_code == "too_many_attempts", refused
