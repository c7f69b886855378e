"""The teacher's window with HTTPS on (`tls = "self-signed"`): the server in the window's process
serves students over HTTPS, and the window itself reaches it over its plain-HTTP loopback port
(appliance.listeners), showing the https addresses and the certificate's fingerprint."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from appliance.server_record import read_file
from tests.desktop.cdp import WindowPage
from tests.desktop.test_window import START_S, STOP_S, TEACH_PAGE_LOADED
from tests.desktop.window import Desktop, data_folder, free_port, port_open, teacher_with_class, window_env
from tests.sync.conftest import cli, ok


async def test_the_window_works_with_https_on_and_shows_the_fingerprint(
    display: str, desktops: list[Desktop], tmp_path: Path
) -> None:
    port, devtools = free_port(), free_port()
    data = data_folder(tmp_path / "data", port=port, sandbox_pool_size=0, tls="self-signed")
    await teacher_with_class(data, "tina", "7B Computing")
    desktop = Desktop(data, tmp_path / "desktop.log", window_env(display, devtools))
    desktops.append(desktop)

    page = await WindowPage.connect(devtools, START_S)
    try:
        await page.wait_for(TEACH_PAGE_LOADED, START_S)
        record = read_file(data / "server.json")
        assert record is not None and record.window_port is not None
        assert await page.evaluate("location.origin") == f"http://127.0.0.1:{record.window_port}"
        await page.evaluate("document.querySelector('#classroom-link').click()")
        await page.wait_for("!!document.querySelector('#tls-fingerprint')")
        shown = await page.evaluate("[...document.querySelectorAll('.address-text')].map(e => e.textContent)")
        assert shown and all(url.startswith("https://") and url.endswith(f":{port}/") for url in shown), shown
        fingerprint = await page.evaluate("document.querySelector('#tls-fingerprint code').textContent")
    finally:
        await page.close()
    lines = dict(line.split(":", 1) for line in ok(cli(data, "tls")).splitlines())
    assert fingerprint == lines["fingerprint"].strip()
    # Students' side: HTTPS with that certificate on the folder's port.
    pin = aiohttp.Fingerprint(bytes.fromhex(fingerprint.replace(":", "")))
    async with aiohttp.ClientSession() as session, session.get(f"https://127.0.0.1:{port}/healthz", ssl=pin) as health:
        assert health.status == 200

    desktop.close_window(display)
    assert desktop.wait(STOP_S) == 0, desktop.output()[-3000:]
    assert not port_open(port) and not port_open(record.window_port)
    assert not (data / "server.json").exists()
