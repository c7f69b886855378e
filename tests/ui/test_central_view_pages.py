"""The central view and the classroom's sync status in a browser (Chromium at laptop size): an admin
of a central instance fed by real bundles reads the appliances' lag bars and table, opens one and
reads its heat grid and scores table, and no response the page received holds a hidden test; a
classroom's admin reads the Sync panel (fingerprint, central, a failed push's code) and its teacher
the fingerprint on the Classroom view."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.async_api import expect

from appliance.identity import public_key_text
from tests.runner.appliance_process import free_port
from tests.sync.conftest import cli, make_classroom, ok, sql, submit
from tests.sync.test_central_view import HIDDEN_IN, HIDDEN_NAME, HIDDEN_OUT, STARTER, add_hidden_test
from tests.ui.conftest import LAPTOP, NetworkLog, no_docker
from tests.ui.helpers import log_in

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fast_passwords")]


def fingerprint(data_dir: Path) -> str:
    lines = dict(line.split(":", 1) for line in ok(cli(data_dir, "identity")).splitlines())
    return lines["fingerprint"].strip()


async def test_an_admin_reads_the_central_view(
    tmp_path: Path, server_factory: Callable[..., Any], browser: Any, shot: Callable[..., Any]
) -> None:
    classroom = make_classroom(tmp_path / "classroom")
    add_hidden_test(classroom)
    with sql(classroom.data_dir) as conn:
        conn.execute("UPDATE jobs SET score = 100 WHERE user_id = ?", (classroom.adult_id,))
        conn.execute("UPDATE jobs SET score = 50 WHERE user_id = ?", (classroom.minor_id,))
        submit(conn, classroom.minor_id, classroom.problem_id, "wrong_answer", 20.0)
    central_dir = tmp_path / "central"
    ok(cli(central_dir, "appliances", "add", "Room 12", classroom.public_key))
    ok(cli(central_dir, "appliances", "add", "Room 14", public_key_text(Ed25519PrivateKey.generate().public_key())))
    bundle = tmp_path / "bundle.zip"
    classroom.export(bundle)
    ok(cli(central_dir, "import", str(bundle)))

    server = await server_factory(data_dir=central_dir, app_options=no_docker())
    admin = await server.make_user("admin")
    context = await browser.new_context(viewport=LAPTOP)
    log = NetworkLog(server.url)
    log.attach(context)
    page = await context.new_page()
    await log_in(page, server.url, admin.username)
    await page.goto(f"{server.url}/admin")
    await expect(page.locator("#sync-status")).to_contain_text(fingerprint(central_dir))
    await page.locator("#central-link").click()
    await page.wait_for_url(f"{server.url}/admin/central")

    rows = page.locator("#appliances tbody tr")
    await expect(rows).to_have_count(2)
    await expect(page.locator("#lag-bars .dash-bar-row")).to_have_count(2)
    room14 = page.locator("#lag-bars [data-appliance]").filter(has_text="Room 14")
    await expect(room14.locator(".central-lag-bar")).to_have_attribute("data-state", "never")
    await expect(room14).to_contain_text("never")
    room12 = rows.filter(has_text="Room 12")
    await expect(room12).to_contain_text(classroom.fingerprint)
    await expect(
        page.locator("#lag-bars [data-appliance]").filter(has_text="Room 12").locator(".central-lag-bar")
    ).to_have_attribute("data-state", "fresh")
    await expect(page.locator("#lag-help")).to_contain_text("time since this instance last imported")

    await room12.get_by_role("link", name="Room 12").click()
    await expect(page.locator("#detail")).to_be_visible()
    cell = page.locator("#heat td[data-cell]")
    await expect(cell).to_have_count(1)
    # Best scores 100 and 50 (the later 20 does not lower it): mean 75 %, one of two solved.
    await expect(cell).to_have_attribute("data-mean", "75")
    await expect(cell).to_contain_text("1/2 solved")
    score_row = page.locator("#scores tbody tr")
    await expect(score_row).to_contain_text("75 / 100")
    await expect(page.locator("#problems-table")).to_contain_text("1 + 2")
    # The page fits a laptop's width: nothing to scroll sideways.
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, overflow
    await shot(page, "central-view-laptop")

    # Reloading with ?appliance= opens the same appliance again.
    await page.reload()
    await expect(page.locator("#heat td[data-cell]")).to_have_attribute("data-mean", "75")
    leaked = [
        (url, marker)
        for url, body in await log.bodies()
        for marker in (HIDDEN_IN, HIDDEN_OUT, HIDDEN_NAME, STARTER)
        if marker.encode() in body
    ]
    assert not leaked and not log.foreign, (leaked, log.foreign)
    await context.close()


async def test_a_classroom_shows_its_sync_status_and_fingerprint(
    tmp_path: Path, server_factory: Callable[..., Any], browser: Any, shot: Callable[..., Any]
) -> None:
    classroom = make_classroom(tmp_path / "classroom")
    dead = f"http://127.0.0.1:{free_port()}"
    failed = cli(classroom.data_dir, "sync", "--now", env={"LABRUNNER_SYNC_CENTRAL_URL": dead})
    assert failed.returncode == 1
    server = await server_factory(data_dir=classroom.data_dir, sync_central_url=dead, app_options=no_docker())
    admin = await server.make_user("admin")
    teacher = await server.make_user("teacher")
    context = await browser.new_context(viewport=LAPTOP)
    page = await context.new_page()
    await log_in(page, server.url, admin.username)
    await page.goto(f"{server.url}/admin")
    panel = page.locator("#sync-status")
    await expect(panel).to_have_attribute("data-last-push", "failed")
    for text in (classroom.fingerprint, dead, "sync_unreachable", "nothing acknowledged yet"):
        await expect(panel).to_contain_text(text)
    await panel.scroll_into_view_if_needed()
    await shot(page, "dashboard-sync-panel")
    await context.close()

    context = await browser.new_context(viewport=LAPTOP)
    page = await context.new_page()
    await log_in(page, server.url, teacher.username)
    await page.goto(f"{server.url}/teach/classroom")
    await expect(page.locator("#key-fingerprint")).to_have_text(classroom.fingerprint)
    # A teacher has no central view.
    await page.goto(f"{server.url}/admin/central")
    await expect(page.locator("h1")).not_to_have_text("Central view")
    await context.close()
