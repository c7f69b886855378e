"""Runs and submissions: queueing with dedup, caps and submission budgets, reading results with
visibility rules, rejudges, and the expiry of stored full outputs."""

from __future__ import annotations

import hashlib
import json
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from appliance import blob_refs, file_expiry, problems, user_files
from appliance.accounts import User
from appliance.blobs import BlobStore
from appliance.classes import require_staff
from appliance.db import Database, Row
from appliance.errors import Invalid, NotFound, RateLimited
from appliance.settings import Settings
from appliance.store import jobs as job_store
from appliance.store import problems as problem_store
from runner.languages import LANGUAGES
from runner.queue import PRIORITY_REJUDGE, PRIORITY_STAFF, PRIORITY_STUDENT

FINAL = ("done", "failed")
LIST_LIMIT = 200


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


def submission_budgets(settings: Settings) -> list[SubmissionBudget]:
    """The budgets in force: a short burst limit and an hourly one (0 turns one off). They bound
    how much a program can learn of hidden tests by choosing how it fails on them."""
    budgets = [
        SubmissionBudget(settings.submissions_per_problem_per_minute, 60.0, "minute"),
        SubmissionBudget(settings.submissions_per_problem_per_hour, 3600.0, "hour"),
    ]
    return [b for b in budgets if b.limit > 0]


def _within_budgets(settings: Settings, user: User, problem_id: int) -> job_store.Admission | None:
    """The check run as the submission is queued (under the writer lock); staff are exempt. A
    deduplicated resubmission returns the earlier job before this runs, so it costs nothing."""
    budgets = submission_budgets(settings)
    if user.is_staff or not budgets:
        return None

    async def admit(conn: aiosqlite.Connection) -> None:
        now = time.time()
        since = now - max(b.window_s for b in budgets)
        times = await job_store.recent_submissions(conn, user.id, problem_id, since)
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

    return admit


def _duration(seconds: int) -> str:
    if seconds < 90:
        return f"{max(1, seconds)} seconds"
    return f"{math.ceil(seconds / 60)} minutes"


async def _queued(db: Database, job_id: int, deduplicated: bool) -> Queued:
    job = await job_store.get(db, job_id)
    assert job is not None
    return Queued(job_id, job["status"], deduplicated, await job_store.queue_position(db, job))


async def _enqueue_interactive(
    db: Database,
    settings: Settings,
    user: User,
    *,
    problem_id: int | None,
    language: str,
    code: str,
    stdin: str,
    file_ids: Sequence[str],
    graphical: bool | None = None,
) -> Queued:
    """A user's own run or submission: capped per student, bounded by the queue, deduplicated
    (submissions only: a run with the same code may have new stdin)."""
    check_language(language)
    file_ids = await user_files.check_job_files(db, settings, user, file_ids, problem_id)
    job_id, dedup = await job_store.enqueue(
        db,
        kind="run" if problem_id is None else "submission",
        user_id=user.id,
        problem_id=problem_id,
        language=language,
        code=code,
        code_hash=code_hash(language, code, file_ids),
        stdin=stdin,
        priority=_priority(user),
        dedup_window_s=None if problem_id is None else settings.dedup_window_s,
        in_flight_cap=None if user.is_staff else settings.max_jobs_in_flight_per_user,
        queue_max=settings.queue_max,
        files=file_ids,
        graphical=graphical,
        admit=None if problem_id is None else _within_budgets(settings, user, problem_id),
    )
    return await _queued(db, job_id, dedup)


async def submit(
    db: Database,
    settings: Settings,
    user: User,
    problem_id: int,
    language: str,
    code: str,
    file_ids: Sequence[str] = (),
) -> Queued:
    await problems.readable_row(db, user, problem_id)
    return await _enqueue_interactive(
        db, settings, user, problem_id=problem_id, language=language, code=code, stdin="", file_ids=file_ids
    )


async def run(
    db: Database,
    settings: Settings,
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
        user,
        problem_id=None,
        language=language,
        code=code,
        stdin=stdin,
        file_ids=file_ids,
        graphical=graphical,
    )


