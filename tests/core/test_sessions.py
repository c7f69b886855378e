"""Logins, session cookies, throttling, logout, cross-site request refusal and Bearer tokens."""

from __future__ import annotations

from http.cookies import SimpleCookie

import pytest

from tests import dbaccess
from tests.conftest import DEFAULT_PASSWORD, SESSION_COOKIE, ApiClient, LiveServer


def _set_cookie(reply) -> str:
    headers = [value for value in reply.headers.getall("Set-Cookie", []) if value.startswith(SESSION_COOKIE + "=")]
    assert len(headers) == 1, reply.headers
    return headers[0]


async def test_login_sets_a_safe_session_cookie(server: LiveServer, make_user) -> None:
    student = await make_user("student")
    client = server.client()
    reply = await client.login(student.username, DEFAULT_PASSWORD)
    assert reply.status == 200, reply
    assert reply.json["user"]["username"] == student.username
    raw = _set_cookie(reply)
    morsel = SimpleCookie(raw)[SESSION_COOKIE]
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() == "lax"
    assert not morsel["secure"]  # plain http on a classroom LAN: a Secure cookie would never come back
    assert morsel["path"] == "/"
    assert int(morsel["max-age"]) == server.settings.session_days * 86400
    assert len(morsel.value) >= 32
    # Sessions are stored hashed: the cookie value never appears in the database.
    assert morsel.value not in repr(server.db_rows())
    assert (await client.get("/api/me")).json["username"] == student.username


async def test_wrong_password_and_unknown_user_look_the_same(server: LiveServer, make_user) -> None:
    student = await make_user("student")
    client = server.client()
    wrong = await client.login(student.username, "not-the-password")
    unknown = await client.login("nobody-here", "not-the-password")
    for reply in (wrong, unknown):
        assert reply.status == 401, reply
        assert reply.error_code == "invalid_credentials"
        assert "Set-Cookie" not in reply.headers
    assert wrong.error == unknown.error
    assert (await client.get("/api/me")).status == 401


async def test_anonymous_is_401_on_user_routes(anon: ApiClient) -> None:
    for path in ("/api/me", "/api/classes", "/api/problems"):
        reply = await anon.get(path)
        assert reply.status == 401 and reply.error_code == "login_required", reply


async def test_logout_revokes_the_session_server_side(server: LiveServer, make_user) -> None:
    student = await make_user("student")
    stolen = student.session_cookie
    assert stolen
    sessions_before = len(server.db_rows()["sessions"])
    reply = await student.post("/api/auth/logout")
    assert reply.status == 200, reply
    assert len(server.db_rows()["sessions"]) == sessions_before - 1
    assert (await student.get("/api/me")).status == 401  # the browser dropped the cookie ...
    replay = server.client()  # ... and a copy of it no longer works either
    reply = await replay.get("/api/me", headers={"Cookie": f"{SESSION_COOKIE}={stolen}"})
    assert reply.status == 401 and reply.error_code == "login_required", reply


async def test_logout_with_json_body(server: LiveServer, make_user) -> None:
    student = await make_user("student")
    assert (await student.post("/api/auth/logout", json={})).status == 200
    assert (await student.get("/api/me")).status == 401


async def test_throttle_per_account_and_address(server_factory) -> None:
    server = await server_factory(login_max_failures_per_account_address=3, login_max_failures_per_address=100)
    victim = await server.make_user("student")
    attacker = server.client()
    for _ in range(3):
        assert (await attacker.login(victim.username, "guess-guess")).status == 401
    # Even the right password waits from this address (other addresses: tests/core/test_login_throttle.py).
    blocked = await attacker.login(victim.username, DEFAULT_PASSWORD)
    assert blocked.status == 429, blocked
    assert blocked.error_code == "too_many_attempts"
    retry_after = int(blocked.headers["Retry-After"])
    assert 1 <= retry_after <= server.settings.login_failure_window_s
    # Case does not dodge the per-account count.
    assert (await attacker.login(victim.username.upper(), DEFAULT_PASSWORD)).status == 429
    # Other accounts are unaffected; the victim's existing session keeps working.
    other = await server.make_user("student")
    assert (await server.client().login(other.username, DEFAULT_PASSWORD)).status == 200
    assert (await victim.get("/api/me")).status == 200


async def test_throttle_per_address(server_factory) -> None:
    server = await server_factory(login_max_failures_per_account=100, login_max_failures_per_address=4)
    student = await server.make_user("student")
    attacker = server.client()
    for index in range(4):  # spraying different accounts from one address
        headers = {"X-Forwarded-For": f"10.0.0.{index}"}  # not trusted: the peer address counts
        reply = await attacker.post(
            "/api/auth/login", json={"username": f"spray{index}", "password": "x" * 8}, headers=headers
        )
        assert reply.status == 401, reply
    blocked = await attacker.login(student.username, DEFAULT_PASSWORD)
    assert blocked.status == 429, blocked
    assert blocked.error_code == "too_many_attempts"
    assert int(blocked.headers["Retry-After"]) >= 1


