"""Red team of the zeroconf announcement (issue 12): what a student's laptop on the LAN learns from
it, with HTTPS on (the window's plain loopback port must not be announced), and names that would
put control characters into every device's list. Loopback only: no multicast onto the real network."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from zeroconf import IPVersion, ServiceBrowser, Zeroconf

from appliance import __version__
from appliance.server_record import read_file
from appliance.settings import SettingsError, load_settings
from tests.core.test_lan_announce import SERVICE, Seen
from tests.runner.appliance_process import ApplianceProcess, free_port


def test_with_https_on_the_announcement_names_the_served_port_and_nothing_of_the_machine(tmp_path: Path) -> None:
    room = f"Labrunner rt12 {uuid.uuid4().hex[:8]}"
    port = free_port()
    seen = Seen()
    browser_zc = Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    browser = ServiceBrowser(browser_zc, SERVICE, seen)
    env = {"LABRUNNER_ROOM_NAME": room, "LABRUNNER_SANDBOX_POOL_SIZE": "0", "LABRUNNER_TLS": "self-signed"}
    (tmp_path / "data").mkdir()
    appliance = ApplianceProcess(tmp_path / "data", port, env=env)
    try:
        appliance.start()
        info = seen.wait_for(f"{room}.{SERVICE}", present=True)
        record = read_file(tmp_path / "data" / "server.json")
        assert info is not None and record is not None and record.window_port is not None
        assert info.port == port != record.window_port
        # The path and the version, nothing else: no data folder, user, fingerprint or key.
        assert info.properties == {b"path": b"/", b"version": __version__.encode()}
        assert str(tmp_path).encode() not in (info.text or b"")
    finally:
        appliance.stop()
        browser.cancel()
        browser_zc.close()


@pytest.mark.parametrize(
    "room", ["Room\x1b[31m12", "Room\u202e21", "Room\u200b12", "Room\x0012", "Room\t12", "Room\r\n12", ".", ""]
)
def test_a_room_name_with_control_or_invisible_characters_is_refused(tmp_path: Path, room: str) -> None:
    if room == "":
        # Empty means the host's own name, made into a DNS label.
        assert load_settings(data_dir=tmp_path, overrides={"room_name": room}, environ={}).room_name == ""
        return
    with pytest.raises(SettingsError, match="room_name"):
        load_settings(data_dir=tmp_path, overrides={"room_name": room}, environ={})
