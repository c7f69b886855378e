"""The appliance announces itself by zeroconf: a browser on this machine finds a real `serve` process
under the room's name, with its port and address, and loses it at the clean stop.

Everything stays on loopback (the server listens on 127.0.0.1, so that is the one address it
announces on): the test sends no multicast onto the machine's real network."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path

import pytest
from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, ServiceListener, Zeroconf

from appliance import __version__, lan_announce
from appliance.settings import Settings, SettingsError, load_settings
from tests.runner.appliance_process import ApplianceProcess, free_port

SERVICE = "_http._tcp.local."


class Seen(ServiceListener):
    """What a zeroconf browser saw, as a person's device would list it."""

    def __init__(self) -> None:
        self.current: dict[str, ServiceInfo | None] = {}
        self.changed = threading.Condition()

    def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        info = zc.get_service_info(type_, name, timeout=3000)
        with self.changed:
            self.current[name] = info
            self.changed.notify_all()

    def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self.add_service(zc, type_, name)

    def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        with self.changed:
            self.current.pop(name, None)
            self.changed.notify_all()

    def wait_for(self, name: str, *, present: bool, timeout_s: float = 20) -> ServiceInfo | None:
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while (name in self.current and self.current[name] is not None) != present:
                left = deadline - time.monotonic()
                if left <= 0:
                    state = "appear" if present else "go away"
                    raise AssertionError(f"{name!r} did not {state}; seen: {sorted(self.current)}")
                self.changed.wait(left)
            return self.current.get(name)


def test_a_zeroconf_browser_finds_the_running_appliance_and_loses_it_at_stop(tmp_path: Path) -> None:
    room = f"Labrunner test {uuid.uuid4().hex[:8]}"
    name = f"{room}.{SERVICE}"
    port = free_port()
    seen = Seen()
    browser_zc = Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    browser = ServiceBrowser(browser_zc, SERVICE, seen)
    # No sandboxes started ahead: this test needs none.
    appliance = ApplianceProcess(tmp_path, port, env={"LABRUNNER_ROOM_NAME": room, "LABRUNNER_SANDBOX_POOL_SIZE": "0"})
    try:
        appliance.start()
        info = seen.wait_for(name, present=True)
        assert info is not None
        assert info.port == port
        assert info.parsed_addresses() == ["127.0.0.1"]
        assert info.properties == {b"path": b"/", b"version": __version__.encode()}
        assert f"Announced on the LAN as {room!r}" in appliance.log.read_text()
        appliance.stop()
        # The goodbye at the clean stop, not the record's expiry, takes it off the list.
        seen.wait_for(name, present=False, timeout_s=10)
    finally:
        appliance.stop()
        browser.cancel()
        browser_zc.close()


def test_the_desktop_windows_own_server_announces_itself_too(tmp_path: Path) -> None:
    from appliance import migrations
    from ui.desktop.server_thread import InProcessServer

    room = f"Labrunner test {uuid.uuid4().hex[:8]}"
    name = f"{room}.{SERVICE}"
    settings = _settings(tmp_path, room_name=room, port=free_port(), sandbox_pool_size=0)
    migrations.migrate(settings.database_location, settings.backup_dir)
    seen = Seen()
    browser_zc = Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    browser = ServiceBrowser(browser_zc, SERVICE, seen)
    server = InProcessServer(settings)
    stopped = False
    try:
        server.start()
        info = seen.wait_for(name, present=True)
        assert info is not None and info.port == settings.port
        stopped = server.stop(60)
        assert stopped
        seen.wait_for(name, present=False, timeout_s=10)
    finally:
        if not stopped:
            server.stop(60)
        browser.cancel()
        browser_zc.close()


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    return load_settings(data_dir=tmp_path, overrides={"host": "127.0.0.1", **overrides}, environ={})


async def test_two_appliances_with_one_room_name_get_two_names(tmp_path: Path) -> None:
    room = f"Labrunner test {uuid.uuid4().hex[:8]}"
    first = await lan_announce.announce(_settings(tmp_path, room_name=room, port=free_port()))
    try:
        second = await lan_announce.announce(_settings(tmp_path, room_name=room, port=free_port()))
        try:
            assert first.name == room
            assert second.name != room and second.name.startswith(room)
        finally:
            await second.close()
    finally:
        await first.close()


async def test_switched_off_it_announces_nothing(tmp_path: Path) -> None:
    said: list[str] = []
    assert await lan_announce.start(_settings(tmp_path, lan_announce=False), said.append) is None
    assert said == []


async def test_a_lan_that_refuses_zeroconf_leaves_the_server_serving(tmp_path: Path) -> None:
    said: list[str] = []
    # 198.51.100.0/24 is for documentation: no interface of this machine holds that address.
    settings = _settings(tmp_path, host="198.51.100.77")
    assert await asyncio.wait_for(lan_announce.start(settings, said.append), 30) is None
    assert len(said) == 1 and said[0].startswith("Not announced on the LAN by zeroconf"), said


@pytest.mark.parametrize("room", ["Room 12.1", "x" * 64, "Room\n12"])
def test_a_room_name_that_is_no_dns_label_is_refused(tmp_path: Path, room: str) -> None:
    with pytest.raises(SettingsError, match="room_name"):
        _settings(tmp_path, room_name=room)


def test_the_default_room_name_is_the_host_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lan_announce.socket, "gethostname", lambda: "lab-pc_3.school.example")
    assert lan_announce.room_name(_settings(tmp_path)) == "lab-pc-3"
    assert lan_announce.room_name(_settings(tmp_path, room_name="Room 12")) == "Room 12"
