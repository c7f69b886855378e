"""Periodic maintenance on an embedded APScheduler: purges, expiry and (later) backups.

Each domain that has periodic work offers a `setup_periodic(scheduler)` that adds its tasks, and
`appliance.runtime` calls them. All tasks run on the app's event loop with coalescing and one
instance at a time, so a slow purge never piles up behind itself.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger(__name__)

Task = Callable[[web.Application], Awaitable[object]]


@dataclass(frozen=True)
class Periodic:
    name: str
    every_s: float
    task: Task


class Scheduler:
    """The periodic tasks of one app, added before it starts."""

    def __init__(self) -> None:
        self.jobs: list[Periodic] = []

    def add(self, name: str, task: Task, *, every_s: float) -> None:
        self.jobs.append(Periodic(name, every_s, task))


async def run_task(app: web.Application, job: Periodic) -> None:
    try:
        result = await job.task(app)
        log.info("scheduled %s done: %s", job.name, result)
    except Exception:  # one failing run must not unschedule the job
        log.exception("scheduled %s failed", job.name)


def scheduler_ctx(scheduler: Scheduler) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that runs `scheduler`'s tasks while the app runs."""

    async def run(app: web.Application) -> AsyncIterator[None]:
        aps = AsyncIOScheduler()
        for job in scheduler.jobs:
            aps.add_job(
                run_task,
                "interval",
                seconds=job.every_s,
                args=[app, job],
                id=job.name,
                coalesce=True,
                max_instances=1,
            )
        aps.start()
        yield
        aps.shutdown(wait=False)

    return run
