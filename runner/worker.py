"""The worker pool: claim jobs, run them in the sandbox, store bounded results.

User-caused failures (wrong answer, crash, limits) are results and never retried; only
infrastructure failures go back to the queue, a bounded number of times with backoff. While the
engine is unreachable, workers stop claiming and probe it, so an outage does not burn every
queued job's retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from runner import graphics
from runner.executor import ExecRequest, ExecResult, Executor, InfraError, Prewarming, TestInput, WarmCounts
from runner.live_session import LiveRunning, LiveSession
from runner.queue import SECRECY_VISIBLE, BlobSink, ClaimedJob, JobResult, JobStore
from runner.results import shape
from runner.test_order import in_problem_order, run_order

log = logging.getLogger(__name__)

JobListener = Callable[[int], None]
ExecutorFactory = Callable[[], Awaitable[Executor]]
EngineProbe = Callable[[], Awaitable[bool]]


@runtime_checkable
class ClaimGate(Protocol):
    """Lets a worker claim a job only when it could start now (runner hosts: a free slot somewhere),
    so waiting jobs wait in the queue, where priorities and fair shares order them."""

    async def acquire(self) -> None: ...

    def release(self) -> None: ...


# Failures no job could get past: stop claiming and probe until the sandbox is usable again.
PAUSING_ERRORS = frozenset({"engine_unavailable", "image_missing", "image_stale"})


async def _always_up() -> bool:
    return True


# A job its owner stopped while it ran: no test finished, so none is reported.
STOPPED = JobResult("stopped", None, None, [])


def owner_of(user_id: int) -> str:
    """Whose sandbox a user's jobs run in: their own, shared with nobody."""
    return f"user-{user_id}"


@dataclass(frozen=True)
class WorkerSettings:
    workers: int = 2
    lease_s: float = 120.0
    infra_max_attempts: int = 4
    infra_backoff_s: float = 2.0
    result_max_bytes: int = 65_536
    full_output_max_bytes: int = 8_388_608
    full_output_max_bytes_per_user: int | None = None  # None: no quota
    max_running_per_user: int | None = None  # None: a user may hold every worker
    poll_interval_s: float = 1.0
    engine_retry_s: float = 3.0
    recycle_after_jobs: int = 500
    recycle_rss_mb: int = 600


