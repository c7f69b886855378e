"""The harness's side of the fork server when there is no zygote to be had, run on the host
(plain stdlib code) without Docker: the harness must take that calmly and run tests the plain way."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from sandbox.harness import forkserver
from sandbox.protocol import Limits

LIMITS = Limits(
    cpu_ms=1000,
    wall_ms=4000,
    memory_bytes=1 << 28,
    address_space_bytes=None,
    file_size_bytes=1 << 20,
    open_files=64,
    output_bytes=1 << 20,
)


def test_a_zygote_that_never_says_ready_is_dropped(tmp_path: Path) -> None:
    # A python3 without the image's hook runs the (absent) program and ends instead of serving.
    server = forkserver.ForkServer((sys.executable, "-B", "main.py"), {"PATH": os.defpath})
    run_dir = tmp_path / "run"
    server.ensure(str(run_dir))
    assert server.spared() is None
    assert not run_dir.exists()  # left as it was found, for the test's own run directory
    read, write = os.pipe()
    try:
        with pytest.raises(forkserver.Unavailable):
            server.start(str(tmp_path), {}, LIMITS, (read, write, write, write))
    finally:
        os.close(read)
        os.close(write)
    server.close()
