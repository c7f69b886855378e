"""One-time login and setup links over real HTTP: once only, for a limited time, from loopback
only (the TCP peer, never a header), and the first-start setup only while no account exists."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest

from appliance import clock, login_links
from appliance.app_keys import ACCOUNTS, DB
from appliance.errors import Conflict, NotFound
from appliance.store import users as user_store
from tests.conftest import DEFAULT_PASSWORD, LiveServer
from tests.desktop.conftest import lan_client

pytestmark = pytest.mark.usefixtures("fast_passwords")


async def login_link(live: LiveServer, username: str | None = None) -> str:
    token, _user = await login_links.create_login_link(live.app[DB], live.settings, username)
    return f"/desktop/login/{token}"


def refusal(reply: object) -> str | None:
    found = re.search(r'data-code="([a-z_]+)"', reply.text)  # type: ignore[attr-defined]
    return found.group(1) if found else None


async def test_a_login_link_logs_the_teacher_in_once(both_sides: LiveServer) -> None:
    await both_sides.create_account("teacher", "tina")
    link = await login_link(both_sides)
    browser = both_sides.client()
    first = await browser.get(link)
    assert first.status == 302 and first.headers["Location"] == "/teach", first
    me = await browser.get("/api/me")
    assert me.status == 200 and me.json["username"] == "tina"

    again = both_sides.client()
    second = await again.get(link)
    assert second.status == 403 and refusal(second) == "link_used", second
    assert "Set-Cookie" not in second.headers
    assert (await again.get("/api/me")).status == 401


async def test_an_expired_link_is_refused(both_sides: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    await both_sides.create_account("teacher", "tina")
    link = await login_link(both_sides)
    later = clock.now() + timedelta(seconds=both_sides.settings.desktop_login_link_s + 1)
    monkeypatch.setattr(login_links, "db_now", lambda: clock.to_db(later))
    browser = both_sides.client()
    reply = await browser.get(link)
    assert reply.status == 403 and refusal(reply) == "link_expired", reply
    assert (await browser.get("/api/me")).status == 401


async def test_a_link_from_the_network_is_refused_and_spent(both_sides: LiveServer) -> None:
    await both_sides.create_account("teacher", "tina")
    link = await login_link(both_sides)
    outsider = lan_client(both_sides)
    # A forwarding header naming loopback changes nothing: only the TCP peer counts.
    reply = await outsider.get(link, headers={"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1"})
    assert reply.status == 403 and refusal(reply) == "link_not_local", reply
    assert (await outsider.get("/api/me")).status == 401
    # Tried once from the network, the link is spent: it cannot be used later on this machine either.
    local = await both_sides.client().get(link)
    assert local.status == 403 and refusal(local) == "link_used", local


async def test_an_unknown_or_setup_token_is_not_a_login(both_sides: LiveServer) -> None:
    reply = await both_sides.client().get("/desktop/login/made-up-token")
    assert reply.status == 404 and refusal(reply) == "link_unknown", reply
    setup = await login_links.create_setup_link(both_sides.app[DB], both_sides.settings)
    reply = await both_sides.client().get(f"/desktop/login/{setup}")
    assert reply.status == 404 and refusal(reply) == "link_unknown", reply


async def test_which_account_a_link_logs_in(both_sides: LiveServer) -> None:
    db = both_sides.app[DB]
    with pytest.raises(NotFound) as none_yet:
        await login_links.create_login_link(db, both_sides.settings, None)
    assert none_yet.value.code == "no_teacher"
    await both_sides.create_account("teacher", "older")
    await both_sides.create_account("teacher", "newer")
    await both_sides.create_account("admin", "boss")
    await both_sides.create_account("student", "stu", birthdate="2010-01-01")
    assert (await login_links.create_login_link(db, both_sides.settings, None))[1].username == "newer"
    assert (await login_links.create_login_link(db, both_sides.settings, "older"))[1].username == "older"
    assert (await login_links.create_login_link(db, both_sides.settings, "boss"))[1].role == "admin"
    # A student is never logged in by a desktop link, nor a disabled teacher.
    for name in ("stu", "nobody"):
        with pytest.raises(NotFound) as refused:
            await login_links.create_login_link(db, both_sides.settings, name)
        assert refused.value.code == "no_such_teacher"
    newer = await both_sides.app[ACCOUNTS].get((await user_store.get_with_hash(db, "newer"))["id"])  # type: ignore[index]
    await db.execute("UPDATE users SET disabled = 1 WHERE id = ?", (newer.id,))
    assert (await login_links.create_login_link(db, both_sides.settings, None))[1].username == "older"


async def setup_body(live: LiveServer, token: str, **changes: str) -> dict[str, str]:
    body = {
        "token": token,
        "admin_username": "admin",
        "admin_password": DEFAULT_PASSWORD,
        "teacher_username": "tina",
        "teacher_password": DEFAULT_PASSWORD,
        **await live.legal_versions(),
    }
    return {**body, **changes}


async def test_first_start_setup_creates_the_admin_and_the_teacher_once(both_sides: LiveServer) -> None:
    db = both_sides.app[DB]
    token = await login_links.create_setup_link(db, both_sides.settings)
    browser = both_sides.client()
    page = await browser.get(f"/desktop/setup/{token}")
    assert page.status == 200 and 'id="setup-form"' in page.text, page
    # A typo costs no new link: checked before the link is spent, and nothing is created.
    weak = await browser.post("/api/desktop/setup", json=await setup_body(both_sides, token, teacher_password="short"))
    assert weak.status == 400 and weak.error_code == "weak_password" and weak.error["field"] == "teacher_password"
    same = await browser.post("/api/desktop/setup", json=await setup_body(both_sides, token, teacher_username="ADMIN"))
    assert same.status == 409 and same.error_code == "username_taken", same
    assert await user_store.count(db) == 0

    done = await browser.post("/api/desktop/setup", json=await setup_body(both_sides, token))
    assert done.status == 201 and done.json["next"] == "/teach", done
    me = await browser.get("/api/me")
    assert me.json["username"] == "tina" and me.json["role"] == "teacher" and not me.json["pending_legal"]
    admin = await user_store.get_with_hash(db, "admin")
    assert admin is not None and admin["role"] == "admin"

    again = await both_sides.client().post("/api/desktop/setup", json=await setup_body(both_sides, token))
    assert again.status == 403 and again.error_code == "link_used", again
    assert (await both_sides.client().get(f"/desktop/setup/{token}")).status == 403
    # Once accounts exist there is no setup link to be had at all.
    with pytest.raises(Conflict) as exists:
        await login_links.create_setup_link(db, both_sides.settings)
    assert exists.value.code == "accounts_exist"
    assert await user_store.count(db) == 2


async def test_setup_from_the_network_is_refused(both_sides: LiveServer) -> None:
    db = both_sides.app[DB]
    token = await login_links.create_setup_link(db, both_sides.settings)
    outsider = lan_client(both_sides)
    page = await outsider.get(f"/desktop/setup/{token}")
    assert page.status == 403 and refusal(page) == "link_not_local", page
    assert await user_store.count(db) == 0
    # Tried from the network, the setup link is spent: the machine itself needs a new one.
    reply = await both_sides.client().post("/api/desktop/setup", json=await setup_body(both_sides, token))
    assert reply.status == 403 and reply.error_code == "link_used", reply
    fresh = await login_links.create_setup_link(db, both_sides.settings)
    reply = await outsider.post("/api/desktop/setup", json=await setup_body(both_sides, fresh))
    assert reply.status == 403 and reply.error_code == "link_not_local", reply
    assert await user_store.count(db) == 0


async def test_setup_with_a_login_token_or_after_accounts_exist_is_refused(both_sides: LiveServer) -> None:
    db = both_sides.app[DB]
    token = await login_links.create_setup_link(db, both_sides.settings)
    await both_sides.create_account("teacher", "early")  # someone made an account meanwhile (the CLI)
    reply = await both_sides.client().post("/api/desktop/setup", json=await setup_body(both_sides, token))
    assert reply.status == 409 and reply.error_code == "accounts_exist", reply
    login = (await login_link(both_sides)).rsplit("/", 1)[1]
    reply = await both_sides.client().post("/api/desktop/setup", json=await setup_body(both_sides, login))
    assert reply.status == 404 and reply.error_code == "link_unknown", reply
    assert await user_store.count(db) == 1


@pytest.mark.parametrize("links", [1, 2], ids=["one-link-twice", "two-windows-two-links"])
async def test_two_setups_at_once_make_one_pair_of_accounts(both_sides: LiveServer, links: int) -> None:
    """Two posts of one setup page, or two windows started at once with a link each: one setup wins."""
    db = both_sides.app[DB]
    tokens = [await login_links.create_setup_link(db, both_sides.settings) for _ in range(links)]
    bodies = [
        await setup_body(both_sides, tokens[0], admin_username="admin1", teacher_username="tina1"),
        await setup_body(both_sides, tokens[-1], admin_username="admin2", teacher_username="tina2"),
    ]
    replies = await asyncio.gather(*(both_sides.client().post("/api/desktop/setup", json=b) for b in bodies))
    assert sorted(r.status for r in replies) == [201, 409], replies
    assert await user_store.count(db) == 2
