"""Runner tests need the real Docker engine and the sandbox image of this checkout.

Without them a test fails when CI is set (CI must prove the sandbox) and is skipped otherwise.
"""

from __future__ import annotations

import os

import pytest


def require_sandbox() -> None:
    from runner import engine, image
    from runner.executor import InfraError

    try:
        client = engine.connect(timeout_s=10)
        try:
            client.ping()
            state = image.image_status(client)
        finally:
            client.close()
    except (InfraError, Exception) as exc:  # any engine failure means: no sandbox here
        reason = f"the Docker engine is not usable: {exc}"
    else:
        if state == "present":
            return
        reason = f"the sandbox image is {state}: run `labrunner sandbox build`"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def sandbox_ready() -> None:
    require_sandbox()
