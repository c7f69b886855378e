"""Red-team attacks on staff accounts (issue 11): a teacher reaching for an admin's rights, and a
login racing the reset that should have ended it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from appliance import accounts as accounts_module
from appliance.app_keys import DB, EVENTS
from tests.conftest import LiveServer, class_with, problem_for
from tests.ui.conftest import engine_down


class HeldLogin:
    """Once `hold()` is called, the next login's password check sets `verified` when done, then
    waits for `release` before the login goes on: as a slow hash leaves a real login mid-way."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.verified, self.release = asyncio.Event(), asyncio.Event()
        self._armed = False
        real = accounts_module.verify_password_async

        async def held(password: str, digest: str) -> Any:
            ok = await real(password, digest)
            if self._armed:
                self._armed = False
                self.verified.set()
                await self.release.wait()
            return ok

        monkeypatch.setattr(accounts_module, "verify_password_async", held)

    def hold(self) -> None:
        self._armed = True


@pytest.mark.parametrize("route", ["/api/admin/accounts/{id}/password", "/api/users/{id}/reset-password"])
async def test_a_login_checked_against_the_old_password_gets_no_session_after_a_reset(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    """Whoever knows a teacher's old password logs in again and again; the admin resets it. A login
    whose password check passed just before the reset must not end with a session after it."""
    admin = await server.make_user("admin")
    teacher = await server.make_user("teacher")
    held = HeldLogin(monkeypatch)
    held.hold()
    intruder = server.client()
    login = asyncio.create_task(intruder.login(teacher.username, teacher.password))
    await asyncio.wait_for(held.verified.wait(), 10)
    reset = await admin.post(route.format(id=teacher.user_id), json={})
    assert reset.status == 200, reset
    held.release.set()
    reply = await login
    assert reply.status == 401 and reply.error_code == "invalid_credentials", reply
    assert (await intruder.get("/api/me")).status == 401
    # The new password works.
    assert (await server.client().login(teacher.username, reset.json["password"])).status == 200


async def test_a_teacher_cannot_reset_an_admins_password_by_the_older_route(server: LiveServer) -> None:
    admin = await server.make_user("admin")
    teacher = await server.make_user("teacher")
    reply = await teacher.post(f"/api/users/{admin.user_id}/reset-password", json={"password": "taken over 12345"})
    assert reply.status == 404 and reply.error_code == "not_found", reply
    assert (await server.client().login(admin.username, admin.password)).status == 200
    assert (await admin.get("/api/me")).status == 200


async def test_a_disabled_teachers_open_status_stream_says_no_more(
    server_factory: Callable[..., Awaitable[LiveServer]],
) -> None:
    """A teacher follows a student's submission live; an admin disables the teacher. The stream
    already open must not go on telling them about it: it ends at its next change."""
    server = await server_factory(app_options=engine_down())
    admin = await server.make_user("admin")
    teacher = await server.make_user("teacher")
    student = await server.make_user("student")
    klass = await class_with(teacher, [student])
    problem_id = await problem_for(
        teacher, klass["id"], "Echo", {"stdin": "1\n", "expected_stdout": "1\n", "visible": True}
    )
    sent = await student.post(
        f"/api/problems/{problem_id}/submissions", json={"language": "python", "code": "print(1)"}
    )
    job_id = sent.json["id"]
    cookie = {"labrunner_session": teacher.session_cookie or ""}
    async with (
        aiohttp.ClientSession(cookies=cookie) as browser,
        browser.get(f"{server.url}/api/submissions/{job_id}/events") as stream,
    ):
        assert stream.status == 200
        assert (await asyncio.wait_for(stream.content.readuntil(b"\n\n"), 30)).startswith(b"event: status")
        disabled = await admin.patch(f"/api/admin/accounts/{teacher.user_id}", json={"disabled": True})
        assert disabled.status == 200, disabled
        # The submission finishes after that: news the stream would carry (whatever the waiting
        # job's status did before the disabling, this comes after it).
        await server.app[DB].execute("UPDATE jobs SET status = 'done' WHERE id = ?", (job_id,))
        server.app[EVENTS].changed(job_id)
        rest = await asyncio.wait_for(stream.content.read(), 30)
    assert b'"done"' not in rest, rest
