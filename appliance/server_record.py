"""Where a running server of a data folder listens: `server.json` in the folder, written once the
server listens and removed when it stops cleanly, so `labrunner desktop` can attach to it.

The server lock (appliance.data_locks) says whether a server runs; this record only says where.
A record left by a killed server is stale: it is believed only while the lock is held.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from appliance import data_locks

RECORD_FILE = "server.json"


@dataclass(frozen=True)
class ServerRecord:
    host: str
    port: int
    pid: int
    # With TLS on, the plain-HTTP loopback port the window uses (appliance.listeners).
    window_port: int | None = None

    @property
    def local_url(self) -> str:
        return local_url(self.host, self.port, self.window_port)


def local_url(host: str, port: int, window_port: int | None = None) -> str:
    """A server listening on `host` as seen from this machine: over loopback, where one-time
    links work (a server on one LAN address only is reached there); with TLS on, its plain-HTTP
    loopback port for the window."""
    if window_port is not None:
        return f"http://127.0.0.1:{window_port}"
    if host in ("", "0.0.0.0", "localhost") or host.startswith("127."):
        return f"http://127.0.0.1:{port}"
    if host in ("::", "::1"):
        return f"http://[::1]:{port}"
    return f"http://{host}:{port}"


def write(data_dir: Path, host: str, port: int, window_port: int | None = None) -> None:
    path = data_dir / RECORD_FILE
    partial = path.with_name(f".{RECORD_FILE}.{os.getpid()}")
    record = {"host": host, "port": port, "pid": os.getpid(), "window_port": window_port}
    partial.write_text(json.dumps(record), encoding="utf-8")
    partial.replace(path)  # a reader sees the old record or the whole new one


def remove(data_dir: Path) -> None:
    """Remove this process's record (another server on the same folder keeps its own)."""
    path = data_dir / RECORD_FILE
    record = read_file(path)
    if record is None or record.pid == os.getpid():
        path.unlink(missing_ok=True)


def read_file(path: Path) -> ServerRecord | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        window_port = data.get("window_port")
        return ServerRecord(
            str(data["host"]), int(data["port"]), int(data["pid"]), None if window_port is None else int(window_port)
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running(data_dir: Path, wait_s: float) -> ServerRecord | None:
    """The record of the server running on `data_dir`, or None when none runs. A server that
    holds the lock but has not written its record yet (still starting) is waited for up to
    `wait_s`; TimeoutError if it never says where it listens."""
    deadline = time.monotonic() + wait_s
    while data_locks.server_running(data_dir):
        record = read_file(data_dir / RECORD_FILE)
        if record is not None:
            return record
        if time.monotonic() >= deadline:
            raise TimeoutError(f"a server holds {data_dir} but has not said where it listens")
        time.sleep(0.2)
    return None
