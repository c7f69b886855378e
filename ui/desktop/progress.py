"""The start-up steps the loading view shows (and the terminal prints), shared between threads."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

log = logging.getLogger(__name__)

# What the window does before it shows the teacher's page, in order.
STEPS = (
    ("engine", "Docker engine checked"),
    ("image", "Sandbox image present"),
    ("database", "Database migrated"),
    ("server", "Server listening"),
    ("login", "Logging in"),
)


@dataclass
class Step:
    key: str
    label: str
    state: str = "pending"  # pending, running, done, failed, skipped
    detail: str = ""


# An update shown by the window's loading view at most this often (an image build prints fast).
_NOTE_INTERVAL_S = 0.25


class Progress:
    """Written by the starter thread; each change is printed (`echo`) and handed to `show` (the
    loading view), from that thread, so nothing shows after the window has left the loading view."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self._echo = echo
        self._show: Callable[[dict[str, object]], None] | None = None
        self._lock = threading.Lock()
        self._steps = {key: Step(key, label) for key, label in STEPS}
        self._error = ""
        self._last_note = 0.0

    def show_with(self, show: Callable[[dict[str, object]], None]) -> None:
        self._show = show

    def _shown(self) -> None:
        if self._show is None:
            return
        try:
            self._show(self.snapshot())
        except Exception:  # the view is only a view: start-up goes on (the terminal has every step)
            log.warning("the loading view could not show a step", exc_info=True)

    def update(self, key: str, state: str, detail: str = "") -> None:
        with self._lock:
            step = self._steps[key]
            changed = step.state != state
            step.state, step.detail = state, detail
        if changed or state == "failed":
            self._echo(f"{step.label}: {state}{' — ' + detail if detail else ''}")
        self._shown()

    def note(self, key: str, detail: str) -> None:
        """A running step's latest line (an image build's output): shown, not printed."""
        with self._lock:
            self._steps[key].detail = detail
        if time.monotonic() - self._last_note >= _NOTE_INTERVAL_S:
            self._last_note = time.monotonic()
            self._shown()

    def fail(self, message: str) -> None:
        """Start-up cannot go on: the loading view shows why."""
        with self._lock:
            self._error = message
        self._echo(f"error: {message}")
        self._shown()

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {"steps": [asdict(step) for step in self._steps.values()], "error": self._error}
