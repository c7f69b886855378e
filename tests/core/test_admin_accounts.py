"""Staff accounts from the web: admins create, disable, enable and reset teachers and admins; what
that does to sessions and tokens; the refusals (self, last admin, students, bad input, cross-site);
and every answer checked against the OpenAPI document."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from appliance.accounts import User
from appliance.app_keys import DB
from appliance.errors import Conflict
from appliance.staff_accounts import set_disabled
from appliance.store import users as user_store
from tests.conftest import DEFAULT_PASSWORD, ApiClient, LiveServer, unique_username
from tests.core.test_openapi import Walk, _doc

ACCOUNTS = "/api/admin/accounts"


@pytest.fixture
async def walk(server: LiveServer) -> Walk:
    """Every call made through it is checked against the OpenAPI document."""
    return Walk(await _doc(server.client()))


def _users(server: LiveServer) -> list[tuple[Any, ...]]:
    return server.db_rows()["users"]


async def test_an_admin_creates_a_teacher_who_logs_in_with_the_generated_password(
    server: LiveServer, walk: Walk
) -> None:
    admin = await server.make_user("admin")
    name = unique_username("teach")
    made = await walk.call(admin, "POST", ACCOUNTS, json={"username": name, "role": "teacher"})
    assert made.status == 201, made
    password = made.json["password"]
    assert made.json["generated"] is True
    assert re.fullmatch(r"([a-z2-9]{4}-){3,}[a-z2-9]{4}", password), password
    account = made.json["account"]
    assert account["username"] == name and account["role"] == "teacher"
    assert account["disabled"] is False and account["last_login_at"] is None
    # Only its hash is kept.
    assert password not in repr(server.db_rows())

    teacher = server.client()
    assert (await teacher.login(name, password)).status == 200
    listed = await walk.call(admin, "GET", ACCOUNTS)
    assert listed.status == 200, listed
    [row] = [a for a in listed.json["accounts"] if a["id"] == account["id"]]
    assert row["last_login_at"] is not None

    # A given password is used as it is and not answered back; an admin can make another admin.
    other = unique_username("boss")
    given = await walk.call(
        admin, "POST", ACCOUNTS, json={"username": other, "role": "admin", "password": "a-long-passphrase"}
    )
    assert given.status == 201 and given.json["password"] is None and given.json["generated"] is False, given
    assert (await server.client().login(other, "a-long-passphrase")).status == 200
    assert walk.problems == []


async def test_the_list_holds_staff_only_and_filters_by_role(server: LiveServer, walk: Walk) -> None:
    admin = await server.make_user("admin")
    teacher = await server.make_user("teacher")
    student = await server.make_user("student")
    everyone = (await walk.call(admin, "GET", ACCOUNTS)).json["accounts"]
    names = {a["username"] for a in everyone}
    assert {admin.username, teacher.username} <= names and student.username not in names
    teachers = (await walk.call(admin, "GET", f"{ACCOUNTS}?role=teacher")).json["accounts"]
    assert {a["role"] for a in teachers} == {"teacher"}
    admins = (await walk.call(admin, "GET", f"{ACCOUNTS}?role=admin")).json["accounts"]
    assert [a["username"] for a in admins] == [admin.username]
    wrong = await walk.call(admin, "GET", f"{ACCOUNTS}?role=student")
    assert wrong.status == 400 and wrong.error_code == "invalid_role", wrong
    assert walk.problems == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"username": "alice\n", "role": "teacher"}, 400, "invalid_username"),  # fullmatch, not match
        ({"username": "a b", "role": "teacher"}, 400, "invalid_username"),
        ({"username": "ab", "role": "teacher"}, 400, "invalid_username"),
        ({"username": "newteacher", "role": "student"}, 400, None),  # students are made elsewhere
        ({"username": "newteacher", "role": "teacher", "password": "short"}, 400, "weak_password"),
        ({"username": "newteacher", "role": "teacher", "password": "x" * 257}, 400, "too_long"),
        ({"username": "newteacher", "role": "teacher", "extra": 1}, 400, None),
        ({"username": "newteacher"}, 400, None),
    ],
)
async def test_bad_creations_are_refused_and_change_nothing(
    server: LiveServer, walk: Walk, body: dict[str, Any], status: int, code: str | None
) -> None:
    admin = await server.make_user("admin")
    before = _users(server)
    reply = await walk.call(admin, "POST", ACCOUNTS, json=body)
    assert reply.status == status, reply
    if code:
        assert reply.error_code == code, reply
    assert reply.error and reply.error["message"]
    assert _users(server) == before
    assert walk.problems == []


async def test_a_taken_username_is_409_whatever_its_case(server: LiveServer, walk: Walk) -> None:
    admin = await server.make_user("admin")
    student = await server.make_user("student")
    before = _users(server)
    for name in (student.username, student.username.upper(), admin.username):
        reply = await walk.call(admin, "POST", ACCOUNTS, json={"username": name, "role": "teacher"})
        assert reply.status == 409 and reply.error_code == "username_taken", reply
    assert _users(server) == before
    assert walk.problems == []


async def test_disabling_ends_sessions_and_tokens_at_once_and_enabling_lets_them_log_in(
    server: LiveServer, walk: Walk
) -> None:
    admin = await server.make_user("admin")
    teacher = await server.make_user("teacher")
    script = teacher.with_token(await teacher.create_token())
    assert (await script.get("/api/me")).status == 200
    off = await walk.call(admin, "PATCH", f"{ACCOUNTS}/{teacher.user_id}", json={"disabled": True})
    assert off.status == 200 and off.json["account"]["disabled"] is True, off
    assert (await teacher.get("/api/me")).status == 401
    assert (await teacher.post("/api/classes", json={"name": "after"})).status == 401
    assert (await script.get("/api/me")).status == 401
    assert (await server.client().login(teacher.username, DEFAULT_PASSWORD)).status == 401
    rows = server.db_rows()
    assert not [s for s in rows["sessions"] if s[1] == teacher.user_id]

    on = await walk.call(admin, "PATCH", f"{ACCOUNTS}/{teacher.user_id}", json={"disabled": False})
    assert on.status == 200 and on.json["account"]["disabled"] is False, on
    again = server.client()
    assert (await again.login(teacher.username, DEFAULT_PASSWORD)).status == 200
    # The revoked token stays revoked: enabling gives back the password, not old credentials.
    assert (await script.get("/api/me")).status == 401
    assert walk.problems == []


async def test_an_admin_cannot_disable_themselves(server: LiveServer, walk: Walk) -> None:
    admin = await server.make_user("admin")
    await server.make_user("admin")  # another enabled admin: it is the self rule that refuses
    before = server.db_rows()
    reply = await walk.call(admin, "PATCH", f"{ACCOUNTS}/{admin.user_id}", json={"disabled": True})
    assert reply.status == 409 and reply.error_code == "cannot_disable_self", reply
    assert server.db_rows() == before
    assert (await admin.get("/api/me")).status == 200
    assert walk.problems == []


async def test_the_last_enabled_admin_is_never_disabled(server: LiveServer) -> None:
    first = await server.make_user("admin")
    second = await server.make_user("admin")
    # The only way to be refused for it: an admin disabled while their own request was in flight.
    assert (await first.patch(f"{ACCOUNTS}/{second.user_id}", json={"disabled": True})).status == 200
    db = server.app[DB]
    stale = User(second.user_id, second.username, "admin", None, "")
    with pytest.raises(Conflict) as refused:
        await set_disabled(db, stale, first.user_id, True)
    assert refused.value.code == "last_admin" and refused.value.status == 409
    assert not await user_store.disable_staff(db, first.user_id)
    assert (await first.get("/api/me")).status == 200


async def test_two_admins_disabling_each_other_at_once_leave_one(server: LiveServer) -> None:
    first = await server.make_user("admin")
    second = await server.make_user("admin")
    replies = await asyncio.gather(
        first.patch(f"{ACCOUNTS}/{second.user_id}", json={"disabled": True}),
        second.patch(f"{ACCOUNTS}/{first.user_id}", json={"disabled": True}),
    )
    done, refused = sorted(replies, key=lambda r: r.status)
    assert done.status == 200, replies
    # Refused by the rule, or (when the other's PATCH committed first) as a disabled admin.
    assert (refused.status, refused.error_code) in ((409, "last_admin"), (401, "login_required")), replies
    enabled = [u for u in (await user_store.list_staff(server.app[DB], "admin")) if not u["disabled"]]
    assert len(enabled) == 1


async def test_students_and_unknown_ids_are_not_found_here(server: LiveServer, walk: Walk) -> None:
    admin = await server.make_user("admin")
    student = await server.make_user("student")
    locked = await server.make_user("student")  # e.g. erased: disabled for good
    await server.app[DB].execute("UPDATE users SET disabled = 1 WHERE id = ?", (locked.user_id,))
    before = server.db_rows()
    for target in (student.user_id, locked.user_id, 987654):
        patched = await walk.call(admin, "PATCH", f"{ACCOUNTS}/{target}", json={"disabled": True})
        # Nor enabled: a disabled (e.g. erased) student stays disabled.
        enabled = await walk.call(admin, "PATCH", f"{ACCOUNTS}/{target}", json={"disabled": False})
        reset = await walk.call(admin, "POST", f"{ACCOUNTS}/{target}/password", json={})
        for reply in (patched, enabled, reset):
            assert reply.status == 404 and reply.error_code == "not_found", reply
    assert server.db_rows() == before
    assert (await student.get("/api/me")).status == 200
    assert walk.problems == []


async def test_a_reset_ends_the_accounts_sessions_and_tokens(server: LiveServer, walk: Walk) -> None:
    admin = await server.make_user("admin")
    teacher = await server.make_user("teacher")
    script = teacher.with_token(await teacher.create_token())
    reset = await walk.call(admin, "POST", f"{ACCOUNTS}/{teacher.user_id}/password", json={})
    assert reset.status == 200 and reset.json["generated"] is True, reset
    password = reset.json["password"]
    assert (await teacher.get("/api/me")).status == 401
    assert (await script.get("/api/me")).status == 401
    assert (await server.client().login(teacher.username, DEFAULT_PASSWORD)).status == 401
    assert (await server.client().login(teacher.username, password)).status == 200

    chosen = await walk.call(
        admin, "POST", f"{ACCOUNTS}/{teacher.user_id}/password", json={"password": "another-long-one"}
    )
    assert chosen.status == 200 and chosen.json["password"] is None, chosen
    assert (await server.client().login(teacher.username, "another-long-one")).status == 200
    assert walk.problems == []


async def test_a_weak_reset_changes_nothing(server: LiveServer, walk: Walk) -> None:
    admin = await server.make_user("admin")
    teacher = await server.make_user("teacher")
    before = server.db_rows()
    weak = await walk.call(admin, "POST", f"{ACCOUNTS}/{teacher.user_id}/password", json={"password": "short"})
    assert weak.status == 400 and weak.error_code == "weak_password", weak
    assert server.db_rows() == before
    assert (await teacher.get("/api/me")).status == 200


async def test_an_admin_resetting_their_own_password_keeps_this_session_only(server: LiveServer) -> None:
    admin = await server.make_user("admin")
    elsewhere = server.client()
    assert (await elsewhere.login(admin.username, DEFAULT_PASSWORD)).status == 200
    reply = await admin.post(f"{ACCOUNTS}/{admin.user_id}/password", json={"password": "my-new-passphrase"})
    assert reply.status == 200, reply
    assert (await admin.get("/api/me")).status == 200
    assert (await elsewhere.get("/api/me")).status == 401


async def test_an_admins_cookie_cannot_manage_staff_cross_site(server: LiveServer) -> None:
    admin = await server.make_user("admin")
    teacher = await server.make_user("teacher")
    before = server.db_rows()
    for headers in ({}, {"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        forged = server.client(origin=None)
        forged.use_session(admin.session_cookie or "")
        for method, path, body in (
            ("POST", ACCOUNTS, {"username": unique_username("evil"), "role": "admin"}),
            ("PATCH", f"{ACCOUNTS}/{teacher.user_id}", {"disabled": True}),
            ("POST", f"{ACCOUNTS}/{teacher.user_id}/password", {}),
        ):
            reply = await forged.request(method, path, json=body, headers=headers)
            assert reply.status == 403 and reply.error_code == "csrf_failed", (headers, reply)
    assert server.db_rows() == before


async def test_the_accounts_page_is_for_admins_only(server: LiveServer) -> None:
    admin = await server.make_user("admin")
    page = await admin.get("/admin/accounts", headers={"Accept": "text/html"})
    assert page.status == 200 and 'id="staff-accounts"' in page.text, page
    assert '<script type="module" src="/static/js/pages/admin-accounts.js">' in page.text
    for role in ("teacher", "student"):
        client: ApiClient = await server.make_user(role)
        reply = await client.get("/admin/accounts", headers={"Accept": "text/html"})
        assert reply.status == 404 and "staff-accounts" not in reply.text, (role, reply)
    anonymous = await server.client().get("/admin/accounts", headers={"Accept": "text/html"})
    assert anonymous.status == 302 and anonymous.headers["Location"].startswith("/login?next="), anonymous
