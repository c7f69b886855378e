"""Where a running server listens: believed only while a server holds the data folder's lock."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appliance import data_locks, server_record
from ui.desktop.progress import Progress
from ui.desktop.session import DesktopError, Session


def test_no_server_no_record_even_if_a_killed_one_left_its_file(tmp_path: Path) -> None:
    server_record.write(tmp_path, "0.0.0.0", 8123)
    assert server_record.running(tmp_path, wait_s=1) is None


def test_a_running_server_is_found_where_it_listens(tmp_path: Path) -> None:
    held = data_locks.hold_server(tmp_path)
    try:
        server_record.write(tmp_path, "0.0.0.0", 8123)
        record = server_record.running(tmp_path, wait_s=1)
        assert record is not None and record.local_url == "http://127.0.0.1:8123"
        server_record.remove(tmp_path)
        # Holding the lock without saying where: waited for, then a clear error.
        with pytest.raises(TimeoutError):
            server_record.running(tmp_path, wait_s=0.5)
    finally:
        held.release()
    assert not (tmp_path / server_record.RECORD_FILE).exists()


def test_a_running_server_on_one_lan_address_alone_is_not_attached_to(settings_factory: Callable[..., Any]) -> None:
    """The window's link is accepted from loopback only: attaching to a server that listens on a
    LAN address alone would have its link refused and spent, so the window says what to do instead."""
    settings = settings_factory()
    held = data_locks.hold_server(settings.data_dir)
    try:
        server_record.write(settings.data_dir, "192.0.2.2", 8123)
        session = Session(settings, None, Progress(lambda _line: None))
        with pytest.raises(DesktopError, match=r"listens on 192\.0\.2\.2 only.*--host 0\.0\.0\.0"):
            session.prepare()
        assert not session.attached
    finally:
        held.release()
