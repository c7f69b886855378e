"""Red-team attacks on the one-time links and the first-start setup (issue 11): a stranger on the
school's network, a student, and two uses of one link at the same moment."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from appliance import login_links
from appliance.app_keys import DB
from appliance.store import users as user_store
from tests.conftest import DEFAULT_PASSWORD, LiveServer, years_ago
from tests.desktop.conftest import lan_client
from tests.desktop.test_login_links import login_link, refusal, setup_body

pytestmark = pytest.mark.usefixtures("fast_passwords")


async def register_from_the_network(live: LiveServer, username: str) -> None:
    stranger = lan_client(live)
    body = {"username": username, "password": DEFAULT_PASSWORD, "birthdate": years_ago(15)}
    reply = await stranger.post("/api/auth/register", json={**body, **await live.legal_versions()})
    assert reply.status == 201, reply


async def test_a_student_registering_before_the_setup_does_not_block_it(both_sides: LiveServer) -> None:
    """The window is up, the setup page waits for the teacher; a student on the network registers
    first (self-registration is open), even under the name the teacher wanted for the admin. The
    setup must still be possible: it is about the first staff accounts, not the first account."""
    db = both_sides.app[DB]
    token = await login_links.create_setup_link(db, both_sides.settings)
    await register_from_the_network(both_sides, "admin")
    assert await login_links.needs_setup(db)  # the window restarted now still offers the setup
    browser = both_sides.client()
    assert (await browser.get(f"/desktop/setup/{token}")).status == 200
    # The squatted name is refused as taken, on its field, and the link is not spent by it.
    taken = await browser.post("/api/desktop/setup", json=await setup_body(both_sides, token))
    assert taken.status == 409 and taken.error_code == "username_taken", taken
    assert taken.error["field"] == "admin_username", taken
    done = await browser.post("/api/desktop/setup", json=await setup_body(both_sides, token, admin_username="boss"))
    assert done.status == 201, done
    assert (await browser.get("/api/me")).json["username"] == "tina"
    squatter = await user_store.get_with_hash(db, "admin")
    assert squatter is not None and squatter["role"] == "student"
    # Set up now (there is a teacher and an admin): no second setup, whatever the students.
    assert not await login_links.needs_setup(db)
    again = await both_sides.client().post("/api/desktop/setup", json=await setup_body(both_sides, token))
    assert again.status == 403 and again.error_code == "link_used", again


async def test_two_uses_of_one_login_link_at_once_log_in_once(both_sides: LiveServer) -> None:
    await both_sides.create_account("teacher", "tina")
    link = await login_link(both_sides)
    browsers = [both_sides.client() for _ in range(6)]
    replies = await asyncio.gather(*(b.get(link) for b in browsers))
    assert sorted(r.status for r in replies) == [302] + [403] * 5, replies
    assert sum("Set-Cookie" in r.headers for r in replies) == 1


async def test_a_link_of_an_account_disabled_since_logs_no_one_in(both_sides: LiveServer) -> None:
    await both_sides.create_account("teacher", "tina")
    link = await login_link(both_sides)
    await both_sides.app[DB].execute("UPDATE users SET disabled = 1 WHERE username = 'tina'")
    browser = both_sides.client()
    reply = await browser.get(link)
    assert reply.status == 403 and refusal(reply) == "account_disabled", reply
    assert (await browser.get("/api/me")).status == 401


LOOPBACK_CLAIMS = {
    "Host": "127.0.0.1",
    "Forwarded": "for=127.0.0.1;host=127.0.0.1;proto=http",
    "X-Forwarded-For": "127.0.0.1",
    "X-Forwarded-Host": "localhost",
    "X-Real-IP": "::1",
}


async def test_a_stranger_claiming_loopback_in_headers_gets_no_link(both_sides: LiveServer) -> None:
    await both_sides.create_account("teacher", "tina")
    link = await login_link(both_sides)
    stranger = lan_client(both_sides)
    reply = await stranger.get(link, headers=LOOPBACK_CLAIMS)
    assert reply.status == 403 and refusal(reply) == "link_not_local", reply
    assert (await stranger.get("/api/me")).status == 401


async def test_a_cross_site_page_in_the_machines_browser_cannot_post_the_setup(both_sides: LiveServer) -> None:
    """A page of another site open in the classroom machine's browser posts to the loopback
    server (even had it the token): the browser says where it came from, and it is refused."""
    db = both_sides.app[DB]
    token = await login_links.create_setup_link(db, both_sides.settings)
    body = await setup_body(both_sides, token)
    for headers in ({"Origin": "http://192.0.2.50"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}):
        page = both_sides.client(origin=None)
        reply = await page.post("/api/desktop/setup", json=body, headers=headers)
        assert reply.status == 403 and reply.error_code == "csrf_failed", (headers, reply)
    assert await user_store.count(db) == 0
    # Nothing was spent: the person at the machine still sets up with it.
    assert (await both_sides.client().post("/api/desktop/setup", json=body)).status == 201


async def test_garbage_links_are_answered_while_another_process_holds_the_writer(both_sides: LiveServer) -> None:
    """Unknown links cost a read, never the single writer: a flood of guesses cannot queue up
    behind (or in front of) the class's writes. Another process holds the write lock throughout."""
    holder = sqlite3.connect(both_sides.settings.db_path, isolation_level=None, check_same_thread=False)
    try:
        await asyncio.to_thread(holder.execute, "BEGIN IMMEDIATE")
        reply = await both_sides.client().get(f"/desktop/login/{'x' * 43}")
        assert reply.status == 404 and refusal(reply) == "link_unknown", reply
    finally:
        await asyncio.to_thread(holder.execute, "ROLLBACK")
        holder.close()
