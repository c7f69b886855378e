"""The runner as an appliance service: wires the queue store, blob store and sandbox together."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Protocol, runtime_checkable

from appliance.blobs import BlobStore
from appliance.db import Database
from appliance.job_events import JobEvents
from appliance.settings import Settings
from appliance.store.queue import SqliteJobStore
from runner.executor import ExecRequest, Executor
from runner.live_session import LiveSession
from runner.worker import ClaimGate, Runner, WorkerSettings, rss_mb


class SandboxProvider(Protocol):
    """Where executors come from (the Docker sandbox in the appliance; a scripted one in unit tests)."""

    async def new_executor(self) -> Executor: ...

    async def engine_up(self) -> bool: ...

    async def image_state(self) -> str:
        """'ok', or what is wrong: 'missing', 'stale', 'engine_unavailable', …"""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class DescribesHosts(Protocol):
    def describe(self) -> dict[str, Any]: ...


def worker_settings(settings: Settings) -> WorkerSettings:
    return WorkerSettings(
        workers=settings.workers,
        lease_s=settings.job_lease_s,
        infra_max_attempts=settings.infra_max_attempts,
        infra_backoff_s=settings.infra_backoff_s,
        result_max_bytes=settings.result_max_bytes,
        full_output_max_bytes=settings.full_output_max_bytes,
        full_output_max_bytes_per_user=settings.full_output_max_bytes_per_user,
        max_running_per_user=settings.running_jobs_per_user,
    )


class RunnerService:
    def __init__(
        self, db: Database, blobs: BlobStore, events: JobEvents, settings: Settings, sandbox: SandboxProvider
    ) -> None:
        store = SqliteJobStore(db, settings.default_time_limit_ms, settings.default_memory_limit_mb, blobs)
        self.sandbox = sandbox
        self.mode = settings.runner_mode
        chosen = worker_settings(settings)
        # Runner hosts: the gate lets a job be claimed only for a free slot on some host, so the
        # number of dispatching workers is only a ceiling.
        gate = sandbox if isinstance(sandbox, ClaimGate) else None
        if gate is not None:
            chosen = dataclasses.replace(chosen, workers=settings.runner_dispatch_max)
        self.runner = Runner(store, blobs, sandbox.new_executor, chosen, events.changed, sandbox.engine_up, gate)
        self.image_state = "unknown"

    async def start(self) -> None:
        await self.runner.start()

    async def stop(self) -> None:
        await self.runner.stop()
        await self.sandbox.close()

    def notify(self) -> None:
        self.runner.notify()

    def prewarm(self, user_id: int) -> None:
        self.runner.prewarm(user_id)

    def stop_job(self, job_id: int) -> bool:
        return self.runner.stop_job(job_id)

    def live(self, request: ExecRequest) -> contextlib.AbstractAsyncContextManager[LiveSession]:
        return self.runner.live(request)

    def pause_queue(self, paused: bool) -> None:
        """The admin's pause: workers claim nothing until resumed; accepted jobs stay queued."""
        self.runner.pause_claiming(paused)

    def _state(self) -> str:
        return "paused" if self.runner.engine_paused else "ok"

    async def health(self) -> tuple[str, str]:
        self.image_state = await self.sandbox.image_state()
        return self._state(), self.image_state

    def describe(self) -> dict[str, Any]:
        warm = self.runner.warm_counts()
        hosts = self.sandbox.describe() if isinstance(self.sandbox, DescribesHosts) else {}
        # Remote mode: jobs run at once are the slots of the hosts up now, not the dispatch ceiling.
        workers = self.runner.settings.workers
        if "hosts" in hosts:
            workers = sum(host["slots"] or 0 for host in hosts["hosts"] if host["state"] == "up")
        return {
            "warm_sandboxes": None if warm is None else dataclasses.asdict(warm),
            "state": self._state(),
            "image": self.image_state,
            "workers": workers,
            "jobs_done": self.runner.jobs_done,
            "last_infra_error": self.runner.last_infra_error,
            # A Docker sandbox names its engine and image; a stand-in sandbox (tests) need not.
            "engine": getattr(self.sandbox, "engine_name", type(self.sandbox).__name__),
            "image_ref": getattr(self.sandbox, "image_ref", None),
            "queue_paused": self.runner.claiming_paused,
            "infra_retries": self.runner.infra_retries,
            "executor_recycles": self.runner.executor_recycles,
            "executor_rss_mb": round(rss_mb(), 1),
            "mode": self.mode,
            # Runner hosts (remote mode): each host's region, load, warm sandboxes, engine and last heartbeat.
            **hosts,
        }