async def _can_read(db: Database, user: User, job: Row) -> bool:
    if job["user_id"] == user.id or user.role == "admin":
        return True
    if user.role != "teacher" or job["problem_id"] is None:
        return False
    problem = await problem_store.get(db, job["problem_id"])
    return problem is not None and problem["owner_id"] == user.id


async def readable_job(db: Database, user: User, job_id: int, kind: str) -> Row:
    """The job if `user` may read it and it is of `kind`; otherwise 404, as for a missing one."""
    job = await job_store.get(db, job_id)
    kinds = ("submission", "rejudge") if kind == "submission" else (kind,)
    if job is None or job["kind"] not in kinds or not await _can_read(db, user, job):
        raise NotFound("not_found", f"no such {kind}")
    if job["kind"] == "rejudge" and not user.is_staff:
        raise NotFound("not_found", f"no such {kind}")
    return job


def _infra(job: Row, staff: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"infra_retries": job["infra_attempts"]}
    if job["status"] == "failed":
        out["error"] = {
            "code": "infra_error",
            "message": "the sandbox could not run this program after several tries; your attempt was not counted. "
            "Please try again later or tell your teacher.",
        }
    if staff:
        out["infra_log"] = json.loads(job["infra_log"] or "[]")
    return out


def _pictures_json(base: str, rows: Sequence[Row]) -> dict[str, Any]:
    """`images`: URLs of the still pictures in the order drawn; `animation`: the APNG of the
    frames, if there is one."""
    stills = [f"{base}/images/{r['idx']}" for r in rows if r["kind"] == "still"]
    animation = next((f"{base}/images/{r['idx']}" for r in rows if r["kind"] == "animation"), None)
    return {"images": stills, "animation": animation}


def _test_json(row: Row, full: bool, pictures: dict[str, Any]) -> dict[str, Any]:
    out = {"position": row["position"], "name": row["name"], "verdict": row["verdict"], "visible": bool(row["visible"])}
    if row["visible"] or full:
        out.update(pictures)
        out.update(
            exit_code=row["exit_code"],
            signal=row["signal"],
            time_ms=row["time_ms"],
            stdout=row["stdout"],
            stderr=row["stderr"],
            truncated=bool(row["truncated"]),
            stdin=row["stdin"],
            expected_stdout=row["expected_stdout"],
            full_output=bool(row["stdout_blob"] or row["stderr_blob"]),
        )
    if full and "visibility" in row.keys():
        # Staff see every test in full; this says which ones their students see only as a verdict.
        out["visibility"] = row["visibility"]
    return out


def student_verdict(verdict: str | None, hidden_feedback: str, first_visible_failure: str | None) -> str | None:
    """The overall verdict a student is shown. It is the first failing test's, so with summary
    feedback a failing hidden test would tell its own verdict through it: then the student sees
    the verdict of the first failing test they can see, or wrong_answer if only hidden ones failed."""
    if hidden_feedback != "summary" or verdict in (None, "accepted", "compile_error"):
        return verdict
    return first_visible_failure or "wrong_answer"


async def _judgement(db: Database, job: Row, full: bool, hidden_feedback: str) -> dict[str, Any]:
    """A job's result as `full` (staff) or a student sees it. With `hidden_feedback` "summary" a
    student gets no row for a hidden test, only `hidden_tests`: how many of them passed."""
    summary = not full and hidden_feedback == "summary"
    if full:
        tests = await job_store.tests_full(db, job["id"])
    else:
        tests = await job_store.tests_for_student(db, job["id"], hidden_rows=not summary)
    passed, total = await job_store.hidden_summary(db, job["id"])
    verdict = job["verdict"]
    if not full:
        failing = next((t["verdict"] for t in tests if t["visible"] and t["verdict"] != "accepted"), None)
        verdict = student_verdict(verdict, hidden_feedback, failing)
    pictures: dict[int, list[Row]] = {}
    for picture in await job_store.job_images(db, job["id"], student=not full):
        pictures.setdefault(picture["position"], []).append(picture)
    base = f"/api/submissions/{job['id']}/tests"
    return {
        "status": job["status"],
        "verdict": verdict,
        "score": job["score"],
        "compile_output": job["compile_output"],
        "position": await job_store.queue_position(db, job),
        "tests": [
            _test_json(t, full, _pictures_json(f"{base}/{t['position']}", pictures.get(t["position"], [])))
            for t in tests
        ],
        # Tests a student cannot see now (hidden, or reveal-later before their date).
        "hidden_tests": {"passed": passed, "total": total},
        "created_at": job["created_at"],
        "finished_at": job["finished_at"],
    }


