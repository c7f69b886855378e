"""A runner host (`labrunner worker`): takes signed job plans off its own queue on the broker, runs
them with the local executor (the same Docker sandbox the appliance uses) and returns signed
transcripts. It never sees an expected output and stores nothing: grading and the database stay
on the server.

Every heartbeat tells the server what placement needs (region, free slots, warm sandboxes, the
engine's health). When the local engine fails, the host stops taking jobs from its queue, answers
the job it was running with an infrastructure transcript (the server places it on another host),
and probes the engine until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import arq
from arq.connections import ArqRedis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from runner import broker
from runner.executor import InfraError, Prewarming
from runner.plan_codec import request_from_json, result_to_json
from runner.signed_messages import HEARTBEAT, PLAN, TRANSCRIPT, SignatureRefused, open_sealed, seal
from runner.worker import PAUSING_ERRORS, EngineProbe, ExecutorFactory, ExecutorSlot, WorkerSettings

log = logging.getLogger(__name__)

# More than the plans a host starts within a plan's lifetime (the server's plan_ttl_s, an hour).
PLANS_REMEMBERED = 100_000


class _OwnJobsWorker(arq.Worker):
    """arq's worker, taking only ids of this host's jobs off its queue (`broker.job_id_for`): the
    broker's access list gives a host no other job's keys, so another id (written there by whoever
    else may write to the queue) would stop the worker with a permission error. It is dropped."""

    def __init__(self, own_prefix: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._own_prefix = own_prefix.encode()

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        foreign = [job_id for job_id in job_ids if not job_id.startswith(self._own_prefix)]
        if foreign:
            log.warning("dropped %d job id(s) of other hosts from this host's queue", len(foreign))
            await self.pool.zrem(self.queue_name, *foreign)
        await super().start_jobs([job_id for job_id in job_ids if job_id.startswith(self._own_prefix)])


@dataclass(frozen=True)
class HostSettings:
    name: str
    region: str = "default"
    slots: int = 2
    heartbeat_s: float = 1.0
    engine_check_s: float = 2.0
    # Bounds one plan's run on the host, whatever its limits claim; the plan's own limits end it
    # much sooner.
    job_timeout_s: float = 600.0
    result_ttl_s: float = 3600.0
    poll_delay_s: float = 0.05
    # How long a heartbeat stays readable after the host stops (the dashboard's "last seen").
    heartbeat_keep_s: int = 7 * 24 * 3600


class RunnerHost:
    def __init__(
        self,
        url: str,
        settings: HostSettings,
        executor_factory: ExecutorFactory,
        engine_probe: EngineProbe,
        key: Ed25519PrivateKey,
        server_key: Ed25519PublicKey,
    ) -> None:
        self.url = url
        self.settings = settings
        self._executors = ExecutorSlot(executor_factory)
        self._engine_probe = engine_probe
        self._key = key
        self._server_key = server_key
        self._pool: ArqRedis | None = None
        self._worker: arq.Worker | None = None
        self.busy = 0
        self.jobs_done = 0
        self.engine_ok = False
        self.stopped = asyncio.Event()
        # Plans started here, newest last: one played back onto the queue is refused.
        self._ran: OrderedDict[str, None] = OrderedDict()

    async def run(self) -> None:
        """Serve until cancelled. Raises at once when the broker refuses the connection (a wrong
        address or password), so a misconfigured host says so instead of waiting forever."""
        self._pool = await broker.connect(self.url)
        self.engine_ok = await self._engine_probe()
        self._worker = _OwnJobsWorker(
            f"{self.settings.name}:",
            functions=[arq.worker.func(self._run_plan, name=broker.RUN_PLAN, max_tries=1)],
            queue_name=broker.host_queue(self.settings.name),
            redis_pool=self._pool,
            max_jobs=self.settings.slots,
            job_timeout=self.settings.job_timeout_s,
            keep_result=self.settings.result_ttl_s,
            poll_delay=self.settings.poll_delay_s,
            handle_signals=False,
            allow_abort_jobs=True,
            # A plan runs once per delivery: moving a job elsewhere is the server's decision.
            retry_jobs=False,
            max_tries=1,
            job_serializer=broker.dumps,
            job_deserializer=broker.loads,
            # A plan holds a student's code and hidden tests' inputs: no log line repeats it or its output.
            log_results=False,
        )
        self._worker.allow_pick_jobs = self.engine_ok
        await self._beat()
        tasks = [
            asyncio.create_task(self._worker.async_run()),
            asyncio.create_task(self._heartbeats()),
            asyncio.create_task(self._watch_engine()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self._shutdown()

    async def _shutdown(self) -> None:
        with contextlib.suppress(Exception):
            await self._beat(state="stopped")
        if self._worker is not None:
            with contextlib.suppress(Exception):
                await self._worker.close()
        await self._executors.close()
        self.stopped.set()

    async def _run_plan(self, ctx: dict[str, Any], message: object) -> dict[str, str]:
        job_id = ctx["job_id"]
        payload = open_sealed(PLAN, message, self._server_key)
        if payload.get("host") != self.settings.name or payload.get("job") != job_id:
            raise SignatureRefused("this plan was signed for another host or job")
        expires = payload.get("expires")
        if not isinstance(expires, int | float) or isinstance(expires, bool) or expires < time.time():
            raise SignatureRefused("this plan has expired")
        if job_id in self._ran:
            raise SignatureRefused("this plan has run here already")
        self._ran[job_id] = None
        while len(self._ran) > PLANS_REMEMBERED:
            self._ran.popitem(last=False)
        request = request_from_json(payload.get("plan"))
        self.busy += 1
        try:
            body = await self._execute(request)
        finally:
            self.busy -= 1
        return seal(TRANSCRIPT, {"job": job_id, "host": self.settings.name, **body}, self._key)

    async def _execute(self, request: Any) -> dict[str, Any]:
        try:
            executor = await self._executors.acquire()
        except InfraError as error:
            await self._engine_failed(error)
            return {"infra": {"code": error.code, "message": error.message}}
        try:
            result = await executor.execute(request)
        except InfraError as error:
            await self._engine_failed(error)
            return {"infra": {"code": error.code, "message": error.message}}
        finally:
            await self._executors.release(executor, WorkerSettings())
        self.jobs_done += 1
        return {"result": result_to_json(result)}

    async def _engine_failed(self, error: InfraError) -> None:
        if error.code in PAUSING_ERRORS or not await self._engine_probe():
            log.warning("the sandbox engine failed (%s): taking no jobs until it is back", error.code)
            self._set_engine(False)

    def _set_engine(self, ok: bool) -> None:
        self.engine_ok = ok
        if self._worker is not None:
            self._worker.allow_pick_jobs = ok

    async def _watch_engine(self) -> None:
        while True:
            await asyncio.sleep(self.settings.engine_check_s)
            ok = await self._engine_probe()
            if ok and not self.engine_ok:
                log.info("the sandbox engine is back; taking jobs again with a fresh executor")
                # Its warm containers died with the engine.
                await self._executors.retire_current()
            if ok != self.engine_ok:
                self._set_engine(ok)
                await self._beat()

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_s)
            await self._beat()

    def status(self, state: str = "up") -> dict[str, Any]:
        executor = self._executors.current
        warm = executor.warm_counts() if isinstance(executor, Prewarming) else None
        return {
            "host": self.settings.name,
            "region": self.settings.region,
            "slots": self.settings.slots,
            "busy": self.busy,
            "engine": "ok" if self.engine_ok else "down",
            "warm": None if warm is None else dataclasses.asdict(warm),
            "jobs_done": self.jobs_done,
            "state": state,
            "sent_at": time.time(),
        }

    async def _beat(self, state: str = "up") -> None:
        assert self._pool is not None
        message = broker.dumps(seal(HEARTBEAT, self.status(state), self._key))
        await self._pool.set(broker.heartbeat_key(self.settings.name), message, ex=self.settings.heartbeat_keep_s)