async def test_successful_login_resets_account_failures(server_factory) -> None:
    server = await server_factory(login_max_failures_per_account_address=3, login_max_failures_per_address=100)
    student = await server.make_user("student")
    client = server.client()
    for _ in range(2):
        assert (await client.login(student.username, "wrong-wrong")).status == 401
    assert (await client.login(student.username, DEFAULT_PASSWORD)).status == 200
    for _ in range(2):
        assert (await client.login(student.username, "wrong-wrong")).status == 401
    assert (await client.login(student.username, DEFAULT_PASSWORD)).status == 200


# --- cross-site request forgery ------------------------------------------------------------


async def _foreign(server: LiveServer, student: ApiClient, **kwargs) -> ApiClient:
    """A client carrying the student's session cookie, with the given Origin behaviour."""
    client = server.client(**kwargs)
    client.use_session(student.session_cookie)
    return client


@pytest.mark.parametrize(
    ("origin", "headers"),
    [
        ("http://evil.example", {}),
        ("null", {}),
        (None, {}),  # no Origin and no Sec-Fetch-Site: a cookie alone proves nothing
        (None, {"Sec-Fetch-Site": "cross-site"}),
        (None, {"Sec-Fetch-Site": "same-site"}),
        ("SAME", {"Sec-Fetch-Site": "cross-site"}),  # Sec-Fetch-Site wins over a matching Origin
    ],
)
async def test_cross_site_unsafe_requests_with_cookie_refused(
    server: LiveServer, make_user, origin: str | None, headers: dict[str, str]
) -> None:
    teacher = await make_user("teacher")
    client = await _foreign(server, teacher, origin=server.url if origin == "SAME" else origin)
    before = server.db_rows()
    reply = await client.post("/api/classes", json={"name": "forged"}, headers=headers)
    assert reply.status == 403, reply
    assert reply.error_code == "csrf_failed"
    logout = await client.post("/api/auth/logout", headers=headers)
    assert logout.status == 403 and logout.error_code == "csrf_failed", logout
    assert server.db_rows() == before
    # Reads are not state-changing: the same client may GET.
    assert (await client.get("/api/me")).status == 200


async def test_same_origin_requests_pass(server: LiveServer, make_user) -> None:
    teacher = await make_user("teacher")
    fetch = await _foreign(server, teacher, origin=None)
    reply = await fetch.post("/api/classes", json={"name": "fetch"}, headers={"Sec-Fetch-Site": "same-origin"})
    assert reply.status == 201, reply
    assert (await teacher.post("/api/classes", json={"name": "origin"})).status == 201


async def test_login_csrf_refused(server: LiveServer, make_user) -> None:
    student = await make_user("student")
    evil = server.client(origin="http://evil.example")
    reply = await evil.login(student.username, DEFAULT_PASSWORD)
    assert reply.status == 403 and reply.error_code == "csrf_failed", reply
    assert "Set-Cookie" not in reply.headers


# --- Bearer tokens ---------------------------------------------------------------------------


async def test_bearer_token_works_without_origin(server: LiveServer, make_user) -> None:
    teacher = await make_user("teacher")
    token = await teacher.create_token("grading script")
    assert token not in repr(server.db_rows())  # stored hashed
    script = teacher.with_token(token)
    assert script.origin is None
    me = await script.get("/api/me")
    assert me.status == 200 and me.json["username"] == teacher.username
    created = await script.post("/api/classes", json={"name": "from a script"})
    assert created.status == 201, created
    # A token is not a cookie: no CSRF check applies, even with a foreign Origin.
    foreign = teacher.with_token(token, origin="http://elsewhere.example")
    assert (await foreign.post("/api/classes", json={"name": "cross"})).status == 201


@pytest.mark.parametrize(
    "header",
    ["Bearer lr_not-a-real-token", "Bearer ", "Basic dXNlcjpwYXNz", "lr_token-without-scheme"],
)
async def test_bad_authorization_is_401(server: LiveServer, make_user, header: str) -> None:
    teacher = await make_user("teacher")
    client = server.client(origin=None, cookies=False)
    for reply in (
        await client.get("/api/me", headers={"Authorization": header}),
        await client.post("/api/classes", json={"name": "x"}, headers={"Authorization": header}),
    ):
        assert reply.status == 401, reply
        assert reply.error_code == "invalid_token"
    # A bad token is refused even next to a valid session cookie: no silent fallback.
    reply = await teacher.get("/api/me", headers={"Authorization": header})
    assert reply.status == 401 and reply.error_code == "invalid_token", reply


async def test_token_creation_validates_name(server: LiveServer, make_user) -> None:
    student = await make_user("student")
    for name, code in (("", "empty"), ("   ", "empty"), ("n" * 101, "too_long"), (5, "invalid_type")):
        reply = await student.post("/api/tokens", json={"name": name})
        assert reply.status == 400 and reply.error_code == code, reply


async def test_expired_session_is_refused(server: LiveServer, make_user) -> None:
    student = await make_user("student")
    dbaccess.execute(
        server.settings,
        "UPDATE sessions SET expires_at = '2000-01-01T00:00:00.000000Z' WHERE user_id = ?",
        (student.user_id,),
    )
    reply = await student.get("/api/me")
    assert reply.status == 401 and reply.error_code == "login_required", reply
