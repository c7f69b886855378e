"""Submissions summarised for gradebooks and progress: each with the result students see.

A published rejudge replaces its submission's verdict and score, exactly as in the submission
list, so the gradebook and the student's own page always agree.
"""

from __future__ import annotations

from collections.abc import Sequence

from appliance.clock import db_now
from appliance.db import Database, Row
from appliance.store.jobs import first_visible_failure_sql
from appliance.store.portable import in_list

_EFFECTIVE = (
    "SELECT j.user_id, j.problem_id, j.status, COALESCE(r.verdict, j.verdict) AS verdict,"
    " COALESCE(r.score, j.score) AS score, j.late, j.created_at FROM jobs j"
    " LEFT JOIN jobs r ON r.id = j.published_rejudge WHERE j.kind = 'submission'"
)


async def class_submissions(db: Database, class_id: int) -> list[Row]:
    """Submissions by the class's members to the class's problems, oldest first."""
    return await db.fetchall(
        f"{_EFFECTIVE} AND j.problem_id IN (SELECT problem_id FROM problem_classes WHERE class_id = ?)"
        " AND j.user_id IN (SELECT user_id FROM class_members WHERE class_id = ?) ORDER BY j.id",
        (class_id, class_id),
    )


async def class_problems(db: Database, class_id: int) -> list[Row]:
    return await db.fetchall(
        "SELECT p.id, p.title FROM problems p JOIN problem_classes pc ON pc.problem_id = p.id"
        " WHERE pc.class_id = ? ORDER BY p.id",
        (class_id,),
    )


async def user_submissions(db: Database, user_id: int, problem_ids: Sequence[int] | None = None) -> list[Row]:
    """The user's submissions as `_EFFECTIVE` gives them, with what a student's view of their
    verdicts needs: the problem's hidden-test feedback and the first failing test they can see;
    only to `problem_ids` when given (a student's exam)."""
    only = "" if problem_ids is None else f" AND {in_list('j.problem_id', problem_ids)}"
    return await db.fetchall(
        "SELECT j.user_id, j.problem_id, j.status, COALESCE(r.verdict, j.verdict) AS verdict,"
        " COALESCE(r.score, j.score) AS score, j.late, j.created_at, p.hidden_feedback,"
        f" {first_visible_failure_sql('COALESCE(r.id, j.id)')} AS first_visible_failure"
        " FROM jobs j JOIN problems p ON p.id = j.problem_id LEFT JOIN jobs r ON r.id = j.published_rejudge"
        f" WHERE j.kind = 'submission' AND j.user_id = ?{only} ORDER BY j.id",
        (db_now(), user_id, *(problem_ids or ())),
    )
