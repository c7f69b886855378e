"""The job history: one row per run of a maintenance job (backups, restores, periodic purges)."""

from __future__ import annotations

import json
from typing import Any

from appliance.clock import db_now
from appliance.db import Database, Row

_COLUMNS = "id, job, trigger, started_at, finished_at, outcome, bytes, detail"


async def start(db: Database, job: str, trigger: str) -> int:
    return await db.insert(
        "INSERT INTO job_runs (job, trigger, started_at) VALUES (?, ?, ?) RETURNING id", (job, trigger, db_now())
    )


async def finish(db: Database, run_id: int, outcome: str, detail: dict[str, Any], size: int | None = None) -> None:
    await db.execute(
        "UPDATE job_runs SET finished_at = ?, outcome = ?, bytes = ?, detail = ? WHERE id = ?",
        (db_now(), outcome, size, json.dumps(detail, sort_keys=True), run_id),
    )


async def record_done(db: Database, job: str, trigger: str, detail: dict[str, Any]) -> int:
    """A run that is over as it is recorded (one write): it succeeded, with `detail`."""
    now = db_now()
    return await db.insert(
        "INSERT INTO job_runs (job, trigger, started_at, finished_at, outcome, detail)"
        " VALUES (?, ?, ?, ?, 'ok', ?) RETURNING id",
        (job, trigger, now, now, json.dumps(detail, sort_keys=True)),
    )


async def recent(db: Database, *, job: str | None, limit: int) -> list[Row]:
    if job is None:
        return await db.fetchall(f"SELECT {_COLUMNS} FROM job_runs ORDER BY id DESC LIMIT ?", (limit,))
    return await db.fetchall(f"SELECT {_COLUMNS} FROM job_runs WHERE job = ? ORDER BY id DESC LIMIT ?", (job, limit))


async def last_finished(db: Database, job: str) -> Row | None:
    return await db.fetchone(
        f"SELECT {_COLUMNS} FROM job_runs WHERE job = ? AND outcome != 'running' ORDER BY id DESC LIMIT 1", (job,)
    )


async def last_started_at(db: Database, job: str) -> str | None:
    """When the job last started, whatever came of it (a failed slot is not caught up again)."""
    return await db.fetchval("SELECT max(started_at) FROM job_runs WHERE job = ?", (job,))


async def installed_at(db: Database) -> str | None:
    """When this database's first migration was applied: the appliance did not exist before."""
    return await db.fetchval("SELECT min(applied_at) FROM schema_migrations")


async def forget_older_than(db: Database, before: str) -> int:
    return await db.execute_rowcount("DELETE FROM job_runs WHERE started_at < ?", (before,))


async def abandon_running(db: Database) -> int:
    """Runs a crash or kill left 'running' at start-up: they failed."""
    return await db.execute_rowcount(
        "UPDATE job_runs SET outcome = 'failed', finished_at = ?, detail = ? WHERE outcome = 'running'",
        (db_now(), json.dumps({"error": {"code": "interrupted", "message": "the appliance stopped during the run"}})),
    )


async def settle_restored_backup(db: Database, run_id: int, finished_at: str, detail: dict[str, Any]) -> None:
    """A restored database's own backup run was copied while 'running': it went well (here it is)."""
    await db.execute(
        "UPDATE job_runs SET outcome = 'ok', finished_at = ?, detail = ? WHERE id = ? AND outcome = 'running'",
        (finished_at, json.dumps(detail, sort_keys=True), run_id),
    )
