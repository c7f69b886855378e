"""Queueing runs and submissions: the policy that admits a job or refuses it.

Duplicates return the earlier job, each student has a cap on jobs in flight, a rate of runs and
of submissions a minute (appliance.rate_limits) and a submission budget per problem, all of them
as overridden for the student (appliance.limit_overrides), and the class queue has a bound. Every
decision is made under the writer lock, from facts the store reads in the same transaction (the
rates: reserved in memory in it), so two requests at once cannot both pass a check that only one
of them may.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from appliance import deadlines, limit_overrides, problems, user_files
from appliance.accounts import User
from appliance.db import Database
from appliance.errors import Invalid, NotFound, RateLimited, Unavailable
from appliance.limit_overrides import Limits
from appliance.rate_limits import Admission, AdmissionSlot, UserRates
from appliance.settings import Settings
from appliance.store import files as file_store
from appliance.store import jobs as job_store
from runner.languages import LANGUAGES
from runner.queue import PRIORITY_STAFF, PRIORITY_STUDENT


@dataclass(frozen=True)
class Queued:
    id: int
    status: str
    deduplicated: bool
    position: int | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "deduplicated": self.deduplicated, "position": self.position}


def code_hash(language: str, code: str, file_ids: Sequence[str] = ()) -> str:
    """The dedup key: the same code with other files is another job. Files are immutable (a
    replaced upload gets a new id), so their ids stand for their content; order does not matter."""
    if not file_ids:
        return hashlib.sha256(f"{language}\0{code}".encode()).hexdigest()
    return hashlib.sha256(f"{language}\0{code}\0{','.join(sorted(file_ids))}".encode()).hexdigest()


def check_language(language: str) -> None:
    if language not in LANGUAGES:
        raise Invalid("unknown_language", f"language must be one of {', '.join(LANGUAGES)}", field="language")


def _priority(user: User) -> int:
    return PRIORITY_STAFF if user.is_staff else PRIORITY_STUDENT


@dataclass(frozen=True)
class SubmissionBudget:
    """At most `limit` submissions by one student to one problem within any `window_s` seconds."""

    limit: int
    window_s: float
    per: str  # how the window reads in a message: "minute", "hour"


def submission_budgets(limits: Limits) -> list[SubmissionBudget]:
    """The budgets in force: a short burst limit and an hourly one (None: no limit). They bound
    how much a program can learn of hidden tests by choosing how it fails on them."""
    budgets = [
        (limits.submissions_per_problem_per_minute, 60.0, "minute"),
        (limits.submissions_per_problem_per_hour, 3600.0, "hour"),
    ]
    return [SubmissionBudget(limit, window_s, per) for limit, window_s, per in budgets if limit]


def _check_budgets(budgets: Sequence[SubmissionBudget], times: Sequence[float], now: float) -> None:
    """Refuse a submission past a budget, given when the earlier ones counted against it were made."""
    for budget in budgets:
        inside = [t for t in times if t > now - budget.window_s]
        if len(inside) >= budget.limit:
            # Allowed again once enough of them have left the window.
            wait = math.ceil(inside[len(inside) - budget.limit] + budget.window_s - now)
            raise RateLimited(
                "too_many_submissions",
                f"you may submit to this problem {budget.limit} times per {budget.per}; "
                f"try again in {_duration(wait)} (running your code with your own input is not limited)",
                retry_after=wait,
            )


def _duration(seconds: int) -> str:
    if seconds < 90:
        return f"{max(1, seconds)} seconds"
    return f"{math.ceil(seconds / 60)} minutes"


async def enqueue(
    db: Database,
    *,
    kind: str,
    user_id: int,
    problem_id: int | None,
    language: str,
    code: str,
    code_hash: str,
    stdin: str,
    priority: int,
    dedup_window_s: float | None,
    in_flight_cap: int | None,
    queue_max: int | None,
    rejudge_of: int | None = None,
    files: Sequence[str] = (),
    graphical: bool | None = None,
    budgets: Sequence[SubmissionBudget] = (),
    late: bool = False,
    admit: Callable[[], Admission] | None = None,
) -> tuple[int, bool]:
    """Queue a job, or return the user's identical pending one. Returns (job id, deduplicated).

    `files` are ids of the user's files, already checked by the caller; they are snapshotted into
    the job in this same transaction (`code_hash` must cover them, so dedup tells file sets apart).
    `budgets` (a submission's, to `problem_id`) are checked under the same writer lock; a
    deduplicated job is returned before they are, so it costs nothing. So is `admit` (the user's
    rate a minute): its reservation becomes an event once the job is committed, and is dropped
    when anything refuses the job.
    """
    job = job_store.NewJob(
        kind=kind,
        user_id=user_id,
        problem_id=problem_id,
        language=language,
        code=code,
        code_hash=code_hash,
        stdin=stdin,
        priority=priority,
        created_at=time.time(),
        rejudge_of=rejudge_of,
        graphical=graphical,
        late=late,
    )
    slot = AdmissionSlot(admit)
    async with slot, db.transaction() as conn:
        if dedup_window_s is not None:
            existing = await job_store.pending_duplicate(
                conn,
                user_id=user_id,
                problem_id=problem_id,
                kind=kind,
                code_hash=code_hash,
                language=language,
                since=job.created_at - dedup_window_s,
            )
            if existing is not None:
                return existing, True
        # Synchronous, after the dedup answer (free) and before anything else is awaited.
        slot.take()
        if budgets and problem_id is not None:
            now = time.time()
            since = now - max(b.window_s for b in budgets)
            _check_budgets(budgets, await job_store.recent_submissions(conn, user_id, problem_id, since), now)
        if in_flight_cap is not None and await job_store.jobs_in_flight(conn, user_id) >= in_flight_cap:
            raise RateLimited(
                "too_many_jobs",
                f"you already have {in_flight_cap} programs waiting or running; wait for one to finish",
                retry_after=5,
            )
        if queue_max is not None and await job_store.queued_count(conn) >= queue_max:
            raise Unavailable("queue_full", "the class queue is full right now; try again in a minute", retry_after=30)
        job_id = await job_store.insert(conn, job)
        # Checked again here, under the writer lock: a file deleted or purged since the caller's
        # check refuses the job (the transaction rolls back) instead of queueing it without it.
        missing = await file_store.attach_to_job(conn, job_id, user_id, files)
        if missing is not None:
            raise NotFound("not_found", "no such file", field=f"files[{missing}]")
        return job_id, False


async def queued(db: Database, job_id: int, deduplicated: bool) -> Queued:
    """What the caller is told of a job just queued (or found queued already)."""
    job = await job_store.get(db, job_id)
    assert job is not None
    return Queued(job_id, job["status"], deduplicated, await job_store.queue_position(db, job))


async def _enqueue_interactive(
    db: Database,
    settings: Settings,
    rates: UserRates,
    user: User,
    *,
    problem_id: int | None,
    language: str,
    code: str,
    stdin: str,
    file_ids: Sequence[str],
    graphical: bool | None = None,
    late: bool = False,
) -> Queued:
    """A user's own run or submission: capped per student as overridden for them (staff have no
    caps), bounded by the queue, deduplicated (submissions only: a run with the same code may have
    new stdin)."""
    check_language(language)
    file_ids = await user_files.check_job_files(db, settings, user, file_ids, problem_id)
    limits = await limit_overrides.effective(db, settings, user)
    kind = "run" if problem_id is None else "submission"
    per_minute = limits.runs_per_user_per_minute if kind == "run" else limits.submissions_per_user_per_minute
    job_id, dedup = await enqueue(
        db,
        kind=kind,
        user_id=user.id,
        problem_id=problem_id,
        language=language,
        code=code,
        code_hash=code_hash(language, code, file_ids),
        stdin=stdin,
        priority=_priority(user),
        dedup_window_s=None if problem_id is None else settings.dedup_window_s,
        in_flight_cap=limits.max_jobs_in_flight_per_user,
        queue_max=settings.queue_max,
        files=file_ids,
        graphical=graphical,
        budgets=() if problem_id is None else submission_budgets(limits),
        late=late,
        admit=lambda: rates.admit(kind, user.id, per_minute),
    )
    return await queued(db, job_id, dedup)


async def submit(
    db: Database,
    settings: Settings,
    rates: UserRates,
    user: User,
    problem_id: int,
    language: str,
    code: str,
    file_ids: Sequence[str] = (),
) -> Queued:
    await problems.readable_row(db, user, problem_id)
    late = await deadlines.admit_submission(db, user, problem_id)
    return await _enqueue_interactive(
        db,
        settings,
        rates,
        user,
        problem_id=problem_id,
        language=language,
        code=code,
        stdin="",
        file_ids=file_ids,
        late=late,
    )


async def run(
    db: Database,
    settings: Settings,
    rates: UserRates,
    user: User,
    language: str,
    code: str,
    stdin: str,
    file_ids: Sequence[str] = (),
    graphical: bool | None = None,
) -> Queued:
    """A plain run; `graphical` None lets the runner decide from the code's imports."""
    return await _enqueue_interactive(
        db,
        settings,
        rates,
        user,
        problem_id=None,
        language=language,
        code=code,
        stdin=stdin,
        file_ids=file_ids,
        graphical=graphical,
    )
