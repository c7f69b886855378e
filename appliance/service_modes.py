"""Switches the admin flips on the running appliance: the queue paused, maintenance mode with its
message for students, and verbose runner logging.

The first two are kept in the appliance_state table, so they survive a restart, and mirrored
here in memory, so every request and page can read them without a query (one process serves the
appliance). Verbose logging is not kept: it switches itself back after its time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from appliance.accounts import User
from appliance.db import Database
from appliance.errors import Unavailable
from appliance.store import appliance_state

QUEUE_PAUSED = "queue_paused"
MAINTENANCE = "maintenance_message"
# The loggers verbose mode turns up: the runner's (its workers, executor and sandboxes).
RUNNER_LOGGER = "runner"


@dataclass(frozen=True)
class Modes:
    queue_paused: bool = False
    maintenance: str = ""  # the message students see; empty: not in maintenance
    verbose_until: float | None = None  # epoch seconds when verbose runner logging switches back

    def to_json(self) -> dict[str, object]:
        return {
            "queue_paused": self.queue_paused,
            "maintenance": {"on": bool(self.maintenance), "message": self.maintenance},
            "verbose_until": self.verbose_until,
        }


class ServiceModes:
    def __init__(self) -> None:
        self.modes = Modes()
        self._switch_back: asyncio.TimerHandle | None = None
        self._logger_level = logging.NOTSET

    async def load(self, db: Database) -> None:
        values = await appliance_state.all_values(db)
        self.modes = Modes(values.get(QUEUE_PAUSED) == "1", values.get(MAINTENANCE, ""))

    async def set_queue_paused(self, db: Database, user: User, paused: bool) -> None:
        await appliance_state.put(db, QUEUE_PAUSED, "1" if paused else "0", user.id)
        self.modes = Modes(paused, self.modes.maintenance, self.modes.verbose_until)

    async def set_maintenance(self, db: Database, user: User, message: str) -> None:
        """Maintenance on with `message` for students, or off with an empty message."""
        await appliance_state.put(db, MAINTENANCE, message, user.id)
        self.modes = Modes(self.modes.queue_paused, message, self.modes.verbose_until)

    def set_verbose(self, on: bool, seconds: float) -> None:
        """Runner logging at DEBUG for `seconds`, then back to what it was (or back now)."""
        logger = logging.getLogger(RUNNER_LOGGER)
        if self._switch_back is not None:
            self._switch_back.cancel()
            self._switch_back = None
        if not on:
            self._restore_level()
            return
        if self.modes.verbose_until is None:
            self._logger_level = logger.level
        logger.setLevel(logging.DEBUG)
        self._switch_back = asyncio.get_running_loop().call_later(seconds, self._restore_level)
        self.modes = Modes(self.modes.queue_paused, self.modes.maintenance, time.time() + seconds)
        logging.getLogger(__name__).warning("verbose runner logging on for %.0f seconds", seconds)

    def _restore_level(self) -> None:
        if self.modes.verbose_until is not None:
            logging.getLogger(RUNNER_LOGGER).setLevel(self._logger_level)
            logging.getLogger(__name__).warning("verbose runner logging off")
        self._switch_back = None
        self.modes = Modes(self.modes.queue_paused, self.modes.maintenance, None)

    def close(self) -> None:
        """At shutdown: never leave the runner's logger verbose behind the app."""
        if self._switch_back is not None:
            self._switch_back.cancel()
        self._restore_level()

    def refuse_student_jobs(self, user: User) -> None:
        """In maintenance, a student's new run or submission waits for the end of it (staff go on:
        they check the appliance before opening it again). Drafts keep saving meanwhile."""
        if self.modes.maintenance and not user.is_staff:
            raise Unavailable("maintenance", self.modes.maintenance)
