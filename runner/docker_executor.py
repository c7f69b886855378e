"""The Executor on the local Docker engine: a container per user, fresh or their own warm one."""

from __future__ import annotations

import asyncio
import dataclasses

import docker

from runner import engine, image
from runner.container_pool import ContainerPool
from runner.executor import ExecRequest, ExecResult, InfraError, TestInput, WarmCounts
from runner.live_session import LiveSession
from runner.sandbox_container import Launcher, Sandbox
from runner.sandbox_job import plan_job, to_result
from runner.sandbox_settings import SandboxSettings
from runner.warm_sandboxes import WarmSandboxes, anomaly


class DockerExecutor:
    """Runs each request in a container that never served another user: a fresh one, or the
    owner's warm one (runner.warm_sandboxes), which is kept or removed afterwards, whatever happened.

    The client is the appliance's; this executor never closes it. Call `sweep_orphans` once at
    start-up before the first executor, not here: executors are recycled while others still run.
    """

    def __init__(self, client: docker.DockerClient, settings: SandboxSettings | None = None) -> None:
        self._client = client
        self._settings = settings or SandboxSettings()
        self._image_ref = self._settings.image or image.expected_ref()
        self._launcher = Launcher(client, self._settings, self._image_ref)
        # Pooled containers are sized for a plain job; others are resized when taken.
        typical = plan_job(ExecRequest(language="python", code="", tests=[TestInput("run", b"")]), self._settings)
        self._pool = ContainerPool(
            self._launcher, self._settings.pool_size, self._settings.pool_max_age_s, typical.container_memory_bytes
        )
        self._warm = WarmSandboxes(self._launcher, self._pool, self._settings)
        # Sandboxes held by live sessions: close() ends those sessions too.
        self._live: dict[str, Sandbox] = {}
        self._start_lock = asyncio.Lock()
        self._started = False

    async def start(self) -> None:
        """Check the image and start filling the pool; InfraError when the image is not usable.
        Idempotent, and `execute` calls it, so a failed start is retried with the next job."""
        async with self._start_lock:
            if self._started:
                return
            status = await engine.call(image.image_status, self._client, self._image_ref)
            if status != "present":
                code = engine.IMAGE_STALE if status == "stale" else engine.IMAGE_MISSING
                raise InfraError(
                    code, f"the sandbox image {self._image_ref} is {status}: run `labrunner sandbox build`"
                )
            self._pool.start()
            self._warm.start()
            self._started = True

    async def execute(self, request: ExecRequest) -> ExecResult:
        plan = plan_job(request, self._settings)
        await self.start()
        sandbox = await self._warm.acquire(request.owner)
        discard: str | None = "the job did not finish"
        try:
            if sandbox.memory_bytes != plan.container_memory_bytes:
                await self._launcher.resize(sandbox, plan.container_memory_bytes)
            transcript = await self._launcher.exchange(sandbox, plan)
            # Only a stream that just ended needs the engine's word on why. (Never to re-judge a test
            # the harness reported on: an OOM kill in one test must not change another's verdict.)
            oom_killed = transcript.ending == "eof" and await self._launcher.stopped_oom_killed(sandbox)
            result = to_result(plan, transcript, oom_killed)
            discard = anomaly(request, plan, transcript, result)
            return dataclasses.replace(result, sandbox_id=sandbox.container_id)
        finally:
            self._warm.finished(sandbox, discard)

    async def open_live(self, request: ExecRequest) -> LiveSession:
        plan = plan_job(request, self._settings)
        await self.start()
        sandbox = await self._warm.acquire(request.owner)
        try:
            if sandbox.memory_bytes != plan.container_memory_bytes:
                await self._launcher.resize(sandbox, plan.container_memory_bytes)
        except BaseException:
            self._warm.finished(sandbox, "it could not be sized for the session")
            raise
        self._live[sandbox.container_id] = sandbox
        return LiveSession(self._launcher, sandbox, plan, self._settings.live_idle_s, self._live_finished)

    def _live_finished(self, sandbox: Sandbox, discard: str | None) -> None:
        if self._live.pop(sandbox.container_id, None) is not None:
            self._warm.finished(sandbox, discard)

    def prewarm(self, owner: str) -> None:
        if self._started and self._settings.prewarm:
            self._warm.prewarm(owner)

    def warm_counts(self) -> WarmCounts:
        return self._warm.counts()

    async def settle(self) -> None:
        """Wait until every container this executor finished with is removed."""
        await self._launcher.settle()

    async def close(self) -> None:
        for sandbox in list(self._live.values()):
            # Its session reads the end of the stream and ends with an error.
            del self._live[sandbox.container_id]
            self._launcher.destroy_soon(sandbox)
        await self._warm.close()
        await self._pool.close()
        await self._launcher.close()
