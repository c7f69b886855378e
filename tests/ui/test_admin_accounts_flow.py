"""Staff accounts in a real browser: an admin creates a teacher on the accounts page and copies the
password it shows once; the teacher logs in with it; the admin disables them, and the teacher's
open page is refused on its next request."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import expect

from tests.conftest import unique_username
from tests.ui.conftest import LAPTOP, TABLET, no_docker
from tests.ui.helpers import log_in

pytestmark = pytest.mark.browser


async def test_an_admin_creates_and_disables_a_teacher(
    server_factory: Callable[..., Any], browser: Any, shot: Callable[..., Any], fast_passwords: None
) -> None:
    server = await server_factory(app_options=no_docker())
    admin_api = await server.make_user("admin")
    base = server.url

    admin_ctx = await browser.new_context(viewport=LAPTOP, permissions=["clipboard-read", "clipboard-write"])
    admin = await admin_ctx.new_page()
    admin.on("dialog", lambda dialog: dialog.accept())
    await log_in(admin, base, admin_api.username)
    await admin.goto(f"{base}/admin/accounts")
    await expect(admin.locator("#staff-table")).to_contain_text(admin_api.username)

    name = unique_username("newteacher")
    await admin.get_by_label("Username").fill(name)
    await admin.get_by_label("Role").select_option("teacher")
    await admin.get_by_role("button", name="Create account").click()
    secret = admin.locator("#staff-secret-password")
    await expect(secret).to_have_text(re.compile(r"^([a-z2-9]{4}-){3,}[a-z2-9]{4}$"))
    password = await secret.inner_text()
    await expect(admin.locator("#staff-table")).to_contain_text(name)
    await admin.get_by_role("button", name="Copy password").click()
    assert await admin.evaluate("() => navigator.clipboard.readText()") == password
    await shot(admin, "admin-accounts-created")

    # The new teacher logs in with the shown password (and accepts the legal texts the first time).
    teacher_ctx = await browser.new_context(viewport=LAPTOP)
    teacher = await teacher_ctx.new_page()
    await teacher.goto(f"{base}/login")
    await teacher.get_by_label("Username").fill(name)
    await teacher.get_by_label("Password").fill(password)
    await teacher.get_by_role("button", name="Log in").click()
    await teacher.wait_for_url(re.compile(r"/accept-legal"))
    await teacher.get_by_label(re.compile("terms of use")).check()
    await teacher.get_by_label(re.compile("privacy notice")).check()
    await teacher.get_by_role("button", name="Accept and continue").click()
    await teacher.wait_for_url(re.compile(r"/teach$"))

    # The admin disables them: the teacher's open page is refused on its next request.
    row = admin.locator("#staff-table tr", has_text=name)
    await row.get_by_role("button", name=f"Disable {name}").click()
    await expect(row).to_contain_text("Disabled")
    await expect(row.get_by_role("button", name=f"Enable {name}")).to_be_visible()
    await shot(admin, "admin-accounts-disabled")
    before = server.db_rows()["classes"]
    await teacher.get_by_label("Class name").fill("Made after the disable")
    await teacher.get_by_role("button", name="Create class").click()
    await teacher.wait_for_url(re.compile(r"/login\?next="))
    assert server.db_rows()["classes"] == before
    await teacher.goto(f"{base}/teach")
    await teacher.wait_for_url(re.compile(r"/login\?next="))

    # An admin's own row offers no way to disable themselves (the server refuses it too).
    own = admin.locator("#staff-table tr", has_text=admin_api.username)
    await expect(own.get_by_role("button", name=re.compile("^Disable"))).to_have_count(0)

    # On a tablet the page fits its width (the table scrolls inside its box if it must).
    tablet_ctx = await browser.new_context(viewport=TABLET)
    tablet = await tablet_ctx.new_page()
    await log_in(tablet, base, admin_api.username)
    await tablet.goto(f"{base}/admin/accounts")
    await expect(tablet.locator("#staff-table")).to_contain_text(name)
    assert await tablet.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    await shot(tablet, "admin-accounts-tablet")
    for context in (admin_ctx, teacher_ctx, tablet_ctx):
        await context.close()
