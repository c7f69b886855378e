"""The built wheel carries everything the program reads at run time: installed into a fresh
virtual environment outside the checkout, its `labrunner` migrates, creates an account, serves
pages with their static files and reports healthy, and names the sandbox image the checkout built."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

from runner import image
from tests.conftest import DEFAULT_PASSWORD, REPO_ROOT
from tests.requirements import require_sandbox
from tests.runner.appliance_process import free_port

START_S = 60


def clean_env(home: Path) -> dict[str, str]:
    """No checkout on the import path and none of this test run's settings."""
    drop = ("LABRUNNER_", "PYTHON", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)} | {"HOME": str(home)}


def labrunner(program: Path, folder: Path, *args: str, stdin: str = "") -> str:
    done = subprocess.run(
        [program, *args], input=stdin, capture_output=True, text=True, cwd=folder, env=clean_env(folder), timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_wheel_carries_migrations_pages_legal_texts_and_the_sandbox_files(installed: Path) -> None:
    wheel = next((installed.parents[2] / "dist").glob("labrunner-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(
        ["git", "ls-files", "schema", "sandbox", "ui/templates", "ui/static", "appliance/legal_texts"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert tracked and sorted(set(tracked) - names) == []


def test_the_installed_program_migrates_creates_an_account_and_serves(installed: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    applied = labrunner(installed, tmp_path, "--data-dir", str(data), "migrate")
    assert "applied 0001_core" in applied and "applied 0020_sync" in applied
    created = labrunner(
        installed,
        tmp_path,
        "--data-dir",
        str(data),
        "users",
        "create",
        "--role",
        "admin",
        "--username",
        "ada",
        "--password-stdin",
        stdin=DEFAULT_PASSWORD,
    )
    assert "created admin 'ada'" in created

    port = free_port()
    with served(installed, tmp_path, data, port) as url:
        health = json.loads(fetch(f"{url}/healthz"))
        assert health["db"] == "ok", health
        login = fetch(f"{url}/login")
        assert "<form" in login
        assert "body" in fetch(f"{url}/static/style.css")
        legal = json.loads(fetch(f"{url}/api/legal/terms"))
        assert legal["markdown"].strip()


def test_the_installed_program_names_the_image_the_checkout_built(installed: Path, tmp_path: Path) -> None:
    """The bundled sandbox files hash to the checkout's tag, so the installed program uses the image
    `labrunner sandbox build` made from the checkout; a wheel has no git, so its commit is unknown."""
    lines = labrunner(installed, tmp_path, "--version").splitlines()
    assert lines == ["labrunner 0.1.0", "commit unknown", f"sandbox image {image.expected_ref()}"]


def test_the_installed_program_reports_healthy_with_the_sandbox(installed: Path, tmp_path: Path) -> None:
    require_sandbox()
    data = tmp_path / "data"
    with served(installed, tmp_path, data, free_port()) as url:
        deadline = time.monotonic() + START_S
        while (health := json.loads(fetch(f"{url}/healthz")))["status"] != "ok" and time.monotonic() < deadline:
            time.sleep(0.5)
    assert health == {"status": "ok", "db": "ok", "runner": "ok", "image": "ok"}


def fetch(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return str(reply.read().decode())
    except urllib.error.HTTPError as error:  # /healthz answers 503 while degraded, with its report
        return str(error.read().decode())


@contextlib.contextmanager
def served(program: Path, folder: Path, data: Path, port: int) -> Iterator[str]:
    """`labrunner serve` from the installed program, answering on its URL; stopped with SIGTERM after."""
    url = f"http://127.0.0.1:{port}"
    log_path = folder / f"serve-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [program, "--data-dir", str(data), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=folder,
            env=clean_env(folder),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_S
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                fetch(f"{url}/healthz")
                break
            except OSError:
                assert time.monotonic() < deadline, f"serve did not answer within {START_S} s:\n{log_path.read_text()}"
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
