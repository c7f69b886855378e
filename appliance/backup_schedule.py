"""The daily backup on the embedded scheduler, and whether a slot was missed while the machine was off."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from aiohttp import web

from appliance import backups, clock
from appliance.app_keys import DB, SETTINGS
from appliance.backups import BackupResult
from appliance.scheduler import Scheduler
from appliance.store import job_runs


def last_slot(now: datetime, at: str) -> datetime:
    """The latest moment at local time `at` ("HH:MM") not after `now` (an aware local time)."""
    hour, minute = (int(part) for part in at.split(":"))
    slot = datetime.combine(now.date(), time(hour, minute), now.tzinfo)
    return slot if slot <= now else slot - timedelta(days=1)


def missed_slot(
    now: datetime, at: str, grace: timedelta, *, last_started: datetime | None, installed: datetime | None
) -> datetime | None:
    """The slot to catch up at start-up, if any: the last one, when it is within the grace, the
    appliance existed then, and no backup started since."""
    slot = last_slot(now, at)
    if now - slot > grace or installed is None or installed > slot:
        return None
    if last_started is not None and last_started >= slot:
        return None
    return slot


async def _missed(app: web.Application, now: datetime) -> bool:
    settings = app[SETTINGS]
    db = app[DB]
    started, installed = await job_runs.last_started_at(db, "backup"), await job_runs.installed_at(db)
    slot = missed_slot(
        now,
        settings.backup_time,
        timedelta(hours=settings.backup_misfire_grace_h),
        last_started=None if started is None else clock.from_db(started),
        installed=None if installed is None else clock.parse_iso(installed),
    )
    return slot is not None


async def scheduled_backup(app: web.Application, trigger: str) -> BackupResult:
    return await backups.take_backup(app[DB], app[SETTINGS], trigger=trigger)


def setup_periodic(scheduler: Scheduler, backup_time: str, grace_h: int) -> None:
    if backup_time:
        scheduler.add_daily("backup", scheduled_backup, at=backup_time, grace_s=grace_h * 3600, missed=_missed)
