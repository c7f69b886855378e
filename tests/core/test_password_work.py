"""Password hashing stays off the event loop; self-registration is rate-limited per address
(issue 9, finding 13: logins slowed everyone down, and 165 accounts were made in 4 s)."""

from __future__ import annotations

import asyncio

from appliance import passwords
from appliance.app_keys import ACCOUNTS
from tests import dbaccess
from tests.conftest import DEFAULT_PASSWORD, ApiClient, LiveServer, unique_username, years_ago


async def _register(server: LiveServer, client: ApiClient, username: str):
    body = {"username": username, "password": DEFAULT_PASSWORD, "birthdate": years_ago(16)}
    return await client.post("/api/auth/register", json={**body, **await server.legal_versions()})


def _usernames(server: LiveServer) -> set[str]:
    return {row[1] for row in server.db_rows()["users"]}


async def test_registration_is_rate_limited_per_address(server_factory) -> None:
    server = await server_factory(register_max_per_address=3)
    bot = server.client(local_address="127.0.0.6")
    names = [unique_username("bot") for _ in range(12)]
    # All at once, as a script would: the limit holds however the requests interleave.
    replies = await asyncio.gather(*(_register(server, bot, name) for name in names))
    created = [name for name, reply in zip(names, replies, strict=True) if reply.status == 201]
    assert len(created) == 3, replies
    for name, reply in zip(names, replies, strict=True):
        if reply.status == 201:
            continue
        assert reply.status == 429, reply
        assert reply.error_code == "too_many_registrations"
        assert 1 <= int(reply.headers["Retry-After"]) <= server.settings.register_window_s
        assert name not in _usernames(server)  # refused means no account at all
    assert _usernames(server) >= set(created)
    # Later attempts from the same address are refused too; another address is not affected.
    late = await _register(server, bot, "late-bot")
    assert late.status == 429 and late.error_code == "too_many_registrations", late
    assert "late-bot" not in _usernames(server)
    reply = await _register(server, server.client(local_address="127.0.0.7"), "real-student")
    assert reply.status == 201, reply


async def test_registration_throttle_forgets_old_addresses(server_factory) -> None:
    server = await server_factory(register_window_s=1)
    throttle = server.app[ACCOUNTS].registration_throttle
    assert (await _register(server, server.client(local_address="127.0.0.8"), unique_username())).status == 201
    assert throttle.size() > 0
    await asyncio.sleep(1.6)
    assert (await _register(server, server.client(local_address="127.0.0.9"), unique_username())).status == 201
    # Only the new address is remembered (in our books and in the `limits` storage).
    assert throttle.counter.keys() == {"127.0.0.9"}
    assert throttle.size() == 2


async def test_password_hashing_leaves_the_server_responsive(server: LiveServer, make_user, monkeypatch) -> None:
    """While one login is verifying its password, other requests are answered.

    The test server shares this test's event loop: if scrypt ran on it, nothing here — not the
    sleep, not the probes — could run until the hash was done, and the login would finish first.
    """
    student = await make_user("student")
    # 8 × the production cost (128 MiB, most of a second), so the login stays busy for a while.
    monkeypatch.setattr(passwords, "N", 2**17)
    slow = await asyncio.to_thread(passwords.hash_password, DEFAULT_PASSWORD)
    dbaccess.execute(server.settings, "UPDATE users SET password_hash = ? WHERE id = ?", (slow, student.user_id))
    login = asyncio.create_task(server.client().login(student.username, DEFAULT_PASSWORD))
    await asyncio.sleep(0.05)
    probe = server.client()
    answered_meanwhile = 0
    while not login.done():
        reply = await probe.get("/healthz")
        assert reply.status in (200, 503), reply
        answered_meanwhile += not login.done()
    assert answered_meanwhile >= 5, f"only {answered_meanwhile} requests answered while the login was hashing"
    assert (await login).status == 200
