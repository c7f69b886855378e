"""`labrunner setup-link`, as the Debian package's postinst runs it: real processes, a config file
named by LABRUNNER_CONFIG, a link that opens the setup page over loopback once the server runs, and
none once a teacher or admin exists."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.conftest import REPO_ROOT
from tests.runner.appliance_process import ApplianceProcess, create_account, free_port

LINK = re.compile(r"http://127\.0\.0\.1:(\d+)/desktop/setup/[A-Za-z0-9_-]+")


def setup_link(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABRUNNER_")} | {"LABRUNNER_CONFIG": str(config)}
    return subprocess.run(
        [sys.executable, "-m", "appliance", "setup-link", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=120,
        check=False,
    )


def config_file(folder: Path, port: int, *lines: str) -> Path:
    path = folder / "config.toml"
    path.write_text("\n".join(['data_dir = "data"', f"port = {port}", "lan_announce = false", *lines]) + "\n")
    return path


def opens_the_setup_page(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return reply.status == 200 and 'id="setup-form"' in reply.read().decode()


def test_a_link_made_before_the_server_starts_opens_the_setup_page_once_it_runs(tmp_path: Path) -> None:
    port = free_port()
    config = config_file(tmp_path, port)
    before = setup_link(config)
    assert before.returncode == 0, before.stderr
    assert "not running yet" in before.stdout and "only from 127.0.0.1" in before.stdout
    early = LINK.search(before.stdout)
    assert early is not None and early.group(1) == str(port), before.stdout

    server = ApplianceProcess(tmp_path / "data", port, {"LABRUNNER_LAN_ANNOUNCE": "false"})
    server.start()
    try:
        assert opens_the_setup_page(early.group(0))
        running = setup_link(config, "--if-needed")
        assert running.returncode == 0 and "not running yet" not in running.stdout, running
        later = LINK.search(running.stdout)
        assert later is not None and later.group(0) != early.group(0)
        assert opens_the_setup_page(later.group(0))

        create_account(tmp_path / "data", "admin", "ada")
        quiet = setup_link(config, "--if-needed")
        assert (quiet.returncode, quiet.stdout) == (0, ""), quiet  # an upgrade has nothing to set up
        refused = setup_link(config)
        assert refused.returncode == 1 and "(accounts_exist)" in refused.stderr, refused
    finally:
        server.stop()


def test_with_https_on_the_link_uses_the_running_servers_loopback_port(tmp_path: Path) -> None:
    port = free_port()
    config = config_file(tmp_path, port, 'tls = "self-signed"')
    (tmp_path / "data").mkdir()
    server = ApplianceProcess(
        tmp_path / "data", port, {"LABRUNNER_LAN_ANNOUNCE": "false", "LABRUNNER_TLS": "self-signed"}
    )
    server.start()
    try:
        made = setup_link(config)
        assert made.returncode == 0, made.stderr
        link = LINK.search(made.stdout)
        assert link is not None and link.group(1) != str(port), made.stdout  # the plain window port
        assert opens_the_setup_page(link.group(0))
    finally:
        server.stop()


def test_a_server_on_one_lan_address_gets_no_link_it_would_refuse(tmp_path: Path) -> None:
    config = config_file(tmp_path, free_port(), 'host = "192.0.2.7"')
    refused = setup_link(config)
    assert refused.returncode == 1 and "(host_not_local)" in refused.stderr, refused
    assert LINK.search(refused.stdout) is None
    database = tmp_path / "data" / "labrunner.sqlite3"
    if database.exists():
        with sqlite3.connect(database) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            assert "login_links" not in tables or db.execute("SELECT count(*) FROM login_links").fetchone()[0] == 0
