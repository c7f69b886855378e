"""Red team of the wheel the one-file binary is made from (issue 12): what it carries, and whether
the installed program can be steered by the folder it is started in. A student who can write a
folder the teacher starts `labrunner` from (a shared drive, /tmp) plants `appliance/`, `schema/`,
`ui/templates/`, `sandbox/` and a `git` and `docker` there; none of them may be used."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import zipfile
from pathlib import Path

from runner import image
from tests.packaging.test_wheel import clean_env, fetch, labrunner, served
from tests.runner.appliance_process import free_port

PACKAGES = ("appliance/", "runner/", "sandbox/", "schema/", "ui/", "labrunner-")
FORBIDDEN_SUFFIXES = (".pem", ".key", ".sqlite3", ".db", ".pyc", ".log", ".whl", ".env")


def test_the_wheel_carries_the_program_only(installed: Path) -> None:
    wheel = next((installed.parents[2] / "dist").glob("labrunner-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert names and all(name.startswith(PACKAGES) for name in names), [n for n in names if not n.startswith(PACKAGES)]
    for name in names:
        parts = name.split("/")
        assert not name.endswith(FORBIDDEN_SUFFIXES), name
        assert not {".git", "tests", "__pycache__", ".data", "build", "dist"} & set(parts), name
        assert parts[-1] not in ("conftest.py", "build_info.json", "secret.key", "server.json", "config.toml"), name


def _plant(folder: Path, marker: Path) -> None:
    hijack = f'open("{marker}", "a").write(__name__ + "\\n")\n'
    for package in ("appliance", "runner", "sandbox", "schema", "ui"):
        (folder / package).mkdir(parents=True, exist_ok=True)
        (folder / package / "__init__.py").write_text(hijack)
    (folder / "appliance" / "cli.py").write_text(hijack + "def main():\n    return 0\n")
    (folder / "schema" / "0021_planted.sql").write_text("CREATE TABLE planted (x);\n")
    (folder / "sandbox" / "planted.txt").write_text("changes the content tag if read\n")
    (folder / "ui" / "templates" / "pages").mkdir(parents=True)
    (folder / "ui" / "templates" / "page.html").write_text("PLANTED TEMPLATE")
    (folder / "ui" / "templates" / "pages" / "login.html").write_text("PLANTED TEMPLATE")
    (folder / ".git").mkdir()
    for program in ("git", "docker"):
        (folder / program).write_text(f'#!/bin/sh\necho "{program} $*" >> {marker}\n')
        (folder / program).chmod(0o755)


def test_files_planted_in_the_current_folder_are_not_used(installed: Path, tmp_path: Path) -> None:
    folder = tmp_path / "shared-drive"
    folder.mkdir()
    marker = tmp_path / "hijacked.txt"
    _plant(folder, marker)
    data = tmp_path / "data"

    # Its PATH names the planted folder first (what a PATH hijack achieves): no git, no docker by name.
    version = subprocess.run(
        [installed, "--version"],
        cwd=folder,
        env=clean_env(folder) | {"PATH": f"{folder}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = version.stdout.splitlines()
    assert lines == ["labrunner 0.1.0", "commit unknown", f"sandbox image {image.expected_ref()}"]
    applied = labrunner(installed, folder, "--data-dir", str(data), "migrate")
    assert "applied 0001_core" in applied and "planted" not in applied
    with sqlite3.connect(data / "labrunner.sqlite3") as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "planted" not in tables
    with served(installed, folder, data, free_port()) as url:
        login = fetch(f"{url}/login")
    assert "<form" in login and "PLANTED" not in login
    assert not marker.exists(), marker.read_text()
