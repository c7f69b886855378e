"""Containers started ahead of time, to hide start-up latency.

Each one waits on its stdin for its first job: a container enters the pool before any job data
has reached it and leaves it for good, bound to the user of that job (runner.warm_sandboxes).
Containers older than max_age_s are replaced, so a quiet spell leaves none that are stale (say,
from before the engine restarted).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time

from runner.executor import InfraError
from runner.sandbox_container import Launcher, Sandbox

log = logging.getLogger(__name__)

_RETRY_AFTER_FAILURE_S = 10.0


class ContainerPool:
    def __init__(self, launcher: Launcher, size: int, max_age_s: float, memory_bytes: int) -> None:
        self._launcher = launcher
        self._size = size
        self._max_age_s = max_age_s
        self._memory_bytes = memory_bytes
        self._idle: collections.deque[Sandbox] = collections.deque()
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> int:
        """Containers started and waiting for their first user now."""
        return len(self._idle)

    def start(self) -> None:
        if self._task is None and self._size > 0:
            self._task = asyncio.create_task(self._maintain(), name="sandbox-pool")

    async def acquire(self) -> Sandbox:
        """A fresh started container: from the pool when one is ready, else launched now."""
        while self._idle:
            sandbox = self._idle.popleft()
            if not self._expired(sandbox):
                self._wanted.set()
                return sandbox
            await self._launcher.destroy(sandbox)
        self._wanted.set()
        return await self._launcher.launch(self._memory_bytes)

    async def launch(self) -> Sandbox:
        """A fresh container of the pool's size, launched now (not taken from the pool)."""
        return await self._launcher.launch(self._memory_bytes)

    def _expired(self, sandbox: Sandbox) -> bool:
        return time.monotonic() - sandbox.started_at > self._max_age_s

    async def _maintain(self) -> None:
        while True:
            self._wanted.clear()
            for sandbox in [s for s in self._idle if self._expired(s)]:
                self._idle.remove(sandbox)
                await self._launcher.destroy(sandbox)
            wait_s = self._max_age_s
            try:
                # Launch the missing ones side by side: the engine overlaps their start-up work,
                # which is what bounds the pool's refill rate during a class burst.
                missing = self._size - len(self._idle)
                launched = await asyncio.gather(*(self._launch_one() for _ in range(missing)), return_exceptions=True)
                failures = [e for e in launched if isinstance(e, BaseException)]
                if failures:
                    raise failures[0]
            except InfraError as exc:
                # The engine or image is unavailable: jobs see the same error on their own cold
                # launches; the pool only tries again later instead of spinning.
                log.warning("could not fill the sandbox pool: %s", exc.message)
                wait_s = _RETRY_AFTER_FAILURE_S
            if self._idle:
                oldest = min(s.started_at for s in self._idle)
                wait_s = min(wait_s, max(0.0, oldest + self._max_age_s - time.monotonic()) + 0.1)
            # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that arrives as the
            # event is set, and the pool would go on launching containers after close().
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await self._wanted.wait()

    async def _launch_one(self) -> None:
        # Into the pool as soon as it is up: were it handed back through _maintain instead, a
        # close() arriving between the launch's end and _maintain's next step would lose it.
        self._idle.append(await self._launcher.launch(self._memory_bytes))

    async def close(self) -> None:
        """Stop refilling and destroy every idle container."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while self._idle:
            await self._launcher.destroy(self._idle.popleft())
