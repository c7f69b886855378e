"""The queue as the live dashboard and /metrics read it, scoped at the query.

`teacher` None reads every job (an admin); a teacher's id reads only that teacher's own jobs and
the jobs of problems they own (their classes' submissions and rejudges): the same jobs
`appliance.jobs.results` lets a teacher read. Nothing else of another class is ever selected.
"""

from __future__ import annotations

from typing import Any

from appliance.clock import DB_EPOCH, db_epoch, db_now
from appliance.db import Database, Row, dialect_of

_FROM = "FROM jobs j LEFT JOIN problems p ON p.id = j.problem_id"
_SCOPE = " AND (j.user_id = ? OR p.owner_id = ?)"


def _latency(db: Database) -> str:
    """Seconds from a job's queueing to its result (times are stored as ISO text): the engines
    share no date arithmetic."""
    if dialect_of(db) == "postgresql":
        return (
            "CAST(EXTRACT(EPOCH FROM (CAST(j.finished_at AS timestamptz) - CAST(j.created_at AS timestamptz)))"
            " AS DOUBLE PRECISION)"
        )
    return "(julianday(j.finished_at) - julianday(j.created_at)) * 86400.0"


def _scoped(teacher: int | None, params: list[Any]) -> str:
    if teacher is None:
        return ""
    params += [teacher, teacher]
    return _SCOPE


async def queue_counts(db: Database, teacher: int | None) -> list[Row]:
    """(status, priority, jobs, oldest created_at) of the queued and running jobs."""
    params: list[Any] = []
    scope = _scoped(teacher, params)
    return await db.fetchall(
        f"SELECT j.status, j.priority, COUNT(*) AS jobs, MIN(j.created_at) AS oldest {_FROM}"
        f" WHERE j.status IN ('queued', 'running'){scope} GROUP BY j.status, j.priority",
        params,
    )


async def active_jobs(db: Database, teacher: int | None, limit: int) -> list[Row]:
    """Running jobs, then queued ones in the order the workers take them (near enough: by priority, age)."""
    params: list[Any] = []
    scope = _scoped(teacher, params)
    return await db.fetchall(
        "SELECT j.id, j.kind, j.status, j.priority, j.user_id, u.username, j.problem_id, p.title AS problem_title,"
        f" j.language, j.infra_attempts, j.created_at, j.started_at {_FROM} JOIN users u ON u.id = j.user_id"
        f" WHERE j.status IN ('queued', 'running'){scope}"
        " ORDER BY j.status = 'running' DESC, j.priority, j.id LIMIT ?",
        [*params, limit],
    )


async def recent_failed(db: Database, teacher: int | None, limit: int) -> list[Row]:
    """Jobs the infrastructure gave up on, newest first (candidates for a requeue)."""
    params: list[Any] = []
    scope = _scoped(teacher, params)
    return await db.fetchall(
        "SELECT j.id, j.kind, j.status, j.priority, j.user_id, u.username, j.problem_id, p.title AS problem_title,"
        f" j.language, j.infra_attempts, j.created_at, j.finished_at {_FROM} JOIN users u ON u.id = j.user_id"
        f" WHERE j.status = 'failed'{scope} ORDER BY j.finished_at DESC NULLS LAST, j.id DESC LIMIT ?",
        [*params, limit],
    )


async def finished_since(db: Database, teacher: int | None, since: float) -> list[Row]:
    """(finished_at, latency_s) of every job done since `since` (epoch seconds), oldest first."""
    params: list[Any] = [db_epoch(since)]
    scope = _scoped(teacher, params)
    return await db.fetchall(
        f"SELECT j.finished_at, {_latency(db)} AS latency_s {_FROM}"
        f" WHERE j.status = 'done' AND j.finished_at >= ?{scope} ORDER BY j.finished_at",
        params,
    )


async def job_in_scope(db: Database, job_id: int, teacher: int | None) -> Row | None:
    params: list[Any] = [job_id]
    scope = _scoped(teacher, params)
    return await db.fetchone(f"SELECT j.id, j.kind, j.status, j.user_id {_FROM} WHERE j.id = ?{scope}", params)


async def abort_queued(db: Database, job_id: int) -> bool:
    """End a job still waiting in the queue as stopped; False when it is not waiting."""
    changed = await db.execute_rowcount(
        "UPDATE jobs SET status = 'done', verdict = 'stopped', finished_at = ? WHERE id = ? AND status = 'queued'",
        (db_now(), job_id),
    )
    return changed == 1


async def requeue_failed_job(db: Database, job_id: int) -> bool:
    """A job the infrastructure gave up on goes back to the queue with fresh retries."""
    changed = await db.execute_rowcount(
        "UPDATE jobs SET status = 'queued', infra_attempts = 0, not_before = ?, finished_at = NULL"
        " WHERE id = ? AND status = 'failed'",
        (DB_EPOCH, job_id),
    )
    return changed == 1


async def requeue_running_job(db: Database, job_id: int, not_before: float) -> bool:
    """Take a running job from its worker (its late result is fenced off by the lease owner) and
    queue it again, to be claimed no earlier than `not_before` (epoch seconds)."""
    changed = await db.execute_rowcount(
        "UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_expires = NULL, not_before = ?"
        " WHERE id = ? AND status = 'running'",
        (db_epoch(not_before), job_id),
    )
    return changed == 1


async def verdict_counts(db: Database) -> list[Row]:
    """(verdict, jobs) of every finished job; failed jobs count under the verdict 'infra_error'."""
    return await db.fetchall(
        "SELECT CASE WHEN status = 'failed' THEN 'infra_error' ELSE COALESCE(verdict, 'none') END AS verdict,"
        " COUNT(*) AS jobs FROM jobs WHERE status IN ('done', 'failed') GROUP BY 1"
    )


async def latency_buckets(db: Database, bounds: tuple[float, ...]) -> tuple[list[int], int, float]:
    """Cumulative counts of finished jobs at or under each bound (seconds from queueing to result),
    their total and the sum of their latencies: a Prometheus histogram."""
    latency = _latency(db)
    columns = ", ".join(f"SUM(CASE WHEN {latency} <= ? THEN 1 ELSE 0 END)" for _ in bounds)
    row = await db.fetchone(
        f"SELECT COUNT(*), COALESCE(SUM({latency}), 0){', ' if bounds else ''}{columns}"
        " FROM jobs j WHERE j.status = 'done' AND j.finished_at IS NOT NULL",
        bounds,
    )
    assert row is not None
    return [int(v or 0) for v in tuple(row)[2:]], int(row[0]), float(row[1])


async def database_bytes(db: Database) -> int:
    """PostgreSQL's size of the whole database on the server's disk (tables, indexes, free space)."""
    return int(await db.fetchval("SELECT pg_database_size(current_database())"))
