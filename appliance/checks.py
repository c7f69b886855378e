""" "Check my solution": a teacher runs a reference solution against all of a problem's tests.

It is an ordinary submission by the teacher (so its results show every test, hidden ones
included, through the submission API) with one difference: it is never deduplicated. A teacher
who just changed the tests and checks the same code again must get a run against the new tests,
not the earlier result.
"""

from __future__ import annotations

from appliance import problems
from appliance.accounts import User
from appliance.classes import require_staff
from appliance.db import Database
from appliance.jobs.queueing import Queued, check_language, code_hash, enqueue, queued
from appliance.settings import Settings
from runner.queue import PRIORITY_STAFF


async def check_solution(
    db: Database, settings: Settings, user: User, problem_id: int, language: str, code: str
) -> Queued:
    require_staff(user)
    await problems.readable_row(db, user, problem_id)  # staff: only their own problems (admins: all)
    check_language(language)
    job_id, _ = await enqueue(
        db,
        kind="submission",
        user_id=user.id,
        problem_id=problem_id,
        language=language,
        code=code,
        code_hash=code_hash(language, code),
        stdin="",
        priority=PRIORITY_STAFF,
        dedup_window_s=None,
        in_flight_cap=None,
        queue_max=settings.queue_max,
    )
    return await queued(db, job_id, False)
