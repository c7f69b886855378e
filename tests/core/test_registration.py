"""Self-registration: age gate, legal acceptance, username and password rules (DESIGN.md §6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import DEFAULT_PASSWORD, ApiClient, LiveServer, unique_username, years_ago


async def _register(server: LiveServer, client: ApiClient, **changes: object):
    body: dict[str, object] = {
        "username": unique_username("reg"),
        "password": DEFAULT_PASSWORD,
        "birthdate": years_ago(30),
        **await server.legal_versions(),
    }
    body.update(changes)
    body = {k: v for k, v in body.items() if v is not _DROP}
    return await client.post("/api/auth/register", json=body)


_DROP = object()


async def test_adult_registers_and_can_log_in(server: LiveServer, anon: ApiClient) -> None:
    reply = await _register(server, anon, username="grown-up.1")
    assert reply.status == 201, reply
    user = reply.json["user"]
    assert user["username"] == "grown-up.1"
    assert user["role"] == "student"  # self-registration never makes staff
    assert user["is_minor"] is False
    assert "password" not in reply.text and "password_hash" not in reply.text
    login = await anon.login("grown-up.1", DEFAULT_PASSWORD)
    assert login.status == 200, login
    assert login.json["user"]["pending_legal"] == []  # accepted at registration
    assert (await anon.get("/api/classes")).status == 200


async def test_minor_is_flagged(server: LiveServer, anon: ApiClient) -> None:
    reply = await _register(server, anon, birthdate=years_ago(15))
    assert reply.status == 201, reply
    assert reply.json["user"]["is_minor"] is True
    edge = await _register(server, anon, birthdate=years_ago(server.settings.adult_age))
    assert edge.status == 201 and edge.json["user"]["is_minor"] is False


async def test_under_age_gate_refused_and_nothing_written(server: LiveServer, anon: ApiClient) -> None:
    before = server.db_rows()
    gate = server.settings.min_self_register_age
    reply = await _register(server, anon, birthdate=years_ago(gate - 1))
    assert reply.status == 403, reply
    assert reply.error_code == "too_young_to_register"
    assert reply.error["field"] == "birthdate"
    # One day short of the birthday that makes them old enough is still too young.
    today = datetime.now(UTC).date()
    tomorrow = today + timedelta(days=1)
    if (tomorrow.month, tomorrow.day) != (2, 29):
        almost = tomorrow.replace(year=tomorrow.year - gate).isoformat()
        reply = await _register(server, anon, birthdate=almost)
        assert reply.status == 403 and reply.error_code == "too_young_to_register", reply
    assert server.db_rows() == before
    # On the birthday itself they may register.
    assert (await _register(server, anon, birthdate=years_ago(gate))).status == 201


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"accept_terms": ""}, 400, "terms_not_accepted"),
        ({"accept_privacy": ""}, 400, "privacy_not_accepted"),
        ({"accept_terms": "1999-01-01"}, 400, "stale_legal_version"),
        ({"accept_privacy": "not-a-version"}, 400, "stale_legal_version"),
        ({"accept_terms": _DROP}, 400, "missing_field"),
        ({"accept_privacy": True}, 400, "invalid_type"),
        ({"username": "ab"}, 400, "invalid_username"),
        ({"username": "-starts-with-dash"}, 400, "invalid_username"),
        ({"username": "has space"}, 400, "invalid_username"),
        ({"username": "robert'); DROP TABLE users;--"}, 400, "invalid_username"),
        ({"username": "x" * 33}, 400, "invalid_username"),
        ({"password": "short"}, 400, "weak_password"),
        ({"password": "p" * 257}, 400, "too_long"),
        ({"birthdate": "30/01/2010"}, 400, "invalid_birthdate"),
        ({"birthdate": "2999-01-01"}, 400, "invalid_birthdate"),
        ({"birthdate": "1800-01-01"}, 400, "invalid_birthdate"),
        ({"role": "admin"}, 400, "unknown_field"),
    ],
)
async def test_bad_registrations_refused(
    server: LiveServer, anon: ApiClient, changes: dict[str, object], status: int, code: str
) -> None:
    before = server.db_rows()
    reply = await _register(server, anon, **changes)
    assert reply.status == status, reply
    assert reply.error_code == code, reply
    assert server.db_rows() == before


async def test_stale_acceptance_after_new_version(server: LiveServer, make_user) -> None:
    old = await server.legal_versions()
    admin = await make_user("admin")
    published = await admin.put("/api/legal/privacy", json={"version": "2099-01-01", "markdown": "# New privacy"})
    assert published.status == 201, published
    anon = server.client()
    reply = await _register(server, anon, **old)  # the page was loaded before the change
    assert reply.status == 400 and reply.error_code == "stale_legal_version", reply
    assert reply.error["field"] == "accept_privacy"
    assert (await _register(server, anon, **await server.legal_versions())).status == 201


async def test_duplicate_username_conflicts(server: LiveServer, anon: ApiClient) -> None:
    assert (await _register(server, anon, username="Taken_Name")).status == 201
    before = server.db_rows()
    for spelling in ("Taken_Name", "taken_name", "TAKEN_NAME"):
        reply = await _register(server, anon, username=spelling)
        assert reply.status == 409, reply
        assert reply.error_code == "username_taken"
        assert reply.error["field"] == "username"
    assert server.db_rows() == before


async def test_registered_accounts_record_acceptance(server: LiveServer, anon: ApiClient) -> None:
    versions = await server.legal_versions()
    reply = await _register(server, anon, username="acceptor")
    assert reply.status == 201
    rows = server.db_rows()["legal_acceptances"]
    user_id = reply.json["user"]["id"]
    recorded = {(row[1], row[2]) for row in rows if row[0] == user_id}
    assert recorded == {("terms", versions["accept_terms"]), ("privacy", versions["accept_privacy"])}


async def test_staff_create_accounts_that_accept_at_first_login(server: LiveServer, make_user) -> None:
    teacher = await make_user("teacher")
    young = years_ago(server.settings.min_self_register_age - 3)
    reply = await teacher.post(
        "/api/users",
        json={"username": "little-one", "password": DEFAULT_PASSWORD, "role": "student", "birthdate": young},
    )
    assert reply.status == 201, reply
    assert reply.json["user"]["is_minor"] is True and reply.json["user"]["role"] == "student"
    child = server.client()
    login = await child.login("little-one", DEFAULT_PASSWORD)
    assert login.status == 200, login
    assert {p["kind"] for p in login.json["user"]["pending_legal"]} == {"terms", "privacy"}
    blocked = await child.get("/api/classes")
    assert blocked.status == 403 and blocked.error_code == "legal_acceptance_required", blocked
    accepted = await child.post("/api/me/accept-legal", json=await server.legal_versions())
    assert accepted.status == 200 and accepted.json["pending_legal"] == [], accepted
    assert (await child.get("/api/classes")).status == 200


@pytest.mark.parametrize(
    ("creator", "role", "status", "code"),
    [
        ("teacher", "teacher", 403, "forbidden_role"),
        ("teacher", "admin", 403, "forbidden_role"),
        ("student", "student", 403, "forbidden"),
    ],
)
async def test_who_may_create_whom(
    server: LiveServer, make_user, creator: str, role: str, status: int, code: str
) -> None:
    client = await make_user(creator)
    before = server.db_rows(exclude=("sessions",))
    body = {"username": unique_username("made"), "password": DEFAULT_PASSWORD, "role": role}
    reply = await client.post("/api/users", json=body)
    assert reply.status == status and reply.error_code == code, reply
    assert server.db_rows(exclude=("sessions",)) == before


async def test_admin_creates_teachers(make_user) -> None:
    admin = await make_user("admin")
    body = {"username": unique_username("made"), "password": DEFAULT_PASSWORD, "role": "teacher", "birthdate": None}
    reply = await admin.post("/api/users", json=body)
    assert reply.status == 201 and reply.json["user"]["role"] == "teacher", reply
