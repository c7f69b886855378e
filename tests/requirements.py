"""What a test needs from the machine beyond Python, and what happens when it is missing.

A test that needs the Docker engine with this checkout's sandbox image, or Debian's Chromium, is
skipped on a developer's machine where that is missing, and FAILS when the environment variable
``CI`` is set: CI must never pass by skipping. Every test suite's check goes through `unavailable`.

- ``unavailable(reason)``: skip, or fail under CI.
- ``sandbox_missing() -> str | None``: why jobs cannot run in the sandbox here (None: they can).
- ``require_sandbox()``: the engine and the image, or `unavailable`. The ``sandbox_ready`` fixture
  (tests/conftest.py) calls it.

Set the machine up with ``packaging/ensure-docker.sh``, ``labrunner sandbox build`` and
``packaging/ensure-browser.sh`` (``packaging/test.sh`` runs all three).
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when CI is set."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so this test must run here", pytrace=False)
    pytest.skip(reason)


def sandbox_missing(timeout_s: int = 30) -> str | None:
    """Why the sandbox cannot run jobs on this machine, or None when the engine answers and this
    checkout's image is present."""
    from runner import engine, image

    try:
        client = engine.connect(timeout_s=timeout_s)
        try:
            status = image.image_status(client)
        finally:
            client.close()
    except Exception as exc:  # whatever the engine or its transport raises: no sandbox here
        return f"no Docker engine ({engine.as_infra_error(exc).message}): run packaging/ensure-docker.sh"
    if status != "present":
        return f"the sandbox image {image.expected_ref()} is {status}: run `labrunner sandbox build`"
    return None


def require_sandbox() -> None:
    """Return when jobs can run in the real sandbox; otherwise skip, or fail under CI."""
    if (reason := sandbox_missing()) is not None:
        unavailable(reason)