async def submission_json(db: Database, user: User, job_id: int) -> dict[str, Any]:
    job = await readable_job(db, user, job_id, "submission")
    staff = user.is_staff
    problem = await problem_store.get(db, job["problem_id"])
    feedback = problem["hidden_feedback"] if problem is not None else "summary"
    shown = job
    if job["published_rejudge"] is not None:
        shown = await job_store.get(db, job["published_rejudge"]) or job
    out: dict[str, Any] = {
        "id": job["id"],
        "kind": job["kind"],
        "problem_id": job["problem_id"],
        "user_id": job["user_id"],
        "language": job["language"],
        "code": job["code"],
        "attempts": await job_store.attempt_number(db, job) if job["kind"] == "submission" else None,
        "files": await user_files.files_of_job(db, job["rejudge_of"] or job["id"]),
        "hidden_feedback": feedback,
        **await _judgement(db, shown, staff, feedback),
        **_infra(shown, staff),
    }
    if staff and job["kind"] == "submission":
        out["original"] = {**await _judgement(db, job, True, feedback), **_infra(job, True)}
        out["rejudges"] = [
            {"id": r["id"], **await _judgement(db, r, True, feedback), **_infra(r, True)}
            for r in await job_store.rejudges_of(db, job["id"])
        ]
        out["published_rejudge"] = job["published_rejudge"]
    return out


async def run_json(db: Database, user: User, job_id: int) -> dict[str, Any]:
    job = await readable_job(db, user, job_id, "run")
    tests = await job_store.tests_full(db, job_id)
    first = tests[0] if tests else None
    # Only its owner (or an admin) reads a run, and a run has no hidden tests.
    pictures = await job_store.job_images(db, job_id, student=False)
    return {
        "id": job["id"],
        "language": job["language"],
        "status": job["status"],
        "verdict": job["verdict"],
        "position": await job_store.queue_position(db, job),
        "stdout": first["stdout"] if first else None,
        "stderr": first["stderr"] if first else None,
        "exit_code": first["exit_code"] if first else None,
        "signal": first["signal"] if first else None,
        "time_ms": first["time_ms"] if first else None,
        "truncated": bool(first["truncated"]) if first else False,
        "full_output": bool(first and (first["stdout_blob"] or first["stderr_blob"])),
        "compile_output": job["compile_output"],
        "files": await user_files.files_of_job(db, job["id"]),
        **_pictures_json(f"/api/runs/{job_id}", pictures),
        "created_at": job["created_at"],
        "finished_at": job["finished_at"],
        **_infra(job, user.is_staff),
    }


async def job_status(db: Database, job_id: int) -> tuple[str, int | None]:
    job = await job_store.get(db, job_id)
    if job is None:
        return "gone", None
    return job["status"], await job_store.queue_position(db, job)


async def full_output(db: Database, user: User, job_id: int, kind: str, position: int, stream: str) -> str | None:
    """The blob hash of a test's full output, if the caller may see that test; None if nothing was cut."""
    await _readable_result(db, user, job_id, kind)
    full = user.is_staff or kind == "run"
    tests = await (job_store.tests_full(db, job_id) if full else job_store.tests_for_student(db, job_id))
    for test in tests:
        if test["position"] == position and test["visible"]:
            return test[f"{stream}_blob"]
    raise NotFound("not_found", "no such test output")


async def _result_job(db: Database, user: User, job_id: int) -> Row:
    """A submission, or a rejudge of one: staff read what `readable_job` lets them; a student also
    the published rejudge of their own submission, whose results their submission shows."""
    job = await job_store.get(db, job_id)
    if job is not None and job["kind"] == "rejudge" and not user.is_staff:
        parent = await job_store.get(db, job["rejudge_of"])
        if parent is None or parent["user_id"] != user.id or parent["published_rejudge"] != job_id:
            raise NotFound("not_found", "no such submission")
        return job
    return await readable_job(db, user, job_id, "submission")