def rss_mb() -> float:
    """This process's resident memory, from /proc (Linux) — no extra dependency for one number."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1_048_576
    except (OSError, ValueError, IndexError):
        return 0.0


class ExecutorSlot:
    """The current executor, replaced after N jobs or past a memory threshold; the old one closes when idle."""

    def __init__(self, factory: ExecutorFactory) -> None:
        self._factory = factory
        self._current: Executor | None = None
        self._in_use: dict[int, int] = {}
        self._retired: dict[int, Executor] = {}
        self._jobs = 0
        self._lock = asyncio.Lock()
        self.recycles = 0

    @property
    def current(self) -> Executor | None:
        return self._current

    async def acquire(self) -> Executor:
        async with self._lock:
            if self._current is None:
                self._current = await self._factory()
            executor = self._current
            self._in_use[id(executor)] = self._in_use.get(id(executor), 0) + 1
            return executor

    async def release(self, executor: Executor, settings: WorkerSettings, ran_job: bool = True) -> None:
        self._in_use[id(executor)] -= 1
        self._jobs += ran_job
        if executor is self._current and (
            self._jobs >= settings.recycle_after_jobs or rss_mb() > settings.recycle_rss_mb
        ):
            log.info("recycling the executor after %d jobs (rss %.0f MB)", self._jobs, rss_mb())
            self.recycles += 1
            self._retire(executor)
        await self._close_if_idle(executor)

    async def retire_current(self) -> None:
        """Start afresh with the next job (the engine restarted under the current executor)."""
        if self._current is not None:
            executor = self._current
            self._retire(executor)
            await self._close_if_idle(executor)

    def _retire(self, executor: Executor) -> None:
        self._retired[id(executor)] = executor
        self._current = None
        self._jobs = 0

    async def _close_if_idle(self, executor: Executor) -> None:
        key = id(executor)
        if key in self._retired and self._in_use.get(key, 0) == 0:
            self._in_use.pop(key, None)
            await self._retired.pop(key).close()

    async def close(self) -> None:
        for executor in [*self._retired.values(), *([self._current] if self._current else [])]:
            await executor.close()
        self._retired.clear()
        self._current = None


class Runner:
    def __init__(
        self,
        store: JobStore,
        blobs: BlobSink,
        executor_factory: ExecutorFactory,
        settings: WorkerSettings,
        listener: JobListener | None = None,
        engine_probe: EngineProbe = _always_up,
        claim_gate: ClaimGate | None = None,
    ) -> None:
        self.store = store
        self._gate = claim_gate
        self.blobs = blobs
        self.settings = settings
        self._executors = ExecutorSlot(executor_factory)
        self._listener = listener or (lambda job_id: None)
        self._engine_probe = engine_probe
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._paused_until = 0.0
        self._instance = uuid.uuid4().hex[:8]
        self._prewarming: set[asyncio.Task[None]] = set()
        # Jobs in a sandbox now, by id, and those of them their owner asked to stop.
        self._executions: dict[int, asyncio.Task[ExecResult]] = {}
        self._stopping: set[int] = set()
        self.last_infra_error: str | None = None
        self.jobs_done = 0
        self.infra_retries = 0  # infrastructure failures since start (each one retried or failed for good)
        # The admin paused the queue: workers claim nothing; accepted jobs wait, running ones finish.
        self.claiming_paused = False

    @property
    def engine_paused(self) -> bool:
        return self._paused_until > 0

    @property
    def executor_recycles(self) -> int:
        return self._executors.recycles

    def pause_claiming(self, paused: bool) -> None:
        """Stop (or resume) taking jobs off the queue; resuming wakes the idle workers now."""
        resuming = self.claiming_paused and not paused
        self.claiming_paused = paused
        # Only on a real resume: a wake-up racing the runner's stop is lost to wait_for (3.11).
        if resuming:
            self._wake.set()

    async def start(self) -> None:
        requeued = await self.store.requeue_all_running(self.settings.infra_max_attempts)
        if requeued:
            log.warning("requeued %d job(s) left running by a previous process", len(requeued))
            for job_id in requeued:
                self._listener(job_id)
        for index in range(self.settings.workers):
            self._tasks.append(asyncio.create_task(self._work(f"{self._instance}-w{index}")))
        self._tasks.append(asyncio.create_task(self._reap_expired()))

    def prewarm(self, user_id: int) -> None:
        """The user is about (logged in, opened a page): have their sandbox started before their
        first job, off every job's path. A no-op when it is warm already or the engine is paused."""
        if self.engine_paused or not self._tasks:
            return
        task = asyncio.create_task(self._prewarm(user_id))
        self._prewarming.add(task)
        task.add_done_callback(self._prewarming.discard)

    async def _prewarm(self, user_id: int) -> None:
        try:
            executor = await self._executors.acquire()
        except InfraError:
            return  # the first job will say what is wrong
        try:
            if isinstance(executor, Prewarming):
                executor.prewarm(owner_of(user_id))
        finally:
            await self._executors.release(executor, self.settings, ran_job=False)

    @contextlib.asynccontextmanager
    async def live(self, request: ExecRequest) -> AsyncIterator[LiveSession]:
        """A live session for the request, outside the queue: it holds its owner's sandbox, never
        a worker. The executor it runs on stays open until the session is over."""
        if self.engine_paused:
            raise InfraError("engine_paused", "the sandbox is not available right now")
        executor = await self._executors.acquire()
        try:
            if not isinstance(executor, LiveRunning):
                raise InfraError("live_unsupported", "this runner cannot run programs live")
            yield await executor.open_live(request)
        finally:
            await self._executors.release(executor, self.settings, ran_job=False)

    def stop_job(self, job_id: int) -> bool:
        """Stop a job in a sandbox now: its program is killed with its container (the executor
        removes a sandbox whose job did not finish) and the job ends with the verdict `stopped`.
        False when it is not in a sandbox here (not yet, or no more)."""
        execution = self._executions.get(job_id)
        if execution is None or execution.done():
            return False
        self._stopping.add(job_id)
        execution.cancel()
        return True

    def warm_counts(self) -> WarmCounts | None:
        """The current executor's warm sandboxes; None before the first job or without them."""
        executor = self._executors.current
        return executor.warm_counts() if isinstance(executor, Prewarming) else None

    async def stop(self) -> None:
        for task in [*self._prewarming, *self._tasks]:
            task.cancel()
        for task in [*self._prewarming, *self._tasks]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self._executors.close()

    def notify(self) -> None:
        """A job was queued: wake an idle worker now instead of at its next poll."""
        self._wake.set()

    async def _idle(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()

    async def _work(self, worker_id: str) -> None:
        while True:
            try:
                if self._paused_until:
                    await self._wait_for_engine()
                    continue
                if self.claiming_paused:
                    await self._idle(self.settings.poll_interval_s)
                    continue
                if not await self._claim_and_run(worker_id):
                    await self._idle(self.settings.poll_interval_s)
            except asyncio.CancelledError:
                raise
            except Exception:  # a worker must survive anything one job or the store throws at it
                log.exception("worker %s failed outside a job; continuing", worker_id)
                await asyncio.sleep(self.settings.poll_interval_s)

    async def _claim_and_run(self, worker_id: str) -> bool:
        """Claim the next job and run it; False when there was none."""
        if self._gate is not None:
            await self._gate.acquire()
        try:
            job = await self.store.claim(worker_id, self.settings.lease_s, self.settings.max_running_per_user)
            if job is None:
                return False
            log.debug("worker %s claimed job %d (%s, attempt %d)", worker_id, job.id, job.kind, job.infra_attempts + 1)
            self._listener(job.id)
            await self._run(worker_id, job)
            log.debug("worker %s finished job %d", worker_id, job.id)
            self._listener(job.id)
            return True
        finally:
            if self._gate is not None:
                self._gate.release()

    async def _wait_for_engine(self) -> None:
        """While the engine or image is unusable, probe instead of claiming jobs that would only fail."""
        await asyncio.sleep(max(0.0, self._paused_until - time.monotonic()))
        if await self._engine_probe():
            if self._paused_until:
                log.info("the sandbox is usable again; resuming with a fresh executor")
                # Its pre-started containers died with the engine (or predate the new image).
                await self._executors.retire_current()
            self._paused_until = 0.0
        else:
            self._paused_until = time.monotonic() + self.settings.engine_retry_s

    async def _heartbeat(self, job_id: int, worker_id: str) -> None:
        while True:
            await asyncio.sleep(self.settings.lease_s / 3)
            if not await self.store.heartbeat(job_id, worker_id, self.settings.lease_s):
                log.warning("lost the lease on job %d", job_id)
                return

    async def _run(self, worker_id: str, job: ClaimedJob) -> None:
        heartbeat = asyncio.create_task(self._heartbeat(job.id, worker_id))
        try:
            spec = await self.store.grading_spec(job)
            order = run_order(spec.tests)
            request = ExecRequest(
                language=job.language,
                code=job.code,
                tests=[TestInput(spec.tests[i].name, spec.tests[i].stdin.encode("utf-8")) for i in order],
                files=spec.files,
                time_limit_ms=spec.time_limit_ms,
                memory_limit_mb=spec.memory_limit_mb,
                graphical=graphics.is_graphical(job.language, job.code) if spec.graphical is None else spec.graphical,
                # Only a teacher's word (or a student's own run) buys the graphical wall time: an
                # import in dead code must not lift a problem's time limit.
                graphical_time=job.kind == "run" or spec.graphical is True,
                owner=owner_of(job.user_id),
                hidden_tests=any(test.secrecy != SECRECY_VISIBLE for test in spec.tests),
                region=job.region,
            )
            executor = await self._executors.acquire()
            execution = asyncio.ensure_future(executor.execute(request))
            self._executions[job.id] = execution
            try:
                outcome = await execution
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if job.id not in self._stopping or (task is not None and task.cancelling()):
                    raise  # the runner is stopping, not the job
                if await self.store.complete(job.id, worker_id, STOPPED):
                    self.jobs_done += 1
                return
            finally:
                self._executions.pop(job.id, None)
                self._stopping.discard(job.id)
                await self._executors.release(executor, self.settings)
            if outcome.tests:  # none when compilation failed
                outcome = dataclasses.replace(outcome, tests=in_problem_order(outcome.tests, order))
            result = await asyncio.to_thread(
                shape,
                outcome,
                spec,
                self.blobs,
                self.settings.result_max_bytes,
                self.settings.full_output_max_bytes,
                await self._full_output_budget(job),
            )
            result = dataclasses.replace(result, host=outcome.host)
            if await self.store.complete(job.id, worker_id, result):
                self.jobs_done += 1
                self.last_infra_error = None
        except InfraError as error:
            await self._infra_failure(job, worker_id, error.code, error.message)
            # A lost sandbox may be the first sign of the engine going away: ask before claiming more.
            if error.code in PAUSING_ERRORS or not await self._engine_probe():
                self._paused_until = time.monotonic() + self.settings.engine_retry_s
        except asyncio.CancelledError:
            raise
        except Exception as error:  # an unexpected bug is infrastructure, never the student's fault
            log.exception("job %d failed in the worker", job.id)
            await self._infra_failure(job, worker_id, "worker_error", f"{type(error).__name__}: {error}")
        finally:
            heartbeat.cancel()

    async def _full_output_budget(self, job: ClaimedJob) -> int | None:
        """Bytes of full output this job may keep: what the user's quota has left (None: no quota).
        Two jobs of one user finishing at once may each see the same remainder; the fair share of
        workers keeps that to a few jobs' outputs."""
        quota = self.settings.full_output_max_bytes_per_user
        if quota is None:
            return None
        return max(0, quota - await self.store.full_output_bytes(job.user_id))

    async def _infra_failure(self, job: ClaimedJob, worker_id: str, code: str, message: str) -> None:
        self.last_infra_error = f"{code}: {message}"
        self.infra_retries += 1
        status = await self.store.infra_failure(
            job.id, worker_id, code, message, self.settings.infra_max_attempts, self.settings.infra_backoff_s
        )
        log.warning("job %d: infrastructure failure %s (%s); now %s", job.id, code, message, status)

    async def _reap_expired(self) -> None:
        while True:
            await asyncio.sleep(max(1.0, self.settings.lease_s / 4))
            try:
                for job_id in await self.store.requeue_expired(self.settings.infra_max_attempts):
                    log.warning("job %d lost its worker; requeued", job_id)
                    self._listener(job_id)
                self._wake.set()
            except Exception:  # keep reaping even if one pass fails
                log.exception("requeue of expired leases failed")
