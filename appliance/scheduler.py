"""Periodic maintenance on an embedded APScheduler: purges, expiry and (later) backups.

Jobs are declared where their domain lives with `@periodic`, and all run on the app's event loop
with coalescing and one instance at a time, so a slow purge never piles up behind itself.
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


PERIODIC: list[Periodic] = []


def periodic(name: str, every_s: float) -> Callable[[Task], Task]:
    def register(task: Task) -> Task:
        PERIODIC.append(Periodic(name, every_s, task))
        return task

    return register


async def run_task(app: web.Application, job: Periodic) -> None:
    try:
        result = await job.task(app)
        log.info("scheduled %s done: %s", job.name, result)
    except Exception:  # one failing run must not unschedule the job
        log.exception("scheduled %s failed", job.name)


async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    scheduler = AsyncIOScheduler()
    for job in PERIODIC:
        scheduler.add_job(
            run_task,
            "interval",
            seconds=job.every_s,
            args=[app, job],
            id=job.name,
            coalesce=True,
            max_instances=1,
        )
    scheduler.start()
    yield
    scheduler.shutdown(wait=False)
