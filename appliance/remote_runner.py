"""Runner hosts as the appliance's sandbox (runner_mode = remote): jobs go through the broker to
the registered hosts (runner.remote_dispatch) instead of this machine's Docker engine. The queue,
grading, expected outputs and the database stay here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from appliance import identity, runner_hosts
from appliance.db import Database
from appliance.settings import Settings
from runner.broker import redacted
from runner.executor import ExecRequest, ExecResult, Executor, InfraError
from runner.remote_dispatch import DispatchSettings, HostKeys, RemoteDispatch

log = logging.getLogger(__name__)


def dispatch_settings(settings: Settings) -> DispatchSettings:
    return DispatchSettings(
        lost_after_s=settings.runner_host_lost_after_s,
        max_deliveries=settings.runner_max_deliveries,
        no_host_wait_s=settings.runner_no_host_wait_s,
    )


class _HostsExecutor:
    """The runner's executor handle on the one dispatch: recycling it must not close the dispatch."""

    def __init__(self, dispatch: RemoteDispatch) -> None:
        self._dispatch = dispatch

    async def execute(self, request: ExecRequest) -> ExecResult:
        return await self._dispatch.execute(request)

    async def close(self) -> None:
        return None


class RemoteSandbox:
    """A SandboxProvider and the runner's claim gate, over one RemoteDispatch."""

    engine_name = "runner hosts"
    image_ref = None

    def __init__(self, settings: Settings, host_keys: HostKeys) -> None:
        key = identity.ensure(settings.data_dir).private_key
        self.dispatch = RemoteDispatch(settings.runner_broker_url, dispatch_settings(settings), key, host_keys)
        self.broker = redacted(settings.runner_broker_url)
        self._retry_s = 3.0
        self._started = False
        self._lock = asyncio.Lock()

    async def _ensure_started(self) -> None:
        async with self._lock:
            if not self._started:
                await self.dispatch.start()
                self._started = True
                log.info("dispatching jobs to runner hosts through %s", self.broker)

    async def new_executor(self) -> Executor:
        await self._ensure_started()
        return _HostsExecutor(self.dispatch)

    async def engine_up(self) -> bool:
        try:
            await self._ensure_started()
        except InfraError:
            return False
        return self.dispatch.any_usable()

    async def image_state(self) -> str:
        try:
            await self._ensure_started()
        except InfraError as error:
            return error.code
        if self.dispatch.broker_error:
            return "broker_unavailable"
        return "ok" if self.dispatch.any_usable() else "no_runner_hosts"

    async def acquire(self) -> None:
        while True:
            try:
                await self._ensure_started()
                break
            except InfraError as error:
                log.warning("%s; trying again in %.0f s", error.message, self._retry_s)
                await asyncio.sleep(self._retry_s)
        await self.dispatch.acquire()

    def release(self) -> None:
        self.dispatch.release()

    def describe(self) -> dict[str, Any]:
        return {
            "broker": self.broker,
            "broker_error": self.dispatch.broker_error,
            "hosts": self.dispatch.describe_hosts() if self._started else [],
            "refused_hosts": [{"name": name, "reason": why} for name, why in sorted(self.dispatch.refused.items())],
        }

    async def close(self) -> None:
        await self.dispatch.close()


def host_keys_of(db: Callable[[], Database]) -> HostKeys:
    """The registered hosts' keys, read from the database the app opens after this is built."""

    def read() -> Awaitable[dict[str, Ed25519PublicKey]]:
        return runner_hosts.public_keys(db())

    return read
