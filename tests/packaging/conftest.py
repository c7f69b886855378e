"""The one-file server binary, built once per test run: test_binary.py checks it and test_deb.py
packages it, so its minutes of PyInstaller are spent once."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

BUILD_S = 1800


def build_binary(*flags: str) -> Path:
    """packaging/build-binary.sh with `flags`; the built binary's path. Prints its size and seconds."""
    built = subprocess.run(
        ["bash", "packaging/build-binary.sh", *flags], cwd=REPO_ROOT, capture_output=True, text=True, timeout=BUILD_S
    )
    assert built.returncode == 0, built.stderr[-5000:]
    print(built.stderr.splitlines()[-1])  # the size and the build's seconds
    return REPO_ROOT / "dist" / ("labrunner-desktop" if "--desktop" in flags else "labrunner")


@pytest.fixture(scope="session")
def server_binary() -> Path:
    """dist/labrunner, freshly built from this checkout (once per run)."""
    return build_binary()
