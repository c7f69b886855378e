"""Rejudges: a problem's submissions run again after its tests changed, and shown once published."""

from __future__ import annotations

from typing import Any

from appliance import problems
from appliance.accounts import User
from appliance.classes import require_staff
from appliance.db import Database
from appliance.jobs.queueing import enqueue
from appliance.store import jobs as job_store
from runner.queue import PRIORITY_REJUDGE


async def rejudge(db: Database, user: User, problem_id: int) -> dict[str, Any]:
    require_staff(user)
    await problems.readable_row(db, user, problem_id)
    created = []
    for submission in await job_store.submissions_of_problem(db, problem_id):
        job_id, _ = await enqueue(
            db,
            kind="rejudge",
            user_id=submission["user_id"],
            problem_id=problem_id,
            language=submission["language"],
            code=submission["code"],
            code_hash=submission["code_hash"],
            stdin="",
            priority=PRIORITY_REJUDGE,
            dedup_window_s=None,
            in_flight_cap=None,
            queue_max=None,
            rejudge_of=submission["id"],
        )
        created.append(job_id)
    return {"problem_id": problem_id, "rejudges": created}


async def publish_rejudge(db: Database, user: User, problem_id: int) -> dict[str, Any]:
    require_staff(user)
    await problems.readable_row(db, user, problem_id)
    return {"problem_id": problem_id, "published": await job_store.publish_rejudges(db, problem_id)}
