"""Rejudges: a problem's submissions run again after its tests changed, what changed, and the new
results shown to students once published."""

from __future__ import annotations

from typing import Any

from appliance import problems
from appliance.accounts import User
from appliance.classes import require_staff
from appliance.clock import api_epoch
from appliance.db import Database, Row
from appliance.jobs.queueing import enqueue
from appliance.jobs.results import FINAL
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


def _compared(row: Row) -> dict[str, Any]:
    finished = row["status"] == "done"
    return {
        "submission_id": row["submission_id"],
        "user_id": row["user_id"],
        "username": row["username"],
        "rejudge_id": row["rejudge_id"],
        "status": row["status"],
        "old": {"status": row["old_status"], "verdict": row["old_verdict"], "score": row["old_score"]},
        "new": {"status": row["status"], "verdict": row["new_verdict"], "score": row["new_score"]},
        # Only a finished rejudge can change a result; one the runner gave up on changes nothing.
        "changed": finished
        and (row["old_status"], row["old_verdict"], row["old_score"]) != ("done", row["new_verdict"], row["new_score"]),
        "published": bool(row["published"]),
        "finished_at": api_epoch(row["finished_at"]),
    }


async def rejudge_results(db: Database, user: User, problem_id: int) -> dict[str, Any]:
    """The newest rejudge of each of the problem's submissions against the result before it.
    `state`: "none" (never rejudged), "running" (some still queued or running) or "done"."""
    require_staff(user)
    await problems.readable_row(db, user, problem_id)
    compared = [_compared(row) for row in await job_store.latest_rejudges(db, problem_id)]
    finished = sum(c["status"] in FINAL for c in compared)
    return {
        "problem_id": problem_id,
        "state": "none" if not compared else "done" if finished == len(compared) else "running",
        "total": len(compared),
        "finished": finished,
        "changed": sum(c["changed"] for c in compared),
        "submissions": compared,
    }
