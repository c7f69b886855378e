"""The teacher's window, for real: Qt WebEngine on Xvfb, the server in the window's process (or a
running `labrunner serve` it attaches to), the one-time login, the Classroom view's QR code read
back by an independent decoder, and closing the window as the user does."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from pathlib import Path

import aiohttp
import pytest
import zxingcpp
from PIL import Image

from tests.desktop.cdp import WindowPage
from tests.desktop.window import (
    Desktop,
    containers_of,
    data_folder,
    free_port,
    port_open,
    screenshot,
    teacher_with_class,
    window_env,
    window_id,
    window_name,
)
from tests.requirements import require_sandbox
from tests.runner.appliance_process import ApplianceProcess, create_account

# Start-up includes Qt WebEngine, the engine check and a pool container: generous, not a measure.
START_S = 120
STOP_S = 60
TEACH_PAGE = "location.pathname === '/teach' && !!document.querySelector('#classroom-link')"
# The teacher's page once its lists have loaded, so the screenshot shows the class, not "Loading…".
TEACH_PAGE_LOADED = TEACH_PAGE + " && document.querySelector('#class-list').getAttribute('aria-busy') !== 'true'"


def spaced(code: str) -> str:
    return " ".join(code[i : i + 4] for i in range(0, len(code), 4))


def wait_until(check, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"{what} within {timeout_s} s")


async def test_the_window_logs_in_shows_the_classroom_and_stops_cleanly(
    display: str, desktops: list[Desktop], tmp_path: Path
) -> None:
    require_sandbox()
    port, devtools = free_port(), free_port()
    data = data_folder(tmp_path / "data", port=port, sandbox_pool_size=1)
    code = await teacher_with_class(data, "tina", "7B Computing")
    desktop = Desktop(data, tmp_path / "desktop.log", window_env(display, devtools))
    desktops.append(desktop)

    page = await WindowPage.connect(devtools, START_S)
    try:
        await page.wait_for(TEACH_PAGE_LOADED, START_S)
        screenshot(display, tmp_path / "teacher-page.png")
        assert "Labrunner" in window_name(display, window_id(display))

        await page.evaluate("document.querySelector('#classroom-link').click()")
        # The bridge reached the page: the window-only buttons show.
        await page.wait_for("document.body.dataset.window === 'true' && !!document.querySelector('.address-text')")
        shown = await page.evaluate("[...document.querySelectorAll('.address-text')].map(e => e.textContent)")
        assert shown and all(url.endswith(f":{port}/") for url in shown), shown
        assert await page.evaluate("document.querySelector('#join-code').textContent") == spaced(code)
        picture = screenshot(display, tmp_path / "classroom.png")
        # A teacher may not call the admin backup API; the window's bridge backs up for them.
        await page.evaluate("document.querySelector('#backup-button').click()")
        status = "document.querySelector('#backup-status').textContent"
        written = await page.wait_for(f"/written|failed/i.test({status}) && {status}", 120)
        assert written.startswith("Backup written:") and str(data / "backups") in written, written
    finally:
        await page.close()
    decoded = [found.text for found in zxingcpp.read_barcodes(Image.open(picture))]
    assert decoded and set(decoded) <= set(shown), (decoded, shown)

    # A sandbox waits in the pool meanwhile: closing must not leave it behind.
    wait_until(lambda: containers_of(data), 60, "no pool container started")
    desktop.close_window(display)
    assert desktop.wait(STOP_S) == 0, desktop.output()[-3000:]
    assert not port_open(port)
    assert containers_of(data) == []
    assert not (data / "server.json").exists()
    for step in ("Docker engine checked: done", "Sandbox image present: done", "Database migrated: done"):
        assert step in desktop.output()
    assert "Labrunner stopped." in desktop.output()


async def test_the_window_attaches_to_a_running_server_and_leaves_it_running(
    display: str, desktops: list[Desktop], tmp_path: Path
) -> None:
    port, devtools = free_port(), free_port()
    # The folder's own port is another one: a window that started a server of its own would show it.
    data = data_folder(tmp_path / "data", port=free_port(), sandbox_pool_size=0)
    await teacher_with_class(data, "tina", "7B Computing")
    server = ApplianceProcess(data, port)
    server.start()
    try:
        desktop = Desktop(data, tmp_path / "desktop.log", window_env(display, devtools))
        desktops.append(desktop)
        page = await WindowPage.connect(devtools, START_S)
        try:
            await page.wait_for(TEACH_PAGE, START_S)
            assert await page.evaluate("location.port") == str(port)
            await page.evaluate("document.querySelector('#classroom-link').click()")
            await page.wait_for("document.body.dataset.window === 'true'")  # the bridge reached the page
            # pywebview answers a bridge call by running JavaScript in the page, waiting without a
            # timeout in a thread Python joins at exit. Calls go out all the time, so some are
            # half-way when the window closes: the process must end all the same.
            flood = "setInterval(() => { for (let i = 0; i < 20; i++) pywebview.api.backup_status(); }, 5); true"
            await page.evaluate(flood)
            await asyncio.sleep(1.5)
        finally:
            await page.close()
        desktop.close_window(display)
        assert desktop.wait(STOP_S) == 0, desktop.output()[-3000:]
        assert "keeps running" in desktop.output()
        async with aiohttp.ClientSession() as session, session.get(f"{server.url}/healthz") as health:
            assert health.status == 200
        assert server.process is not None and server.process.poll() is None
    finally:
        server.stop()
    assert not (data / "server.json").exists()  # `serve` removes its record at a clean stop


async def test_the_first_start_sets_up_the_admin_and_the_teacher(
    display: str, desktops: list[Desktop], tmp_path: Path
) -> None:
    devtools = free_port()
    data = data_folder(tmp_path / "data", port=free_port(), sandbox_pool_size=0)
    desktop = Desktop(data, tmp_path / "desktop.log", window_env(display, devtools))
    desktops.append(desktop)
    page = await WindowPage.connect(devtools, START_S)
    try:
        await page.wait_for("location.pathname.startsWith('/desktop/setup/') && !!document.forms[0]", START_S)
        screenshot(display, tmp_path / "setup.png")
        await page.evaluate(
            """(() => {
              const form = document.querySelector('#setup-form');
              form.admin_password.value = 'admin-password-1';
              form.teacher_username.value = 'tina';
              form.teacher_password.value = 'teacher-password-1';
              form.accept_terms.checked = true;
              form.accept_privacy.checked = true;
              form.querySelector('button[type=submit]').click();
            })()"""
        )
        await page.wait_for(TEACH_PAGE, 60)
        assert "tina" in await page.evaluate("document.querySelector('.username').textContent")
    finally:
        await page.close()
    desktop.close_window(display)
    assert desktop.wait(STOP_S) == 0, desktop.output()[-3000:]
    with sqlite3.connect(data / "labrunner.sqlite3") as db:
        accounts = sorted(db.execute("SELECT username, role FROM users").fetchall())
    assert accounts == [("admin", "admin"), ("tina", "teacher")]


@pytest.mark.parametrize("script", [False, True], ids=["command", "packaging-desktop-sh"])
async def test_without_a_display_the_system_browser_gets_the_link(
    desktops: list[Desktop], tmp_path: Path, script: bool
) -> None:
    port = free_port()
    data = data_folder(tmp_path / "data", port=port, sandbox_pool_size=0)
    await teacher_with_class(data, "tina", "7B Computing")
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" >> {opened}\n')
    browser.chmod(0o755)
    desktop = Desktop(data, tmp_path / "desktop.log", {"BROWSER": str(browser)}, script=script)
    desktops.append(desktop)

    wait_until(lambda: opened.exists() or desktop.process.poll() is not None, START_S, "neither browser nor exit")
    assert opened.exists(), f"the browser was not opened:\n{desktop.output()[-3000:]}"
    # A page of the data folder forwarding to the link: a browser's command line is anyone's to read.
    page = opened.read_text().strip()
    assert page == (data / "desktop-link.html").as_uri(), page
    [link] = re.findall(r'content="0;url=([^"]+)"', (data / "desktop-link.html").read_text())
    assert link.startswith(f"http://127.0.0.1:{port}/desktop/login/"), link
    assert "no window can open here" in desktop.output()

    async with aiohttp.ClientSession() as session, session.get(link, allow_redirects=False) as reply:
        assert reply.status == 302 and reply.headers["Location"] == "/teach", reply
        assert "labrunner_session=" in reply.headers["Set-Cookie"]
    # Serving until Ctrl-C, which stops it cleanly.
    assert desktop.process.poll() is None and port_open(port)
    desktop.process.send_signal(2)
    assert desktop.wait(STOP_S) == 0, desktop.output()[-3000:]
    assert not port_open(port)


async def test_the_loading_view_shows_the_steps_and_why_it_cannot_go_on(
    display: str, desktops: list[Desktop], tmp_path: Path
) -> None:
    devtools = free_port()
    data = data_folder(tmp_path / "data", port=free_port(), sandbox_pool_size=0)
    create_account(data, "admin", "boss")  # an admin, but no teacher to log in
    desktop = Desktop(data, tmp_path / "desktop.log", window_env(display, devtools))
    desktops.append(desktop)
    page = await WindowPage.connect(devtools, START_S)
    try:
        error = await page.wait_for("document.querySelector('#error').textContent", START_S)
        assert "no teacher account" in error
        steps = "[...document.querySelectorAll('#steps li')]"
        states = await page.evaluate(f"Object.fromEntries({steps}.map(li => [li.dataset.key, li.dataset.state]))")
        assert states["database"] == "done" and states["server"] == "done" and states["login"] == "failed", states
        screenshot(display, tmp_path / "loading.png")
    finally:
        await page.close()
    desktop.close_window(display)
    assert desktop.wait(STOP_S) == 0, desktop.output()[-3000:]
