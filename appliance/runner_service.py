"""The runner as an appliance service: wires the queue store, blob store and executor together."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from appliance.blobs import BlobStore
from appliance.db import Database
from appliance.job_events import JobEvents
from appliance.settings import Settings
from appliance.store.jobs import SqliteJobStore
from runner.executor import Executor
from runner.worker import Runner, WorkerSettings

ExecutorFactory = Callable[[], Awaitable[Executor]]
ImageCheck = Callable[[], Awaitable[str]]


def worker_settings(settings: Settings) -> WorkerSettings:
    return WorkerSettings(
        workers=settings.workers,
        lease_s=settings.job_lease_s,
        infra_max_attempts=settings.infra_max_attempts,
        infra_backoff_s=settings.infra_backoff_s,
        result_max_bytes=settings.result_max_bytes,
        full_output_max_bytes=settings.full_output_max_bytes,
    )


class RunnerService:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        events: JobEvents,
        settings: Settings,
        executor_factory: ExecutorFactory,
        image_check: ImageCheck,
    ) -> None:
        store = SqliteJobStore(db, settings.default_time_limit_ms, settings.default_memory_limit_mb)
        self.runner = Runner(store, blobs, executor_factory, worker_settings(settings), events.changed)
        self._image_check = image_check
        self.image_state = "unknown"

    async def start(self) -> None:
        await self.runner.start()

    async def stop(self) -> None:
        await self.runner.stop()

    def notify(self) -> None:
        self.runner.notify()

    async def health(self) -> tuple[str, str]:
        self.image_state = await self._image_check()
        state = "engine_unavailable" if self.runner.engine_paused else "ok"
        return state, self.image_state

    def describe(self) -> dict[str, Any]:
        return {
            "state": "engine_unavailable" if self.runner.engine_paused else "ok",
            "image": self.image_state,
            "workers": self.runner.settings.workers,
            "jobs_done": self.runner.jobs_done,
            "last_infra_error": self.runner.last_infra_error,
        }
