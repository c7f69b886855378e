"""The command line (DESIGN.md §7), run as a real process: `python -m appliance ...`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import REPO_ROOT

PASSWORD = "a-long-admin-password"
# The test's own PostgreSQL database under --db=postgresql ("": the SQLite file in the data folder).
DATABASE_URL = ""


@pytest.fixture(autouse=True)
def _database(settings_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The data folder's database, as new as a fresh folder's: the command line migrates it."""
    monkeypatch.setattr(
        sys.modules[__name__], "DATABASE_URL", settings_factory(data_dir=tmp_path, empty_database=True).database_url
    )


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABRUNNER_")}
    if DATABASE_URL:
        env["LABRUNNER_DATABASE_URL"] = DATABASE_URL
    env["PYTHONIOENCODING"] = "utf-8"
    # `serve` listens on every interface here: no multicast onto the machine's real network
    # (tests/core/test_lan_announce.py announces on loopback).
    env["LABRUNNER_LAN_ANNOUNCE"] = "false"
    return env


def cli(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", "--data-dir", str(data_dir), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env=_env(),
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_users_create(tmp_path: Path) -> None:
    created = cli(
        tmp_path, "users", "create", "--role", "admin", "--username", "boss", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert created.returncode == 0, created.stderr
    assert "created admin 'boss'" in created.stdout
    assert PASSWORD not in created.stdout + created.stderr

    again = cli(
        tmp_path, "users", "create", "--role", "teacher", "--username", "BOSS", "--password-stdin", stdin=PASSWORD
    )
    assert again.returncode == 1 and "username_taken" in again.stderr, again
    weak = cli(
        tmp_path, "users", "create", "--role", "teacher", "--username", "teacher1", "--password-stdin", stdin="short\n"
    )
    assert weak.returncode == 1 and "weak_password" in weak.stderr, weak
    no_stdin = cli(tmp_path, "users", "create", "--role", "teacher", "--username", "teacher2")
    assert no_stdin.returncode == 2 and "--password-stdin" in no_stdin.stderr, no_stdin
    bad_role = cli(
        tmp_path, "users", "create", "--role", "root", "--username", "teacher3", "--password-stdin", stdin=PASSWORD
    )
    assert bad_role.returncode == 2, bad_role
    for result in (again, weak, no_stdin, bad_role):
        assert "Traceback" not in result.stderr


def test_bad_configuration_is_a_clean_error(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("no_such_setting = 1\n", encoding="utf-8")
    result = cli(tmp_path, "migrate", "--status")
    assert result.returncode == 2
    assert "unknown setting 'no_such_setting'" in result.stderr and "Traceback" not in result.stderr


async def _read_banner(process: asyncio.subprocess.Process) -> list[str]:
    lines: list[str] = []
    assert process.stdout is not None
    async with asyncio.timeout(45):
        while True:
            raw = await process.stdout.readline()
            if not raw:
                raise AssertionError(f"serve exited early: {lines}")
            line = raw.decode("utf-8").rstrip("\n")
            lines.append(line)
            if line.startswith("Data folder:"):
                return lines


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_serve_prints_urls_answers_and_stops(tmp_path: Path, signum: signal.Signals) -> None:
    created = cli(
        tmp_path, "users", "create", "--role", "admin", "--username", "boss", "--password-stdin", stdin=PASSWORD
    )
    assert created.returncode == 0, created.stderr
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "appliance",
        "--data-dir",
        str(tmp_path),
        "serve",
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,  # logs interleave; the banner lines are found by prefix
        cwd=REPO_ROOT,
        env=_env(),
    )
    try:
        banner = await _read_banner(process)
        assert f"http://127.0.0.1:{port}/" in [line.strip() for line in banner], banner
        assert any(str(tmp_path) in line for line in banner)
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/healthz") as response:
                health = json.loads(await response.read())
                assert set(health) >= {"status", "db", "runner", "image"}, health
                assert health["db"] == "ok"
                assert response.status == (200 if health["status"] == "ok" else 503)
            login = {"username": "boss", "password": PASSWORD}
            async with session.post(f"{base}/api/auth/login", json=login) as response:
                assert response.status == 200, await response.text()
                me = (await response.json())["user"]
                assert me["role"] == "admin"
                assert me["pending_legal"]  # created outside the web: accepts at first login
        process.send_signal(signum)
        async with asyncio.timeout(30):
            code = await process.wait()
        assert code == 0
        rest = (await process.stdout.read()).decode("utf-8")
        assert "stopping" in rest
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    # Stopped means stopped: nothing listens on the port any more.
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
