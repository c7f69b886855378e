"""Red team of the one-file binary's way in (issue 12): it carries no Qt window, so `labrunner desktop`
hands the one-time link to the system browser. A local user of the classroom machine reads every
process's arguments (`ps`, /proc/PID/cmdline); the link must not be among them, or they redeem it from
loopback before the browser starts and are the teacher (or, at the first start, make the admin)."""

from __future__ import annotations

import asyncio
import http.client
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tests.desktop.window import Desktop, data_folder, free_port, teacher_with_class
from tests.runner.appliance_process import ApplianceProcess, cli

START_S = 120


@pytest.fixture
def running(tmp_path: Path) -> Iterator[ApplianceProcess]:
    data = data_folder(tmp_path / "data", sandbox_pool_size=0, lan_announce=False)
    cli(data, "migrate")
    server = ApplianceProcess(data, free_port())
    yield server
    server.stop()


@pytest.mark.parametrize("first_start", [False, True], ids=["login-link", "setup-link"])
def test_the_browser_is_not_given_the_link_on_its_command_line(
    running: ApplianceProcess, tmp_path: Path, first_start: bool
) -> None:
    if not first_start:
        asyncio.run(teacher_with_class(running.data_dir, "tina", "7B Computing"))
    running.start()
    argv_file = tmp_path / "argv.txt"
    browser = tmp_path / "browser.sh"
    # What `ps` shows every user: the browser's whole command line.
    browser.write_text(f'#!/bin/sh\ntr "\\0" " " < /proc/$$/cmdline >> {argv_file}\n')
    browser.chmod(0o755)
    desktop = Desktop(running.data_dir, tmp_path / "desktop.log", {"BROWSER": str(browser)})
    try:
        assert desktop.wait(START_S) == 0, desktop.output()[-3000:]
    finally:
        desktop.kill()
    deadline = time.monotonic() + 30
    while not argv_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    seen = argv_file.read_text()
    assert "/desktop/" not in seen, seen  # before the fix: http://127.0.0.1:PORT/desktop/login/TOKEN

    # The browser gets a page of the data folder that only this user can read, forwarding to the link.
    [uri] = re.findall(r"file://\S+", seen)
    page = Path(unquote(urlsplit(uri).path))
    assert page.parent == running.data_dir
    assert stat.S_IMODE(page.stat().st_mode) == 0o600
    [link] = re.findall(r'content="0;url=([^"]+)"', page.read_text())
    assert link.startswith(f"http://127.0.0.1:{running.port}/desktop/{'setup' if first_start else 'login'}/")
    answer = http.client.HTTPConnection("127.0.0.1", running.port, timeout=30)
    try:
        answer.request("GET", urlsplit(link).path)
        reply = answer.getresponse()
        if first_start:
            assert reply.status == 200 and "Set up Labrunner" in reply.read().decode()
        else:
            assert reply.status == 302 and "labrunner_session=" in (reply.getheader("Set-Cookie") or "")
    finally:
        answer.close()
