"""Readiness for the Debian package's Type=notify unit: `serve` sends READY=1 to $NOTIFY_SOCKET once
it answers, and nothing is sent (or needed) without that variable."""

from __future__ import annotations

import socket
import urllib.request
import uuid
from pathlib import Path

import pytest

from appliance import systemd_notify
from tests.runner.appliance_process import ApplianceProcess, free_port


def test_serve_says_ready_to_systemd_once_it_answers(tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify"))
    listener.settimeout(60)
    server = ApplianceProcess(
        tmp_path, free_port(), {"NOTIFY_SOCKET": str(tmp_path / "notify"), "LABRUNNER_LAN_ANNOUNCE": "false"}
    )
    server.start()
    try:
        assert listener.recv(256) == b"READY=1"
        with urllib.request.urlopen(f"{server.url}/healthz", timeout=10) as reply:  # it answered by then
            assert reply.status in (200, 503)
    finally:
        server.stop()
        listener.close()


def test_an_abstract_socket_is_reached_and_no_socket_means_no_message(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"labrunner-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind("\0" + name)
        listener.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        systemd_notify.ready()
        assert listener.recv(256) == b"READY=1"
        monkeypatch.delenv("NOTIFY_SOCKET")
        systemd_notify.ready()  # no systemd: nothing to tell, no error
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.recv(256)
