"""Red-team attempts on per-student rate limits and quota overrides (issue 11) that were refused,
kept so they stay refused: more identities for one student, dedup games, values JSON should not
carry."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import ClientSession

from tests.conftest import LiveServer
from tests.core.test_rate_limits_http import RATES, assert_rate_limited, jobs_of, lesson, run, submit
from tests.ui.conftest import engine_down


async def test_a_cookie_and_two_tokens_of_one_student_share_one_budget(
    server_factory: Callable[..., Awaitable[LiveServer]],
) -> None:
    server = await server_factory(app_options=engine_down(), **{**RATES, "runs_per_user_per_minute": 3})
    room = await lesson(server, 1)
    student = room.students[0]
    scripts = [student.with_token(await student.create_token(f"script {i}")) for i in range(2)]
    identities = [student, *scripts]
    replies = await asyncio.gather(*(run(identities[i % 3], f"print({i})") for i in range(9)))
    assert sorted(r.status for r in replies) == [202] * 3 + [429] * 6, replies
    assert len(jobs_of(server, student.user_id)) == 3
    # Submissions: two codes taken in turns are two submissions; only a code still waiting comes
    # back free, whichever identity sends it.
    first = await submit(student, room.problem_id, "print('a')")
    second = await submit(scripts[0], room.problem_id, "print('b')")
    assert (first.status, second.status) == (202, 202), (first, second)
    again = [await submit(identities[i % 3], room.problem_id, f"print('{'ab'[i % 2]}')") for i in range(4)]
    assert all(r.status == 202 and r.json["deduplicated"] for r in again), again
    assert_rate_limited(await submit(scripts[1], room.problem_id, "print('c')"))


async def test_values_json_should_not_carry_are_refused(server_factory: Callable[..., Awaitable[LiveServer]]) -> None:
    server = await server_factory(app_options=engine_down(), **RATES)
    room = await lesson(server, 1)
    url = f"{server.url}/api/classes/{room.class_id}/limits"
    cookie = {"labrunner_session": room.teacher.session_cookie or ""}
    headers = {"Content-Type": "application/json", "Origin": server.url}
    before = server.db_rows()
    cases = [
        ('{"limits": {"runs_per_user_per_minute": NaN}}', "invalid_json"),
        ('{"limits": {"runs_per_user_per_minute": Infinity}}', "invalid_json"),
        ('{"limits": {"runs_per_user_per_minute": -Infinity}}', "invalid_json"),
        ('{"limits": {"runs_per_user_per_minute": 1e400}}', "invalid_type"),
        ('{"limits": {"runs_per_user_per_minute": 1}, "until": "9999-12-31T23:59:59-05:00"}', "invalid_until"),
        ('{"limits": {"runs_per_user_per_minute": 1}, "until": "0001-01-01T00:00:00+05:00"}', "invalid_until"),
    ]
    async with ClientSession(cookies=cookie) as session:
        for raw, code in cases:
            async with session.put(url, data=raw, headers=headers) as reply:
                answer = await reply.json()
                assert reply.status == 400 and answer["error"]["code"] == code, (raw, reply.status, answer)
    assert server.db_rows() == before
