"""The one-file binaries, built by packaging/build-binary.sh in a clean virtual environment and
checked by packaging/check-binary.sh the way a classroom machine runs them: a fresh folder, no
virtual environment on PATH, `--version`, `serve` until /healthz is all ok, `selftest`, and for
`labrunner-desktop` the window on Xvfb. The builds take minutes (PyInstaller), so this is slow: both
are started together, once per run (conftest.py), and test_deb.py packages the server binary."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from appliance.build_info import git_commit
from runner import image
from tests.conftest import REPO_ROOT
from tests.desktop.window import require_window_tools
from tests.packaging.conftest import BUILD_S, Binaries
from tests.requirements import require_sandbox

CHECK_S = 900


@pytest.mark.timeout(BUILD_S + CHECK_S)
@pytest.mark.parametrize("variant", ["labrunner", "labrunner-desktop"])
def test_the_binary_builds_and_passes_its_check_outside_any_virtual_environment(
    variant: str, binaries: Binaries
) -> None:
    require_sandbox()
    if variant == "labrunner-desktop":
        require_window_tools()
    binary = binaries.built(variant)
    checked = subprocess.run(
        ["bash", "packaging/check-binary.sh", str(binary)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=CHECK_S,
        # The binary runs under `env -i` there; the window check's tools run in this test's Python.
        env={k: v for k, v in os.environ.items() if not k.startswith("LABRUNNER_")}
        | {"LABRUNNER_CHECK_PYTHON": sys.executable},
    )
    report = checked.stdout + checked.stderr
    # Nothing of the build machine goes along (pip's direct_url.json named the checkout's path).
    leaks = subprocess.run(
        [
            f"build/binary/{variant}/venv/bin/python",
            "tests/packaging/bundle_leaks.py",
            f"dist/{variant}",
            str(REPO_ROOT),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=CHECK_S,
    )
    assert leaks.returncode == 0 and leaks.stdout == "", leaks.stdout + leaks.stderr[-3000:]
    assert checked.returncode == 0, report[-5000:]
    assert "check-binary: all checks passed" in report
    # The bundled sandbox files hash to the checkout's tag: the binary uses the image the checkout built.
    assert f"sandbox image {image.expected_ref()}" in report
    assert f"commit {git_commit()}" in report
    print(report)
