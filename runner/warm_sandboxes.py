"""Warm sandboxes: which container serves a user's job, and which containers are kept for their next.

A container is bound to the user of its first job and never serves anyone else's (DESIGN §4).
Between two jobs of its user the harness restores the same clean state as between two tests of
one submission, and a job with hidden tests is the last a container serves (what no clean-up
can reset, such as the PID counter, could otherwise carry a hidden input to the owner's next run),
so keeping it widens no boundary; it saves the container's start-up, about a third
of a CPU-second of engine work here. A user's job takes their idle warm sandbox if they have one,
else a fresh container from the pool. A sandbox is discarded after any anomaly, after
`warm_max_jobs` jobs, after `warm_idle_s` without a job, or when it holds more than
`warm_max_memory_mb` after a job; all idle ones together hold at most `warm_total_memory_mb`, and
the least recently used goes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from runner.container_pool import ContainerPool
from runner.executor import ExecRequest, ExecResult, InfraError, WarmCounts
from runner.sandbox_container import Launcher, Sandbox
from runner.sandbox_job import JobPlan, Transcript
from runner.sandbox_settings import MiB, SandboxSettings

log = logging.getLogger(__name__)

# Statuses that mean a limit stopped a program: the harness killed it (or the kernel did), which is
# when a container's state is least known. Such a sandbox is not worth the risk of keeping.
_LIMIT_STATUSES = frozenset({"time_limit", "memory_limit", "output_limit"})


def anomaly(request: ExecRequest, plan: JobPlan, transcript: Transcript, result: ExecResult) -> str | None:
    """Why the sandbox that ran this job must not serve another, or None when it may."""
    if request.hidden_tests:
        return "it ran hidden tests"
    if transcript.ending != "done":
        return f"the job ended with {transcript.ending}"
    wall_ms = plan.job.run.limits.wall_ms
    for test in result.tests:
        if test.status in _LIMIT_STATUSES:
            return f"a limit stopped a program ({test.status})"
        if test.time_ms >= wall_ms:
            # A graphical program stopped at its wall time reports ok with what it drew.
            return "a program was stopped at its wall time"
    return None


class WarmSandboxes:
    def __init__(self, launcher: Launcher, pool: ContainerPool, settings: SandboxSettings) -> None:
        self._launcher = launcher
        self._pool = pool
        self._settings = settings
        # By owner; each list ordered from least to most recently used.
        self._idle: dict[str, list[Sandbox]] = {}
        self._task: asyncio.Task[None] | None = None
        # Owners whose sandbox is to be started before their first job, one launch at a time.
        self._to_prewarm: dict[str, None] = {}
        self._prewarm_wanted = asyncio.Event()
        self._prewarm_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._expire(), name="warm-sandboxes")
            self._prewarm_task = asyncio.create_task(self._prewarm_all(), name="prewarm-sandboxes")

    def prewarm(self, owner: str) -> None:
        """Start a sandbox for `owner` in the background (a student just logged in or opened a
        page), unless they have one or the idle ones already fill the memory budget. Launches go
        one at a time, so warming a class that logs in at once never crowds out running jobs."""
        if owner in self._idle or owner in self._to_prewarm:
            return
        if self.counts().memory_bytes >= self._settings.warm_total_memory_mb * MiB:
            return
        self._to_prewarm[owner] = None
        self._prewarm_wanted.set()

    async def _prewarm_all(self) -> None:
        while True:
            await self._prewarm_wanted.wait()
            self._prewarm_wanted.clear()
            while self._to_prewarm:
                owner = next(iter(self._to_prewarm))
                try:
                    if owner not in self._idle:
                        sandbox = await self._pool.launch()
                        sandbox.owner = owner
                        self._keep(sandbox)
                except InfraError as exc:
                    log.info("could not prewarm a sandbox: %s", exc.message)
                    self._to_prewarm.clear()
                finally:
                    self._to_prewarm.pop(owner, None)

    async def acquire(self, owner: str | None) -> Sandbox:
        """The owner's idle warm sandbox if there is one, else a fresh container bound to them."""
        if owner is not None and (kept := self._idle.get(owner)):
            sandbox = kept.pop()  # the most recently used: the likeliest to have its files cached
            if not kept:
                del self._idle[owner]
            return sandbox
        sandbox = await self._pool.acquire()
        sandbox.owner = owner
        return sandbox

    def finished(self, sandbox: Sandbox, anomaly: str | None) -> None:
        """After a job: keep the sandbox for its owner's next job, or discard it."""
        sandbox.jobs += 1
        reason = anomaly or self._spent(sandbox)
        if reason is not None:
            if sandbox.owner is not None:
                log.debug("discarding sandbox %s: %s", sandbox.container_id[:12], reason)
            self._launcher.destroy_soon(sandbox)
            return
        self._keep(sandbox)

    def _keep(self, sandbox: Sandbox) -> None:
        assert sandbox.owner is not None  # _spent refuses a sandbox nobody owns
        if sandbox.meter is None or (memory := sandbox.meter.memory_now()) is None:
            self._launcher.destroy_soon(sandbox)
            return
        sandbox.idle_memory_bytes = memory
        sandbox.idle_since = time.monotonic()
        self._idle.setdefault(sandbox.owner, []).append(sandbox)
        self._evict_over_budget()

    def _spent(self, sandbox: Sandbox) -> str | None:
        if sandbox.owner is None:
            return "it served a job of no one in particular"
        if sandbox.jobs >= self._settings.warm_max_jobs:
            return f"it served {sandbox.jobs} jobs"
        memory = sandbox.meter.memory_now() if sandbox.meter is not None else None
        if memory is not None and memory > self._settings.warm_max_memory_mb * MiB:
            return f"it holds {memory // MiB} MB"
        return None

    def _evict_over_budget(self) -> None:
        budget = self._settings.warm_total_memory_mb * MiB
        idle = sorted(self._all_idle(), key=lambda s: s.idle_since)
        total = sum(s.idle_memory_bytes for s in idle)
        for sandbox in idle:
            if total <= budget:
                return
            total -= sandbox.idle_memory_bytes
            self._discard(sandbox)

    def _discard(self, sandbox: Sandbox) -> None:
        assert sandbox.owner is not None
        kept = self._idle[sandbox.owner]
        kept.remove(sandbox)
        if not kept:
            del self._idle[sandbox.owner]
        self._launcher.destroy_soon(sandbox)

    def _all_idle(self) -> list[Sandbox]:
        return [sandbox for kept in self._idle.values() for sandbox in kept]

    def counts(self) -> WarmCounts:
        idle = self._all_idle()
        return WarmCounts(len(idle), len(self._idle), sum(s.idle_memory_bytes for s in idle), self._pool.ready)

    async def _expire(self) -> None:
        # A sandbox that goes idle expires after every one already idle: sleeping until the oldest
        # expires misses none.
        while True:
            now = time.monotonic()
            limit = self._settings.warm_idle_s
            for sandbox in [s for s in self._all_idle() if now - s.idle_since >= limit]:
                self._discard(sandbox)
            oldest = min((s.idle_since for s in self._all_idle()), default=now)
            await asyncio.sleep(max(0.0, oldest + limit - now) + 0.05)

    async def close(self) -> None:
        """Stop expiring and prewarming, and destroy every idle warm sandbox."""
        for task in (self._task, self._prewarm_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._prewarm_task = None
        for sandbox in self._all_idle():
            self._discard(sandbox)
        await self._launcher.settle()
