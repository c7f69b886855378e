"""Lists of submissions: each reader's own, or for staff those to their problems."""

from __future__ import annotations

import dataclasses
from typing import Any

from appliance import exams
from appliance.accounts import User
from appliance.clock import api_epoch
from appliance.db import Database
from appliance.jobs.results import student_verdict
from appliance.store import jobs as job_store

LIST_LIMIT = 200


async def list_submissions(
    db: Database, user: User, problem_id: int | None, class_id: int | None, user_id: int | None
) -> list[dict[str, Any]]:
    """The newest submissions (at most LIST_LIMIT) the user may see, narrowed by the other arguments."""
    where = job_store.SubmissionFilter(problem_id=problem_id, class_id=class_id, user_id=user_id)
    if not user.is_staff:
        # A student sees only their own: asking for someone else's finds none.
        if user_id is not None and user_id != user.id:
            return []
        # During their exam, only their submissions to its problems.
        where = dataclasses.replace(where, user_id=user.id, problem_ids=await exams.problem_scope(db, user))
    elif user.role == "teacher":
        where = dataclasses.replace(where, problem_owner_id=user.id)
    rows = await job_store.list_submissions(db, where, LIST_LIMIT)
    return [
        {
            "id": r["id"],
            "problem_id": r["problem_id"],
            "problem_title": r["title"],
            "user_id": r["user_id"],
            "username": r["username"],
            "language": r["language"],
            "status": r["status"],
            "verdict": r["verdict"]
            if user.is_staff
            else student_verdict(r["verdict"], r["hidden_feedback"], r["first_visible_failure"]),
            "score": r["score"],
            "late": bool(r["late"]),
            "created_at": api_epoch(r["created_at"]),
        }
        for r in rows
    ]
