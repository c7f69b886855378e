"""The server's side of runner hosts: an executor that runs each job on a host through the broker.

The SQLite queue stays the authority: a job is claimed there (priorities, fair shares, leases), and
only when a host has a free slot (`acquire`, the runner's claim gate), so nothing waits on the
broker where priorities could not reach it. The claimed job is placed on one host (runner.placement)
as a plan signed with the server's key; the host's signed transcript comes back as the arq job's
result and is graded and stored here, by the runner, exactly as a local run's.

Delivery: a job leaves its host's queue only in the broker transaction that stores its result
(arq), and the server's job is done only when the graded result is stored in SQLite; nothing is
acknowledged before. A host that stops heartbeating (killed, cut off), stops, or answers with an
infrastructure failure (its engine failed) loses the job: it is withdrawn from that host (aborted
if it started) and placed on another, at most `max_deliveries` hosts in all; after that it is the
runner's infrastructure failure, retried later with backoff like any other. Only the delivery the
server is waiting for can complete the job, so a late transcript from a host given up on is never
graded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from arq.connections import ArqRedis
from arq.constants import abort_jobs_ss, job_key_prefix, result_key_prefix
from arq.jobs import DeserializationError, Job
from arq.utils import timestamp_ms
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from redis.exceptions import RedisError

from runner import broker
from runner.executor import ExecRequest, ExecResult, InfraError
from runner.placement import HostLoad, capacity, choose
from runner.plan_codec import PlanError, request_to_json, result_from_json
from runner.signed_messages import HEARTBEAT, PLAN, TRANSCRIPT, SignatureRefused, open_sealed, seal, unverified_payload

log = logging.getLogger(__name__)

HostKeys = Callable[[], Awaitable[dict[str, Ed25519PublicKey]]]
# A heartbeat is a few hundred bytes; anything much larger is not one.
HEARTBEAT_MAX_BYTES = 65_536
REFUSED_SHOWN = 100


@dataclass(frozen=True)
class DispatchSettings:
    lost_after_s: float = 10.0  # a host not heard from for this long is lost
    refresh_s: float = 0.5  # how often heartbeats (and registered keys) are read
    result_poll_s: float = 0.05  # how often a waiting job looks for its transcript
    max_deliveries: int = 2  # hosts a job may be placed on before it is an infrastructure failure
    no_host_wait_s: float = 30.0  # a job waits this long for a usable host before failing for now
    plan_ttl_s: float = 3600.0  # a plan no host started by then is dropped by the broker
    sticky_owners: int = 10_000  # owners whose last host is remembered (their warm sandbox is there)
    transcript_max_bytes: int = 268_435_456  # a host's answer larger than this is refused unread
    # A host answers a plan by then, even one that timed out; a plan held back on its queue (anyone
    # holding the runner password can keep a host from starting it) is given up on.
    delivery_max_s: float = 620.0


@dataclass
class HostState:
    name: str
    fingerprint: str = ""
    status: dict[str, Any] = field(default_factory=dict)
    heard_at: float = 0.0  # monotonic time the last new heartbeat was read
    seen_wall: float = 0.0  # the same, wall clock, for pages
    last_sent: float = 0.0  # the host's own time of that heartbeat: an older one is a replay
    placed: int = 0


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _well_formed(status: dict[str, Any]) -> bool:
    """The fields the server reads from a signed heartbeat have the types the host writes."""
    sent = status.get("sent_at")
    return (
        _count(status.get("slots"))
        and _count(status.get("busy"))
        and _count(status.get("jobs_done"))
        and all(isinstance(status.get(key), str) for key in ("region", "state", "engine"))
        and isinstance(status.get("warm"), dict | None)
        and isinstance(sent, int | float)
        and not isinstance(sent, bool)
        and math.isfinite(sent)
    )


class _Withdrawn(Exception):
    """The host can no longer run the job (lost, stopped, engine failed); place it elsewhere."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class RemoteDispatch:
    def __init__(self, url: str, settings: DispatchSettings, key: Ed25519PrivateKey, host_keys: HostKeys) -> None:
        self.url = url
        self.settings = settings
        self._key = key
        self._host_keys = host_keys
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._pool: ArqRedis | None = None
        self.hosts: dict[str, HostState] = {}
        # Heartbeats no registered key signed: shown to the admin, never given a job.
        self.refused: dict[str, str] = {}
        self._sticky: OrderedDict[str, str] = OrderedDict()
        self._reserved = 0
        self._changed = asyncio.Condition()
        self._refresher: asyncio.Task[None] | None = None
        self.broker_error: str | None = None

    async def start(self) -> None:
        try:
            self._pool = await broker.connect(self.url)
        except (RedisError, OSError) as error:
            self.broker_error = f"{type(error).__name__}: {error}"
            raise InfraError("broker_unavailable", f"the runner broker refused or did not answer: {error}") from None
        await self.refresh()
        self._refresher = asyncio.create_task(self._refresh_forever())

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None

    # -- hosts ---------------------------------------------------------------------------------

    def usable(self, host: HostState) -> bool:
        status = host.status
        return (
            host.name in self._keys
            and status.get("state") == "up"
            and status.get("engine") == "ok"
            and time.monotonic() - host.heard_at < self.settings.lost_after_s
        )

    def loads(self) -> list[HostLoad]:
        return [
            HostLoad(name, str(h.status.get("region", "")), int(h.status.get("slots", 0)), h.placed, self.usable(h))
            for name, h in self.hosts.items()
        ]

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.refresh_s)
            try:
                await self.refresh()
            except Exception:  # keep refreshing through a broker hiccup; each pass says what failed
                log.exception("reading runner hosts' heartbeats failed")

    async def refresh(self) -> None:
        assert self._pool is not None
        self._keys = await self._host_keys()
        try:
            raws = await self._registered_heartbeats()
            strangers = await self._unregistered_names()
            self.broker_error = None
        except (RedisError, OSError) as error:
            self.broker_error = f"{type(error).__name__}: {error}"
            raws, strangers = [], []
        for raw in raws:
            if raw:
                self._heard(raw)
        for name in strangers:
            self._refuse(name, "no registered key has this host name")
        # A host removed with `labrunner workers remove` is forgotten once it has no job here.
        for name in [name for name, host in self.hosts.items() if name not in self._keys and not host.placed]:
            del self.hosts[name]
        async with self._changed:
            self._changed.notify_all()

    async def _registered_heartbeats(self) -> list[bytes | None]:
        """The registered hosts' heartbeats; only those, and each only when it can be one, are read:
        anyone holding the runner password can write heartbeat keys, as many and as large as the
        broker's memory allows."""
        assert self._pool is not None
        keys = [broker.heartbeat_key(name) for name in sorted(self._keys)]
        async with self._pool.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.strlen(key)
            sizes = await pipe.execute(raise_on_error=False)
        readable = [
            key
            for key, size in zip(keys, sizes, strict=True)
            if isinstance(size, int) and 0 < size <= HEARTBEAT_MAX_BYTES
        ]
        return list(await self._pool.mget(readable)) if readable else []

    async def _unregistered_names(self) -> list[str]:
        """Names of hosts heartbeating without a registered key (by their keys, never read), for the
        admin to register; no more than are shown."""
        assert self._pool is not None
        names: list[str] = []
        async for key in self._pool.scan_iter(match=broker.HEARTBEAT_PREFIX + "*", count=500):
            name = key.decode("utf-8", "replace")[len(broker.HEARTBEAT_PREFIX) :]
            if name not in self._keys:
                names.append(name)
                if len(names) >= REFUSED_SHOWN:
                    break
        return names

    def _heard(self, raw: bytes) -> None:
        try:
            message = broker.loads(raw)
        except ValueError:
            return
        claimed = unverified_payload(message) or {}
        name = str(claimed.get("host", ""))[:64]
        key = self._keys.get(name)
        try:
            if key is None:
                raise SignatureRefused("no registered key has this host name")
            status = open_sealed(HEARTBEAT, message, key)
        except SignatureRefused as refusal:
            self._refuse(name, "the heartbeat is not signed by the host's registered key" if key else str(refusal))
            return
        if not _well_formed(status):
            # Placement reads these fields for every claim: one bad value would stop all claims.
            self._refuse(name, "the heartbeat is malformed")
            return
        self.refused.pop(name, None)
        host = self.hosts.setdefault(name, HostState(name))
        sent = status["sent_at"]
        if sent <= host.last_sent:
            return  # nothing new (or an old heartbeat played back)
        host.status, host.last_sent = status, float(sent)
        host.heard_at, host.seen_wall = time.monotonic(), time.time()

    def _refuse(self, name: str, reason: str) -> None:
        # Bounded: anyone who reaches the broker can write heartbeats under any name. A forgery of a
        # registered host's heartbeat is always shown; a name no host can have (markup) never is.
        if name in self._keys or (
            broker.HOST_NAME.match(name) and (name in self.refused or len(self.refused) < REFUSED_SHOWN)
        ):
            self.refused[name] = reason

    def any_usable(self) -> bool:
        return self._pool is not None and self.broker_error is None and any(map(self.usable, self.hosts.values()))

    # -- the claim gate ------------------------------------------------------------------------

    async def acquire(self) -> None:
        """Wait until a job claimed now has a host slot to go to: every job claimed and not yet
        finished holds one reservation, whichever host it is on or moving to."""
        async with self._changed:
            await self._changed.wait_for(lambda: capacity(self.loads()) > self._reserved)
            self._reserved += 1

    def release(self) -> None:
        self._reserved -= 1

    # -- running a job -------------------------------------------------------------------------

    async def execute(self, request: ExecRequest) -> ExecResult:
        failed: list[str] = []
        last = InfraError("runner_hosts_failed", "no runner host could run this job")
        for _ in range(self.settings.max_deliveries):
            host = await self._place(request, frozenset(failed))
            try:
                return await self._deliver(host, request)
            except _Withdrawn as why:
                log.warning("job of %s moved off runner host %s: %s", request.owner, host.name, why.message)
                failed.append(host.name)
                last = InfraError(why.code, f"runner host {host.name}: {why.message}")
        raise last

    async def _place(self, request: ExecRequest, exclude: frozenset[str]) -> HostState:
        sticky = self._sticky.get(request.owner or "")
        deadline = time.monotonic() + self.settings.no_host_wait_s
        async with self._changed:
            while True:
                name = choose(self.loads(), sticky=sticky, region=request.region, exclude=exclude)
                if name is not None:
                    host = self.hosts[name]
                    host.placed += 1
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise InfraError("no_runner_hosts", "no runner host is available to run this job")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=min(left, self.settings.refresh_s * 2))
        if request.owner:
            self._sticky[request.owner] = name
            self._sticky.move_to_end(request.owner)
            while len(self._sticky) > self.settings.sticky_owners:
                self._sticky.popitem(last=False)
        return host

    async def _deliver(self, host: HostState, request: ExecRequest) -> ExecResult:
        assert self._pool is not None
        job_id = broker.job_id_for(host.name)
        queue = broker.host_queue(host.name)
        # A plan read off the broker (by anyone holding the runner password) and queued again later
        # is refused by the host once expired, and at once when that host has run it already.
        expires = time.time() + self.settings.plan_ttl_s
        plan = seal(
            PLAN, {"job": job_id, "host": host.name, "expires": expires, "plan": request_to_json(request)}, self._key
        )
        try:
            await self._pool.enqueue_job(
                broker.RUN_PLAN, plan, _job_id=job_id, _queue_name=queue, _expires=self.settings.plan_ttl_s
            )
            outcome = await self._await_transcript(host, Job(job_id, self._pool, queue, broker.loads), queue)
            # arq keeps a result (with the plan it answers) for an hour: a correct program's output
            # is the hidden tests' expected output, readable by anyone holding the runner password.
            with contextlib.suppress(RedisError, OSError):
                await self._pool.delete(result_key_prefix + job_id)
        except (RedisError, OSError) as error:
            await self._withdraw(job_id, queue)
            raise InfraError("broker_unavailable", f"the runner broker failed: {error}") from None
        except BaseException:
            await self._withdraw(job_id, queue)
            raise
        finally:
            host.placed -= 1
            async with self._changed:
                self._changed.notify_all()
        return self._transcript(host, job_id, outcome)

    async def _await_transcript(self, host: HostState, job: Job, queue: str) -> Any:
        assert self._pool is not None
        deadline = time.monotonic() + self.settings.delivery_max_s
        while True:
            # Its size first: a host's answer is read into memory only when it can be a transcript.
            # Read with the queue in one transaction: the host takes a plan off its queue only in the
            # one that stores its answer, so a plan neither queued nor answered was taken by someone
            # else (anyone holding the runner password) or lost with the broker's memory.
            async with self._pool.pipeline(transaction=True) as pipe:
                pipe.strlen(result_key_prefix + job.job_id)
                pipe.zscore(queue, job.job_id)
                size, queued = await pipe.execute()
            if not size and queued is None:
                raise _Withdrawn("plan_lost", "its plan left the broker unanswered")
            if size > self.settings.transcript_max_bytes:
                raise _Withdrawn("transcript_too_large", f"its answer is {size} bytes")
            try:
                info = await job.result_info() if size else None
            except DeserializationError:
                raise _Withdrawn("bad_transcript", "its answer was not a transcript") from None
            if info is not None:
                if not info.success:
                    raise _Withdrawn("host_failed", f"the host refused or failed the plan: {str(info.result)[:200]}")
                return info.result
            if time.monotonic() > deadline:
                raise _Withdrawn("runner_host_timeout", f"no answer within {self.settings.delivery_max_s:.0f} s")
            if not self.usable(host):
                state = host.status.get("state")
                why = "engine down" if host.status.get("engine") != "ok" else "stopped" if state != "up" else "lost"
                raise _Withdrawn("runner_host_lost", f"the host is {why}")
            await asyncio.sleep(self.settings.result_poll_s)

    def _transcript(self, host: HostState, job_id: str, message: object) -> ExecResult:
        key = self._keys.get(host.name)
        try:
            if key is None:
                raise SignatureRefused("the host's key is no longer registered")
            transcript = open_sealed(TRANSCRIPT, message, key)
            if transcript.get("job") != job_id or transcript.get("host") != host.name:
                raise SignatureRefused("the transcript names another job or host")
            if "infra" in transcript:
                infra = transcript["infra"] if isinstance(transcript["infra"], dict) else {}
                raise _Withdrawn(str(infra.get("code", "infra"))[:64], str(infra.get("message", ""))[:500])
            result = result_from_json(transcript.get("result"))
        except (SignatureRefused, PlanError) as error:
            raise _Withdrawn("bad_transcript", f"its transcript was refused: {error}") from None
        return dataclasses.replace(result, host=host.name)

    async def _withdraw(self, job_id: str, queue: str) -> None:
        """Take the job off its host: out of the queue if it has not started, cancelled if it has."""
        if self._pool is None:
            return
        with contextlib.suppress(RedisError, OSError):
            async with self._pool.pipeline(transaction=True) as pipe:
                pipe.zrem(queue, job_id)
                pipe.zadd(abort_jobs_ss, {job_id: timestamp_ms()})
                pipe.delete(job_key_prefix + job_id, result_key_prefix + job_id)
                await pipe.execute()

    # -- what the dashboard shows --------------------------------------------------------------

    def describe_hosts(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        rows = []
        for name, host in sorted(self.hosts.items()):
            status = host.status
            state = "up" if self.usable(host) else "stopped" if status.get("state") == "stopped" else "lost"
            if state == "up" or (status.get("engine") != "ok" and now - host.heard_at < self.settings.lost_after_s):
                state = "up" if status.get("engine") == "ok" else "engine_down"
            rows.append(
                {
                    "name": name,
                    "region": status.get("region"),
                    "slots": status.get("slots"),
                    "busy": status.get("busy"),
                    "placed": host.placed,
                    "warm": status.get("warm"),
                    "engine": status.get("engine"),
                    "jobs_done": status.get("jobs_done"),
                    "state": state,
                    "last_seen": host.seen_wall,
                    "seconds_since_seen": round(now - host.heard_at, 1),
                }
            )
        return rows