async def _readable_result(db: Database, user: User, job_id: int, kind: str) -> Row:
    """The job whose per-test results (outputs, pictures) the caller asks for, if they may."""
    if kind == "run":
        return await readable_job(db, user, job_id, "run")
    return await _result_job(db, user, job_id)


async def picture(db: Database, user: User, job_id: int, kind: str, position: int, idx: int) -> Row:
    """One picture a test drew, if the caller may see that test (hidden tests: never a student)."""
    await _readable_result(db, user, job_id, kind)
    student = kind != "run" and not user.is_staff
    rows = await job_store.job_images(db, job_id, student=student, position=position, idx=idx)
    if not rows:
        raise NotFound("not_found", "no such picture")
    return rows[0]


async def list_submissions(
    db: Database, user: User, problem_id: int | None, class_id: int | None, user_id: int | None
) -> list[dict[str, Any]]:
    where = ["j.kind = 'submission'"]
    params: list[Any] = []
    if not user.is_staff:
        where.append("j.user_id = ?")
        params.append(user.id)
    elif user.role == "teacher":
        where.append("p.owner_id = ?")
        params.append(user.id)
    if problem_id is not None:
        where.append("j.problem_id = ?")
        params.append(problem_id)
    if user_id is not None:
        where.append("j.user_id = ?")
        params.append(user_id)
    if class_id is not None:
        where.append("j.user_id IN (SELECT user_id FROM class_members WHERE class_id = ?)")
        params.append(class_id)
    rows = await job_store.list_submissions(db, where, params, LIST_LIMIT)
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
            "created_at": r["created_at"],
        }
        for r in rows
    ]


async def rejudge(db: Database, user: User, problem_id: int) -> dict[str, Any]:
    require_staff(user)
    await problems.readable_row(db, user, problem_id)
    created = []
    for submission in await job_store.submissions_of_problem(db, problem_id):
        job_id, _ = await job_store.enqueue(
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


async def stats(db: Database) -> dict[str, Any]:
    counts = await job_store.counts_by_status(db)
    latencies = sorted(await job_store.recent_latencies(db))
    latency: dict[str, float | None] = {"median_s": None, "p95_s": None}
    if latencies:
        latency["median_s"] = round(statistics.median(latencies), 3)
        latency["p95_s"] = round(latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], 3)
    return {"jobs": {s: counts.get(s, 0) for s in ("queued", "running", "done", "failed")}, "latency": latency}


async def requeue_failed(db: Database) -> int:
    return await job_store.requeue_failed(db)


async def purge_expired_outputs(
    db: Database, blobs: BlobStore, expiry_days: float, *, now: float | None = None, grace_s: float | None = None
) -> dict[str, int]:
    """Results of jobs finished more than `expiry_days` ago forget their full outputs (their cut
    text stays), in bounded batches; then the blobs no row uses any more are deleted. Blobs are
    shared by content: one a file, asset, picture or newer result still names stays. So does one
    written within `grace_s` (a running job may have just stored the same bytes, its row not yet
    committed): the orphan purge takes it later if it is still unused."""
    now = time.time() if now is None else now
    grace_s = file_expiry.ORPHAN_GRACE_S if grace_s is None else grace_s
    cutoff = now - expiry_days * 86400
    tests = removed = 0
    for _ in range(file_expiry.PURGE_MAX_BATCHES):
        async with db.transaction() as conn:
            count, digests = await job_store.expire_full_outputs(conn, cutoff, file_expiry.PURGE_BATCH)
            settled = [d for d in set(digests) if _older_than(blobs, d, now - grace_s)]
            removed += await blob_refs.discard_unused_blobs(conn, blobs, settled)
        tests += count
        if count < file_expiry.PURGE_BATCH:
            break
    return {"tests": tests, "blobs": removed}


def _older_than(blobs: BlobStore, digest: str, moment: float) -> bool:
    try:
        return blobs.path_for(digest).stat().st_mtime < moment
    except FileNotFoundError:
        return False
