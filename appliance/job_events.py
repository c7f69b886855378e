"""In-process notifications of job changes, for `?wait=` and the live status stream."""

from __future__ import annotations

import asyncio
import contextlib


class JobEvents:
    def __init__(self) -> None:
        self._per_job: dict[int, asyncio.Event] = {}
        self._any = asyncio.Event()

    def changed(self, job_id: int) -> None:
        event = self._per_job.pop(job_id, None)
        if event is not None:
            event.set()
        # Any change moves other jobs' queue positions: wake every stream once.
        self._any.set()
        self._any = asyncio.Event()

    def poke(self) -> None:
        """Something every stream shows changed (a switch, not a job): wake them all once."""
        self._any.set()
        self._any = asyncio.Event()

    async def wait_job(self, job_id: int, seconds: float) -> None:
        event = self._per_job.setdefault(job_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)

    async def wait_any(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._any.wait(), seconds)
