"""After logging in, `?next=` leads only to pages of this appliance (issue 9, finding 10:
`/login?next=/%5Cevil.example/phish` took Chromium to another host)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from playwright.async_api import TimeoutError as PlaywrightTimeout

from tests.conftest import DEFAULT_PASSWORD, LiveServer
from tests.ui.conftest import LAPTOP, no_docker

# Each of these is a way browsers read a "path" as another host or as script.
HOSTILE_NEXT = [
    "/\\evil.example/phish",  # the review's /%5Cevil.example/phish
    "\\\\evil.example/phish",
    "/\t/evil.example/phish",  # the review's /%09/evil.example
    "/\n/evil.example/phish",
    "/\r\n/evil.example/phish",
    "//evil.example/phish",
    "/.//evil.example/phish",  # normalises to the path //evil.example/phish
    "https://evil.example/phish",
    "http:evil.example/phish",
    " //evil.example/phish",
    "javascript:alert(document.domain)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
]


@pytest.fixture
async def server(server_factory) -> LiveServer:
    return await server_factory(app_options=no_docker())


async def _log_in_with_next(server: LiveServer, browser: Any, username: str, next_value: str) -> tuple[str, list]:
    """Log in on /login?next=<next_value>; return where the page ends up and every foreign request."""
    context = await browser.new_context(viewport=LAPTOP)
    foreign: list[str] = []

    async def guard(route: Any) -> None:
        url = route.request.url
        if url.startswith(server.url + "/"):
            await route.continue_()
        else:  # never let the browser actually leave (no DNS, no network)
            foreign.append(url)
            await route.abort()

    await context.route("**/*", guard)
    page = await context.new_page()
    dialogs: list[str] = []

    async def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    await page.goto(f"{server.url}/login?next={quote(next_value, safe='')}")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    try:
        await page.wait_for_url(lambda url: "/login" not in url, timeout=15_000)
        await page.wait_for_load_state()
    except PlaywrightTimeout:
        pass  # a navigation that was stopped on its way out: `foreign` says where it went
    final = page.url
    await context.close()
    assert not dialogs, f"next={next_value!r} ran script: {dialogs}"
    return final, foreign


@pytest.mark.browser
@pytest.mark.parametrize("next_value", HOSTILE_NEXT)
async def test_login_never_leaves_the_appliance(server: LiveServer, browser: Any, next_value: str) -> None:
    student = await server.make_user("student")
    final, foreign = await _log_in_with_next(server, browser, student.username, next_value)
    assert not foreign, f"next={next_value!r} sent the browser to {foreign}"
    origin = urlsplit(server.url)
    landed = urlsplit(final)
    assert (landed.scheme, landed.netloc) == (origin.scheme, origin.netloc), final


@pytest.mark.browser
async def test_login_follows_next_on_the_appliance(server: LiveServer, browser: Any) -> None:
    student = await server.make_user("student")
    final, foreign = await _log_in_with_next(server, browser, student.username, "/scratch?tab=2#editor")
    assert not foreign
    assert final == f"{server.url}/scratch?tab=2#editor"
    teacher = await server.make_user("teacher")
    final, _ = await _log_in_with_next(server, browser, teacher.username, "https://evil.example/")
    assert final == f"{server.url}/teach"


async def test_server_never_redirects_on_next(server: LiveServer) -> None:
    """`next` is read only by the page's script: the server neither redirects on it nor echoes it."""
    client = server.client()
    for next_value in HOSTILE_NEXT:
        reply = await client.get(f"/login?next={quote(next_value, safe='')}")
        assert reply.status == 200, reply
        assert "Location" not in reply.headers
        assert "evil.example" not in reply.text and "alert(" not in reply.text
    # Pages that need a login send the browser to /login with a `next` that is a path on this host.
    reply = await client.get("/scratch?x=1")
    assert reply.status == 302
    assert re.fullmatch(r"/login\?next=%2Fscratch%3Fx%3D1", reply.headers["Location"]), reply.headers["Location"]
