"""What the packaging tests check, each built once per test run and shared between them: the wheel
installed in a fresh virtual environment (test_wheel.py and test_attacks_issue12_packaging.py), the
one-file server binary (test_binary.py checks it, test_deb.py packages it) and the desktop binary
(test_binary.py).

PyInstaller works on one core, so the binaries this run needs are built side by side from the
moment the run's tests are collected, at a lower priority than the tests: their minutes pass while
the rest of the suite runs, instead of while the packaging tests wait."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

BUILD_S = 1800
VARIANTS = ("labrunner", "labrunner-desktop")


class Build:
    """packaging/build-binary.sh for one variant, running in the background from its start."""

    def __init__(self, variant: str) -> None:
        self.binary = REPO_ROOT / "dist" / variant
        self.log = tempfile.TemporaryFile()
        flags = ["--desktop"] if variant == "labrunner-desktop" else []
        self.process = subprocess.Popen(
            # Niced: the tests running meanwhile keep the CPU they need, the build takes what is left.
            ["nice", "-n", "15", "bash", "packaging/build-binary.sh", *flags],
            cwd=REPO_ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stop() ends the script and the PyInstaller it started alike
        )

    def wait(self) -> Path:
        """The built binary's path, once the build is done. Prints its size and seconds."""
        try:
            self.process.wait(timeout=BUILD_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait()
        self.log.seek(0)
        output = self.log.read().decode(errors="replace")
        assert self.process.returncode == 0, output[-5000:]
        print(output.splitlines()[-1])
        return self.binary

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait()
        self.log.close()


class Binaries:
    """The one-file binaries this run's tests need (`wanted`), all started when the first is asked for."""

    def __init__(self, wanted: set[str]) -> None:
        self.wanted = wanted
        self.builds: dict[str, Build] = {}

    def start(self, also: str | None = None) -> None:
        for each in sorted(self.wanted | ({also} if also else set())):
            if each not in self.builds:
                self.builds[each] = Build(each)

    def built(self, variant: str) -> Path:
        self.start(variant)
        return self.builds[variant].wait()

    def stop(self) -> None:
        for build in self.builds.values():
            build.stop()


def wanted_binaries(items: list[pytest.Item]) -> set[str]:
    """The variants this run's tests use: test_binary.py's `variant`s, and the server binary for
    test_deb.py's `server_binary`."""
    wanted: set[str] = set()
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "binaries" in fixtures and (callspec := getattr(item, "callspec", None)) is not None:
            wanted.add(callspec.params.get("variant"))
        if "server_binary" in fixtures:
            wanted.add("labrunner")
    return wanted & set(VARIANTS)


_STARTED = pytest.StashKey[Binaries]()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the builds this run will want now, not when the first packaging test asks."""
    wanted = wanted_binaries(session.items)
    if wanted and not session.config.option.collectonly:
        built = Binaries(wanted)
        built.start()
        session.config.stash[_STARTED] = built


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Also when no test got as far as asking for a binary (a failure, -x, Ctrl-C).
    started = session.config.stash.get(_STARTED, None)
    if started is not None:
        started.stop()


@pytest.fixture(scope="session")
def binaries(request: pytest.FixtureRequest) -> Iterator[Binaries]:
    built = request.config.stash.get(_STARTED, None) or Binaries(wanted_binaries(request.session.items))
    yield built
    built.stop()  # a build no test waited for (its test failed before asking) ends with the run


@pytest.fixture(scope="session")
def server_binary(binaries: Binaries) -> Path:
    """dist/labrunner, freshly built from this checkout (once per run)."""
    return binaries.built("labrunner")


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`labrunner` from the wheel, in a fresh virtual environment in a temporary folder (once per run)."""
    root = tmp_path_factory.mktemp("wheel")
    assert not root.is_relative_to(REPO_ROOT)
    built = subprocess.run(
        ["bash", "packaging/build-wheel.sh", str(root / "dist"), sys.executable],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    wheel = Path(built.stdout.strip())
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [venv / "bin/python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel],
        check=True,
        timeout=600,
    )
    return venv / "bin" / "labrunner"
