"""Locks on a data folder, held with flock so a killed process never leaves one behind.

- The server lock: every running server holds it shared; a restore takes it exclusively, so it
  refuses while any server runs on the folder.
- The maintenance lock: backups, restores and migrations exclude each other, across processes
  (the CLI beside a running server) and inside one (the schedule beside an admin's request).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from appliance.errors import Conflict

SERVER_LOCK = "server.lock"
MAINTENANCE_LOCK = "maintenance.lock"


class Held:
    """An open lock file: the lock lasts while it is open."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops its flock
            self._fd = None


def _take(path: Path, operation: int) -> Held | None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, operation)
    except BlockingIOError:
        os.close(fd)
        return None
    return Held(fd)


def hold_server(data_dir: Path) -> Held:
    """Taken by a server for as long as it runs (shared: servers do not exclude each other)."""
    held = _take(data_dir / SERVER_LOCK, fcntl.LOCK_SH)
    if held is None:
        raise Conflict("restore_running", f"a restore is replacing the data in {data_dir}; start the server after it")
    return held


@contextmanager
def no_server(data_dir: Path) -> Iterator[None]:
    """While inside, no server can start on `data_dir`; refused if one runs."""
    held = _take(data_dir / SERVER_LOCK, fcntl.LOCK_EX | fcntl.LOCK_NB)
    if held is None:
        raise Conflict(
            "server_running",
            f"a Labrunner server is running on {data_dir}: stop it first (the restore replaces its database)",
        )
    try:
        yield
    finally:
        held.release()


@contextmanager
def maintenance(data_dir: Path, what: str, *, wait: bool = False) -> Iterator[None]:
    """One backup, restore or migration at a time on `data_dir`; refused at once unless `wait`."""
    held = _take(data_dir / MAINTENANCE_LOCK, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    if held is None:
        raise Conflict(
            "maintenance_running", f"cannot start the {what}: a backup, restore or migration is running on {data_dir}"
        )
    try:
        yield
    finally:
        held.release()


def server_running(data_dir: Path) -> bool:
    """Whether a server (or a restore) holds `data_dir` now: asked by trying the lock, never waiting."""
    held = _take(data_dir / SERVER_LOCK, fcntl.LOCK_EX | fcntl.LOCK_NB)
    if held is None:
        return True
    held.release()
    return False
