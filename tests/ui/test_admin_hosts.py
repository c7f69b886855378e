"""The dashboard's Runner hosts panel in a real browser, on a real cluster (a remote-mode server, a
Redis broker, `labrunner worker` processes): before any host reports it says what to run; then a
registered host's row shows its region, state and slots, a host without a registered key is listed
as refused, and a host killed with -9 turns "lost" once it has been silent for
runner_host_lost_after_s. In local mode the panel stays hidden."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from tests.conftest import DEFAULT_PASSWORD
from tests.scale.cluster import SERVER_ENV_FAST, cluster, require_redis
from tests.ui.conftest import LAPTOP, TABLET, no_docker
from tests.ui.helpers import log_in

pytestmark = pytest.mark.browser

LOST_AFTER_S = float(SERVER_ENV_FAST["LABRUNNER_RUNNER_HOST_LOST_AFTER_S"])
# A host is lost when it has been silent for LOST_AFTER_S; the page hears of it with the next
# picture the dashboard streams (every 1.5 s by default). The rest is room for a busy machine.
LOST_SHOWN_MS = (LOST_AFTER_S + 1.5 + 10) * 1000
HOST_SHOWN_MS = 60_000  # a worker process starting (Python imports, the broker, its first heartbeat)


async def admin_page(browser: Any, base: str, viewport: dict[str, int], *, first: bool) -> tuple[Any, Any]:
    """A logged-in page on the dashboard; `first`: the account's first login (it accepts the legal texts)."""
    context = await browser.new_context(viewport=viewport)
    page = await context.new_page()
    await page.goto(f"{base}/login")
    await page.get_by_label("Username").fill("boss")
    await page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    if first:
        await page.wait_for_url(re.compile(r"/accept-legal"))
        await page.get_by_label(re.compile("terms of use")).check()
        await page.get_by_label(re.compile("privacy notice")).check()
        await page.get_by_role("button", name="Accept and continue").click()
    await page.wait_for_url(re.compile(r"/(teach)?$"))
    await page.goto(f"{base}/admin")
    return context, page


async def fits_width(page: Any) -> bool:
    return bool(await page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"))


@pytest.mark.docker
async def test_the_hosts_panel_shows_hosts_refused_hosts_and_a_lost_host(
    tmp_path: Path, browser: Any, shot: Callable[..., Any], sandbox_ready: None
) -> None:
    require_redis()
    with cluster(tmp_path, {"boss": "admin"}) as c:
        context, page = await admin_page(browser, c.server.url, LAPTOP, first=True)
        panel = page.locator("#hosts-panel")

        # No host yet: the exact commands to register and start one, and the broker (no password).
        await expect(panel).to_be_visible()
        await expect(panel.locator(".hosts-empty")).to_contain_text("labrunner workers add NAME KEY")
        await expect(panel.locator(".hosts-empty")).to_contain_text("labrunner worker --connect")
        await expect(page.locator("#hosts-broker")).to_contain_text(f"127.0.0.1:{c.broker.port}")
        assert "server-broker-secret" not in await panel.inner_text()
        await shot(page, "admin-hosts-empty")
        await expect(page.locator("#runner-health")).to_contain_text("on runner hosts")

        await asyncio.to_thread(c.add_worker, "alpha", region="north", slots=2)
        await asyncio.to_thread(c.add_worker, "rogue", slots=1, register=False)

        row = panel.locator("tr[data-host='alpha']")
        await expect(row).to_have_attribute("data-state", "up", timeout=HOST_SHOWN_MS)
        await expect(row.locator(".host-state")).to_have_text("● up")
        await expect(row.locator(".host-region")).to_have_text("north")
        meter = row.get_by_role("meter")
        await expect(meter).to_have_attribute("aria-valuemax", "2")
        await expect(meter).to_have_attribute("aria-valuetext", "0 of 2 slots busy, 0 placed")
        await expect(row.locator(".host-seen")).to_have_text(re.compile(r"^\d+ s ago$"))

        refused = page.locator("#hosts-refused li[data-host='rogue']")
        await expect(refused).to_contain_text("no registered key has this host name", timeout=HOST_SHOWN_MS)
        await expect(panel.locator("tr[data-host='rogue']")).to_have_count(0)

        await shot(page, "admin-hosts-laptop")
        assert await fits_width(page)
        tablet_ctx, tablet = await admin_page(browser, c.server.url, TABLET, first=False)
        await expect(tablet.locator("#hosts-panel tr[data-host='alpha']")).to_have_attribute("data-state", "up")
        await tablet.locator("#hosts-panel").scroll_into_view_if_needed()
        await shot(tablet, "admin-hosts-tablet")
        assert await fits_width(tablet)
        await tablet_ctx.close()

        # Killed without a word: silent past runner_host_lost_after_s, the row says lost.
        c.workers["alpha"].kill9()
        await expect(row).to_have_attribute("data-state", "lost", timeout=LOST_SHOWN_MS)
        await expect(row.locator(".host-state")).to_have_text("✕ lost")
        seen = await row.locator(".host-seen").inner_text()
        assert float(seen.split()[0]) >= LOST_AFTER_S, seen
        await shot(page, "admin-hosts-lost")
        await context.close()


async def test_local_mode_shows_no_hosts_panel(server_factory: Callable[..., Any], browser: Any) -> None:
    server = await server_factory(app_options=no_docker())
    admin = await server.make_user("admin")
    context = await browser.new_context(viewport=LAPTOP)
    page = await context.new_page()
    await log_in(page, server.url, admin.username)
    await page.goto(f"{server.url}/admin")
    await expect(page.locator("#runner-health")).to_contain_text("on this machine")
    await expect(page.locator("#hosts-panel")).to_be_hidden()
    await context.close()
