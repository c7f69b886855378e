"""Red-team attacks on staff accounts (issue 11): a teacher reaching for an admin's rights, and a
login racing the reset that should have ended it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from appliance import accounts as accounts_module
from tests.conftest import LiveServer


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
