"""The dashboard's buttons on one job: abort it (a queued job ends at once as `stopped`; a running
one is stopped in its sandbox and ends the same way) or requeue it (a job the infrastructure gave
up on, or a running one that is stuck). An admin acts on any job; a teacher only on the jobs the
dashboard shows them (their own, their problems'); any other job is "not found", as if missing."""

from __future__ import annotations

import time
from collections.abc import Callable

from appliance.accounts import User
from appliance.db import Database, Row
from appliance.errors import Conflict, NotFound
from appliance.store import dashboard as store

# A running job taken from its worker waits this long before another worker may claim it, so the
# old sandbox is gone first (its late result is fenced off by the lease owner anyway).
REQUEUE_RUNNING_DELAY_S = 1.0


async def _job(db: Database, user: User, job_id: int) -> Row:
    job = await store.job_in_scope(db, job_id, None if user.role == "admin" else user.id)
    if job is None:
        raise NotFound("not_found", "no such job")
    return job


async def abort_job(db: Database, user: User, job_id: int, stop_running: Callable[[int], bool]) -> str:
    """Returns how it ended: 'cancelled' (it never ran) or 'stopping' (its sandbox is being stopped)."""
    job = await _job(db, user, job_id)
    if await store.abort_queued(db, job_id):
        return "cancelled"
    if job["status"] in ("queued", "running") and stop_running(job_id):
        return "stopping"
    raise Conflict("job_finished", "this job has already finished (or is just finishing): nothing to abort")


async def requeue_job(db: Database, user: User, job_id: int, stop_running: Callable[[int], bool]) -> None:
    job = await _job(db, user, job_id)
    if job["status"] == "failed" and await store.requeue_failed_job(db, job_id):
        return
    if job["status"] == "running" and await store.requeue_running_job(
        db, job_id, time.time() + REQUEUE_RUNNING_DELAY_S
    ):
        stop_running(job_id)  # free its sandbox; its result, if any, is no longer accepted
        return
    raise Conflict("not_requeueable", "only a job that failed, or a running one that is stuck, can be queued again")
