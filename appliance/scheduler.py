"""Periodic maintenance on an embedded APScheduler: purges, expiry and backups.

Each domain that has periodic work offers a `setup_periodic(scheduler, ...)` that adds its tasks,
and `appliance.runtime` calls them. All tasks run on the app's event loop with coalescing and one
instance at a time, so a slow purge never piles up behind itself; every run is recorded in the
job history.

Daily tasks run at a local time. APScheduler keeps its jobs in memory, so it cannot know of a slot
that passed while the machine was off: a daily task's `missed` check, asked at start-up, says
whether to run it once at once (the catch-up), within the task's misfire grace.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

from appliance import job_history
from appliance.app_keys import DB

log = logging.getLogger(__name__)

Task = Callable[[web.Application], Awaitable[object]]
# A daily task is told what started it ('schedule' or 'catch_up') and records its run itself (a
# backup names its job history row in its archive).
DailyTask = Callable[[web.Application, str], Awaitable[object]]
# Whether the daily task's last slot was missed (asked once at start-up, with the local time now).
Missed = Callable[[web.Application, datetime], Awaitable[bool]]
# A catch-up waits this long after start-up, so the server is serving before it begins.
CATCH_UP_DELAY_S = 30.0


@dataclass(frozen=True)
class Periodic:
    name: str
    task: Task | DailyTask
    every_s: float | None = None
    # Daily at this local time, "HH:MM"
    at: str | None = None
    grace_s: float | None = None
    missed: Missed | None = None
    # An adaptive task runs once, then again after as long as this says, asked after each run (a
    # failing push backs off); `every_s` is then the wait before its first run.
    next_in: Callable[[], float] | None = None


class Scheduler:
    """The periodic tasks of one app, added before it starts."""

    def __init__(self) -> None:
        self.jobs: list[Periodic] = []

    def add(self, name: str, task: Task, *, every_s: float) -> None:
        self.jobs.append(Periodic(name, task, every_s=every_s))

    def add_adaptive(self, name: str, task: Task, *, first_in_s: float, next_in: Callable[[], float]) -> None:
        self.jobs.append(Periodic(name, task, every_s=first_in_s, next_in=next_in))

    def add_daily(self, name: str, task: DailyTask, *, at: str, grace_s: float, missed: Missed) -> None:
        self.jobs.append(Periodic(name, task, at=at, grace_s=grace_s, missed=missed))


async def run_task(app: web.Application, job: Periodic, trigger: str = "schedule") -> None:
    try:
        if job.at is not None:
            result = await job.task(app, trigger)  # type: ignore[call-arg]
        else:
            async with job_history.recorded(app[DB], job.name, trigger) as run:
                result = await job.task(app)  # type: ignore[call-arg]
                run.detail.update(result if isinstance(result, dict) else {"result": result})
        log.info("scheduled %s done: %s", job.name, result)
    except Exception:  # one failing run must not unschedule the job
        log.exception("scheduled %s failed", job.name)


def _plan(aps: AsyncIOScheduler, app: web.Application, job: Periodic, delay_s: float) -> None:
    # No misfire limit: a run that comes late (a busy loop) still runs, and plans the next one.
    aps.add_job(
        _run_adaptive,
        DateTrigger(datetime.now().astimezone() + timedelta(seconds=delay_s)),
        args=[app, job, aps],
        id=job.name,
        replace_existing=True,
        misfire_grace_time=None,
    )


async def _run_adaptive(app: web.Application, job: Periodic, aps: AsyncIOScheduler) -> None:
    assert job.next_in is not None
    try:
        await run_task(app, job)
    finally:
        _plan(aps, app, job, job.next_in())


def scheduler_ctx(scheduler: Scheduler) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that runs `scheduler`'s tasks while the app runs."""

    async def run(app: web.Application) -> AsyncIterator[None]:
        aps = AsyncIOScheduler()
        for job in scheduler.jobs:
            options = {"args": [app, job], "id": job.name, "coalesce": True, "max_instances": 1}
            if job.next_in is not None:
                _plan(aps, app, job, job.every_s or 0.0)
                continue
            if job.at is None:
                aps.add_job(run_task, "interval", seconds=job.every_s, **options)
                continue
            hour, minute = job.at.split(":")
            aps.add_job(
                run_task, CronTrigger(hour=int(hour), minute=int(minute)), misfire_grace_time=job.grace_s, **options
            )
            now = datetime.now().astimezone()
            if job.missed is not None and await job.missed(app, now):
                log.info("scheduled %s missed its last slot: running it once now", job.name)
                aps.add_job(
                    run_task,
                    DateTrigger(now + timedelta(seconds=CATCH_UP_DELAY_S)),
                    args=[app, job, "catch_up"],
                    id=f"{job.name}-catch-up",
                )
        aps.start()
        yield
        aps.shutdown(wait=False)

    return run
