"""Which slow steps (reading, hashing, parsing a bundle of up to sync_bundle_max_bytes) ran on the
event loop, where they would hold up every other request, rather than in a worker thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest


def watch_event_loop(monkeypatch: pytest.MonkeyPatch, *targets: tuple[object, str]) -> list[str]:
    """Wraps each `(owner, name)` so that a call made on the event loop notes `name` in the list
    returned (a call from a worker thread notes nothing)."""
    on_loop: list[str] = []

    def watched(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                asyncio.get_running_loop()
                on_loop.append(name)
            except RuntimeError:
                pass
            return real(*args, **kwargs)

        return call

    for owner, name in targets:
        monkeypatch.setattr(owner, name, watched(name, getattr(owner, name)))
    return on_loop
