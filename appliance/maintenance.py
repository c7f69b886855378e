"""The periodic maintenance tasks the embedded scheduler runs (`setup_periodic` adds them)."""

from __future__ import annotations

from aiohttp import web

from appliance import file_expiry, job_history, jobs, retention
from appliance.app_keys import BLOBS, DB, SETTINGS
from appliance.scheduler import Scheduler
from appliance.store import sessions as session_store


async def purge_expired_sessions(app: web.Application) -> int:
    return await session_store.purge_expired_sessions(app[DB])


async def purge_expired_files(app: web.Application) -> dict[str, int]:
    """Expired and deleted uploads no submission keeps, and the blobs only they used."""
    return await file_expiry.purge_expired_files(app[DB], app[BLOBS])


async def purge_expired_outputs(app: web.Application) -> dict[str, int]:
    """Full outputs of jobs finished longer ago than `full_output_expiry_days`, and their blobs."""
    return await jobs.purge_expired_outputs(app[DB], app[BLOBS], app[SETTINGS].full_output_expiry_days)


async def purge_orphan_blobs(app: web.Application) -> int:
    """Blobs nothing references any more: left behind by deleted problems, jobs and accounts."""
    return await file_expiry.purge_orphan_blobs(app[DB], app[BLOBS])


async def forget_old_job_runs(app: web.Application) -> int:
    """The job history's runs older than `job_history_days`."""
    return await job_history.forget_old(app[DB], app[SETTINGS].job_history_days)


async def purge_by_retention(app: web.Application) -> list[dict[str, object]]:
    """The daily retention purge, when its local time has passed since the last run (or the
    machine was off then): a check every few minutes rather than a timer, so a missed day is
    caught up soon after start-up."""
    return await retention.purge_if_due(app[DB], app[BLOBS], app[SETTINGS])


def setup_periodic(scheduler: Scheduler) -> None:
    scheduler.add("purge_expired_sessions", purge_expired_sessions, every_s=3600)
    scheduler.add("purge_expired_files", purge_expired_files, every_s=900)
    scheduler.add("purge_expired_outputs", purge_expired_outputs, every_s=3600)
    scheduler.add("purge_orphan_blobs", purge_orphan_blobs, every_s=6 * 3600)
    scheduler.add("forget_old_job_runs", forget_old_job_runs, every_s=24 * 3600)
    scheduler.add("purge_by_retention", purge_by_retention, every_s=300)
