"""The job history: every run of a backup, restore or scheduled task, recorded with its start,
end, outcome, counts and bytes, and listed for admins."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from appliance import clock
from appliance.db import Database, Row
from appliance.errors import AppError
from appliance.store import job_runs


@dataclass
class Run:
    id: int
    detail: dict[str, Any] = field(default_factory=dict)
    bytes: int | None = None


@asynccontextmanager
async def recorded(db: Database, job: str, trigger: str) -> AsyncIterator[Run]:
    """Record the run of the block: 'ok' when it ends, 'failed' with the error when it raises."""
    run = Run(await job_runs.start(db, job, trigger))
    try:
        yield run
    except AppError as exc:
        await job_runs.finish(db, run.id, "failed", {**run.detail, "error": {"code": exc.code, "message": exc.message}})
        raise
    except Exception as exc:
        error = {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"}
        await job_runs.finish(db, run.id, "failed", {**run.detail, "error": error})
        raise
    await job_runs.finish(db, run.id, "ok", run.detail, run.bytes)


def _shape(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "job": row["job"],
        "trigger": row["trigger"],
        "started_at": clock.api_iso(row["started_at"]),
        "finished_at": clock.api_iso(row["finished_at"]),
        "outcome": row["outcome"],
        "bytes": row["bytes"],
        "detail": json.loads(row["detail"]),
    }


async def history(db: Database, *, job: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    return [_shape(row) for row in await job_runs.recent(db, job=job, limit=limit)]


async def last_finished(db: Database, job: str) -> dict[str, Any] | None:
    """The job's last finished run: when, how it went, and its detail or its error."""
    row = await job_runs.last_finished(db, job)
    return None if row is None else _shape(row)


async def last_backup(db: Database) -> dict[str, Any] | None:
    return await last_finished(db, "backup")


async def forget_old(db: Database, days: int) -> int:
    return await job_runs.forget_older_than(db, clock.db_later(-timedelta(days=days)))


async def abandon_running(db: Database) -> int:
    """Runs the last stop cut short (still 'running' at start-up) are marked failed."""
    return await job_runs.abandon_running(db)


async def record_restore(db: Database, *, archive: str, manifest: dict[str, Any], replaced: str | None) -> None:
    """After a restore: the restored backup's own run is settled, and the restore is recorded."""
    run_id = manifest.get("job_run_id")
    if isinstance(run_id, int):
        created = clock.to_db(clock.parse_iso(str(manifest["created_at"])))
        await job_runs.settle_restored_backup(db, run_id, created, {"archive": archive, "tables": manifest["tables"]})
    async with recorded(db, "restore", "cli") as run:
        run.detail.update({"archive": archive, "restored_from": manifest["appliance_id"], "replaced": replaced})
