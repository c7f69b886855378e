"""The job queue and job results in SQLite; implements the runner's JobStore protocol.

Claims are one UPDATE … RETURNING on the single writer connection, so two workers can never
take the same job. A lease owner column fences late writes from a worker that lost its job.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiosqlite

from appliance.blobs import BlobStore
from appliance.clock import now_iso
from appliance.db import Database, Row
from appliance.errors import NotFound, RateLimited, Unavailable
from appliance.store import files as file_store
from runner.executor import InputFile
from runner.languages import LANGUAGES
from runner.queue import (
    PRIORITY_STAFF,
    SECRECY_HIDDEN,
    SECRECY_LATER,
    SECRECY_VISIBLE,
    ClaimedJob,
    GradingSpec,
    GradingTest,
    JobResult,
)

_CLAIMED = "id, kind, user_id, problem_id, language, code, stdin, infra_attempts, graphical"
JOB_COLUMNS = (
    "id, kind, user_id, problem_id, rejudge_of, language, code, code_hash, stdin, priority, status, verdict, score,"
    " compile_output, infra_attempts, infra_log, not_before, published_rejudge, created_at, started_at, finished_at"
)
ACTIVE = ("queued", "running")
# A test's output reaches a student only when the test itself is visible to them now.
_VISIBLE_TC = "(tc.visibility = 'visible' OR (tc.visibility = 'reveal_later' AND tc.reveal_at <= ?))"
# Whose share of the workers a job takes: its user's, or for a rejudge the one share of all
# rejudges (system work; user ids start at 1).
_SHARE = "CASE WHEN {t}kind = 'rejudge' THEN 0 ELSE {t}user_id END"

# Checks the caller runs inside the enqueue transaction, after dedup and before the insert.
Admission = Callable[[aiosqlite.Connection], Awaitable[None]]


def first_visible_failure_sql(job_id: str) -> str:
    """SQL for the verdict of the first failing test of job `job_id` (an SQL expression) that a
    student may see now, NULL if none; it takes one parameter: the current time (`now_iso()`)."""
    return (
        "(SELECT jt.verdict FROM job_tests jt LEFT JOIN test_cases tc ON tc.id = jt.test_case_id"
        f" WHERE jt.job_id = {job_id} AND jt.verdict != 'accepted' AND COALESCE({_VISIBLE_TC}, 0)"
        " ORDER BY jt.position LIMIT 1)"
    )


def _append_log(raw: str, code: str, message: str) -> str:
    entries = json.loads(raw or "[]")
    entries.append({"at": time.time(), "code": code, "message": message[:500]})
    return json.dumps(entries[-20:])


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
    admit: Admission | None = None,
) -> tuple[int, bool]:
    """Queue a job, or return the user's identical pending one. Returns (job id, deduplicated).

    `files` are ids of the user's files, already checked by the caller; they are snapshotted into
    the job in this same transaction (`code_hash` must cover them, so dedup tells file sets apart).
    `admit` may refuse the job (by raising) under the same writer lock, so two requests at once
    cannot both pass it; a deduplicated job is returned before it is asked.
    """
    now = time.time()
    async with db.transaction() as conn:
        if dedup_window_s is not None:
            cursor = await conn.execute(
                "SELECT id FROM jobs WHERE user_id = ? AND problem_id IS ? AND kind = ? AND code_hash = ?"
                " AND language = ? AND (status IN ('queued', 'running') OR created_at >= ?)"
                # A result from before the teacher last changed the problem (its tests) is no answer
                # to this submission.
                " AND created_at >= COALESCE((SELECT strftime('%s', updated_at) FROM problems"
                " WHERE id = jobs.problem_id), 0) ORDER BY id DESC LIMIT 1",
                (user_id, problem_id, kind, code_hash, language, now - dedup_window_s),
            )
            existing = await cursor.fetchone()
            if existing is not None:
                return int(existing[0]), True
        if admit is not None:
            await admit(conn)
        if in_flight_cap is not None:
            cursor = await conn.execute(
                "SELECT COUNT(*) FROM jobs WHERE user_id = ? AND kind != 'rejudge' AND status IN ('queued', 'running')",
                (user_id,),
            )
            if (await cursor.fetchone())[0] >= in_flight_cap:
                raise RateLimited(
                    "too_many_jobs",
                    f"you already have {in_flight_cap} programs waiting or running; wait for one to finish",
                    retry_after=5,
                )
        if queue_max is not None:
            cursor = await conn.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued'")
            if (await cursor.fetchone())[0] >= queue_max:
                raise Unavailable(
                    "queue_full", "the class queue is full right now; try again in a minute", retry_after=30
                )
        cursor = await conn.execute(
            "INSERT INTO jobs (kind, user_id, problem_id, rejudge_of, language, code, code_hash, stdin, priority,"
            " graphical, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?)",
            (kind, user_id, problem_id, rejudge_of, language, code, code_hash, stdin, priority, graphical, now),
        )
        job_id = int(cursor.lastrowid or 0)
        # Checked again here, under the writer lock: a file deleted or purged since the caller's
        # check refuses the job (the transaction rolls back) instead of queueing it without it.
        missing = await file_store.attach_to_job(conn, job_id, user_id, files)
        if missing is not None:
            raise NotFound("not_found", "no such file", field=f"files[{missing}]")
        return job_id, False


async def recent_submissions(conn: aiosqlite.Connection, user_id: int, problem_id: int, since: float) -> list[float]:
    """When the user's submissions to the problem since `since` were made, oldest first. A job the
    infrastructure gave up on does not count: the student was told it was not counted."""
    cursor = await conn.execute(
        "SELECT created_at FROM jobs WHERE user_id = ? AND problem_id = ? AND kind = 'submission'"
        " AND status != 'failed' AND created_at > ? ORDER BY created_at",
        (user_id, problem_id, since),
    )
    return [float(row[0]) for row in await cursor.fetchall()]


async def get(db: Database, job_id: int) -> Row | None:
    return await db.fetchone(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))


async def queue_position(db: Database, job: Row) -> int | None:
    """1 for the next job to run; None unless queued."""
    if job["status"] != "queued":
        return None
    ahead = await db.fetchval(
        "SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND (priority < ? OR (priority = ? AND id < ?))",
        (job["priority"], job["priority"], job["id"]),
    )
    return int(ahead) + 1


async def tests_full(db: Database, job_id: int) -> list[Row]:
    return await db.fetchall(
        "SELECT jt.position, jt.test_case_id, jt.name, jt.verdict, jt.exit_code, jt.signal, jt.time_ms, jt.stdout,"
        " jt.stderr, jt.truncated, jt.stdout_blob, jt.stderr_blob, tc.stdin, tc.expected_stdout, tc.visibility,"
        " 1 AS visible FROM job_tests jt LEFT JOIN test_cases tc ON tc.id = jt.test_case_id"
        " WHERE jt.job_id = ? ORDER BY jt.position",
        (job_id,),
    )


async def tests_for_student(db: Database, job_id: int, *, hidden_rows: bool = True) -> list[Row]:
    """Per-test results with everything but the verdict blanked for tests the student may not see;
    `hidden_rows` False leaves those tests out altogether (see `hidden_summary`)."""
    shown = ("name", "exit_code", "signal", "time_ms", "stdout", "stderr", "truncated", "stdout_blob", "stderr_blob")
    columns = ", ".join(f"CASE WHEN visible THEN {c} END AS {c}" for c in shown if c != "name")
    return await db.fetchall(
        f"SELECT position, verdict, visible, CASE WHEN visible THEN name ELSE 'hidden test' END AS name, {columns},"
        " CASE WHEN visible THEN tc_stdin END AS stdin, CASE WHEN visible THEN tc_expected END AS expected_stdout"
        " FROM (SELECT jt.*, tc.stdin AS tc_stdin, tc.expected_stdout AS tc_expected,"
        f" COALESCE({_VISIBLE_TC}, 0) AS visible FROM job_tests jt"
        " LEFT JOIN test_cases tc ON tc.id = jt.test_case_id WHERE jt.job_id = ?)"
        " WHERE visible OR ? ORDER BY position",
        (now_iso(), job_id, hidden_rows),
    )


async def hidden_summary(db: Database, job_id: int) -> tuple[int, int]:
    """(passed, total) over the job's tests a student may not see now: all they learn of them in
    a problem with summary feedback."""
    row = await db.fetchone(
        "SELECT COALESCE(SUM(jt.verdict = 'accepted'), 0), COUNT(*) FROM job_tests jt"
        f" LEFT JOIN test_cases tc ON tc.id = jt.test_case_id WHERE jt.job_id = ? AND NOT COALESCE({_VISIBLE_TC}, 0)",
        (job_id, now_iso()),
    )
    assert row is not None
    return int(row[0]), int(row[1])


_IMAGE_COLUMNS = "ji.position, ji.idx, ji.kind, ji.media_type, ji.label, ji.width, ji.height, ji.blob"


async def job_images(
    db: Database, job_id: int, *, student: bool, position: int | None = None, idx: int | None = None
) -> list[Row]:
    """A job's pictures (optionally one test's, or one picture), in order. For a student, only those
    of tests the student may see now: the others are not even read."""
    where = ["ji.job_id = ?"]
    params: list[Any] = [job_id]
    if position is not None:
        where.append("ji.position = ?")
        params.append(position)
    if idx is not None:
        where.append("ji.idx = ?")
        params.append(idx)
    joins = ""
    if student:
        joins = (
            " JOIN job_tests jt ON jt.job_id = ji.job_id AND jt.position = ji.position"
            " LEFT JOIN test_cases tc ON tc.id = jt.test_case_id"
        )
        where.append(f"COALESCE({_VISIBLE_TC}, 0)")
        params.append(now_iso())
    return await db.fetchall(
        f"SELECT {_IMAGE_COLUMNS} FROM job_images ji{joins} WHERE {' AND '.join(where)} ORDER BY ji.position, ji.idx",
        params,
    )


async def attempt_number(db: Database, job: Row) -> int:
    return int(
        await db.fetchval(
            "SELECT COUNT(*) FROM jobs WHERE user_id = ? AND problem_id = ? AND kind = 'submission' AND id <= ?",
            (job["user_id"], job["problem_id"], job["id"]),
        )
    )


async def rejudges_of(db: Database, submission_id: int) -> list[Row]:
    return await db.fetchall(f"SELECT {JOB_COLUMNS} FROM jobs WHERE rejudge_of = ? ORDER BY id DESC", (submission_id,))


async def submissions_of_problem(db: Database, problem_id: int) -> list[Row]:
    return await db.fetchall(
        f"SELECT {JOB_COLUMNS} FROM jobs WHERE problem_id = ? AND kind = 'submission' ORDER BY id", (problem_id,)
    )


async def publish_rejudges(db: Database, problem_id: int) -> int:
    """Point each submission of the problem at its newest finished rejudge."""
    return await db.execute_rowcount(
        "UPDATE jobs SET published_rejudge = (SELECT r.id FROM jobs r WHERE r.rejudge_of = jobs.id"
        " AND r.status = 'done' ORDER BY r.id DESC LIMIT 1)"
        " WHERE problem_id = ? AND kind = 'submission'"
        " AND EXISTS (SELECT 1 FROM jobs r WHERE r.rejudge_of = jobs.id AND r.status = 'done')",
        (problem_id,),
    )


async def counts_by_status(db: Database) -> dict[str, int]:
    rows = await db.fetchall("SELECT status, COUNT(*) FROM jobs GROUP BY status")
    return {row[0]: row[1] for row in rows}


async def recent_latencies(db: Database, limit: int = 200) -> list[float]:
    rows = await db.fetchall(
        "SELECT finished_at - created_at FROM jobs WHERE status = 'done' ORDER BY id DESC LIMIT ?", (limit,)
    )
    return [row[0] for row in rows]


async def requeue_failed(db: Database) -> int:
    return await db.execute_rowcount(
        "UPDATE jobs SET status = 'queued', infra_attempts = 0, not_before = 0 WHERE status = 'failed'"
    )


class SqliteJobStore:
    """The runner's view of the queue."""

    def __init__(
        self, db: Database, run_time_limit_ms: int, run_memory_limit_mb: int, blobs: BlobStore | None = None
    ) -> None:
        self.db = db
        self.run_time_limit_ms = run_time_limit_ms
        self.run_memory_limit_mb = run_memory_limit_mb
        self.blobs = blobs  # where job files' bytes live; None only where no job has files

    async def claim(self, worker_id: str, lease_s: float, max_running_per_user: int | None = None) -> ClaimedJob | None:
        """The next job by priority class, then fewest running jobs of its user (round robin),
        then age; with `max_running_per_user`, never one whose share is full (see JobStore)."""
        now = time.time()
        params: list[Any] = [worker_id, now + lease_s, now, now]
        fair = ""
        if max_running_per_user is not None:
            fair = " AND (q.priority <= ? OR COALESCE(b.running, 0) < ?)"
            params += [PRIORITY_STAFF, max_running_per_user]
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE jobs SET status = 'running', lease_owner = ?, lease_expires = ?, started_at = ?"
                " WHERE id = (SELECT q.id FROM jobs q LEFT JOIN"
                f" (SELECT {_SHARE.format(t='')} AS share, COUNT(*) AS running FROM jobs WHERE status = 'running'"
                f" GROUP BY share) b ON b.share = {_SHARE.format(t='q.')}"
                f" WHERE q.status = 'queued' AND q.not_before <= ?{fair}"
                f" ORDER BY q.priority, COALESCE(b.running, 0), q.id LIMIT 1) RETURNING {_CLAIMED}",
                params,
            )
            row = await cursor.fetchone()
            await cursor.close()
        if row is None:
            return None
        return ClaimedJob(*row[:-1], graphical=None if row[-1] is None else bool(row[-1]))

    async def heartbeat(self, job_id: int, worker_id: str, lease_s: float) -> bool:
        changed = await self.db.execute_rowcount(
            "UPDATE jobs SET lease_expires = ? WHERE id = ? AND lease_owner = ? AND status = 'running'",
            (time.time() + lease_s, job_id, worker_id),
        )
        return changed == 1

    async def _input_files(self, job: ClaimedJob) -> list[InputFile]:
        """The files the job's working directory starts with: the problem's data files, then the
        user's own. A name taken by the problem or the program's source wins over a user file: a
        later asset must not make the sandbox refuse an already queued job."""
        chosen: dict[str, str] = {}
        if job.problem_id is not None:
            for asset in await file_store.workdir_assets(self.db, job.problem_id):
                chosen[asset["name"]] = asset["blob"]
        source = LANGUAGES[job.language].source_name if job.language in LANGUAGES else None
        for row in await file_store.job_inputs(self.db, job.id):
            if row["name"] not in chosen and row["name"] != source:
                chosen[row["name"]] = row["blob"]
        if not chosen:
            return []
        if self.blobs is None:
            raise RuntimeError("this job store has no blob store to read job files from")
        blobs = self.blobs
        return [InputFile(name, await asyncio.to_thread(blobs.get, digest)) for name, digest in chosen.items()]

    async def grading_spec(self, job: ClaimedJob) -> GradingSpec:
        files = await self._input_files(job)
        if job.kind == "run":
            return GradingSpec(
                "exact",
                0.0,
                self.run_time_limit_ms,
                self.run_memory_limit_mb,
                [GradingTest(None, "run", job.stdin, None, 1.0)],
                files,
                job.graphical,
            )
        problem = await self.db.fetchone(
            "SELECT comparison, tolerance, time_limit_ms, memory_limit_mb, graphical FROM problems WHERE id = ?",
            (job.problem_id,),
        )
        if problem is None:
            raise LookupError(f"problem {job.problem_id} of job {job.id} no longer exists")
        tests = await self.db.fetchall(
            "SELECT id, name, stdin, expected_stdout, weight,"
            " CASE visibility WHEN 'visible' THEN ? WHEN 'reveal_later' THEN ? ELSE ? END AS secrecy"
            " FROM test_cases WHERE problem_id = ? ORDER BY position",
            (SECRECY_VISIBLE, SECRECY_LATER, SECRECY_HIDDEN, job.problem_id),
        )
        return GradingSpec(
            problem["comparison"],
            problem["tolerance"],
            problem["time_limit_ms"],
            problem["memory_limit_mb"],
            [
                GradingTest(t["id"], t["name"], t["stdin"], t["expected_stdout"], t["weight"], t["secrecy"])
                for t in tests
            ],
            files,
            None if problem["graphical"] is None else bool(problem["graphical"]),
        )

    async def complete(self, job_id: int, worker_id: str, result: JobResult) -> bool:
        async with self.db.transaction() as conn:
            # Graded against tests the teacher has since replaced: its results would name test
            # ids that may now belong to other tests (ids are reused), so run it again instead.
            cursor = await conn.execute(
                "UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_expires = NULL"
                " WHERE id = ? AND lease_owner = ? AND status = 'running' AND problem_id IS NOT NULL"
                " AND (SELECT tests_changed_at FROM problems WHERE id = jobs.problem_id) >= started_at",
                (job_id, worker_id),
            )
            if cursor.rowcount == 1:
                return False
            cursor = await conn.execute(
                "UPDATE jobs SET status = 'done', verdict = ?, score = ?, compile_output = ?, finished_at = ?,"
                " lease_owner = NULL, lease_expires = NULL WHERE id = ? AND lease_owner = ? AND status = 'running'",
                (result.verdict, result.score, result.compile_output, time.time(), job_id, worker_id),
            )
            if cursor.rowcount != 1:
                return False
            await conn.execute("DELETE FROM job_images WHERE job_id = ?", (job_id,))
            await conn.execute("DELETE FROM job_tests WHERE job_id = ?", (job_id,))
            for t in result.tests:
                await conn.execute(
                    "INSERT INTO job_tests (job_id, position, test_case_id, name, verdict, exit_code, signal, time_ms,"
                    " stdout, stderr, truncated, stdout_blob, stderr_blob, full_output_bytes)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        job_id,
                        t.position,
                        t.test_case_id,
                        t.name,
                        t.verdict,
                        t.exit_code,
                        t.signal,
                        t.time_ms,
                        t.stdout,
                        t.stderr,
                        int(t.truncated),
                        t.stdout_blob,
                        t.stderr_blob,
                        t.full_output_bytes,
                    ),
                )
                for idx, image in enumerate(t.images, start=1):
                    await conn.execute(
                        "INSERT INTO job_images (job_id, position, idx, kind, media_type, label, width, height, blob)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            job_id,
                            t.position,
                            idx,
                            "animation" if image.animated else "still",
                            image.media_type,
                            image.label,
                            image.width,
                            image.height,
                            image.blob,
                        ),
                    )
        return True

    async def _fail_or_requeue(
        self,
        conn: Any,
        job_id: int,
        attempts: int,
        log: str,
        code: str,
        message: str,
        max_attempts: int,
        backoff_s: float,
    ) -> str:
        attempts += 1
        entries = _append_log(log, code, message)
        if attempts >= max_attempts:
            await conn.execute(
                "UPDATE jobs SET status = 'failed', infra_attempts = ?, infra_log = ?, finished_at = ?,"
                " lease_owner = NULL, lease_expires = NULL WHERE id = ?",
                (attempts, entries, time.time(), job_id),
            )
            return "failed"
        await conn.execute(
            "UPDATE jobs SET status = 'queued', infra_attempts = ?, infra_log = ?, not_before = ?,"
            " lease_owner = NULL, lease_expires = NULL WHERE id = ?",
            (attempts, entries, time.time() + backoff_s * 2 ** (attempts - 1), job_id),
        )
        return "queued"

    async def infra_failure(
        self, job_id: int, worker_id: str, code: str, message: str, max_attempts: int, backoff_s: float
    ) -> str:
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "SELECT infra_attempts, infra_log FROM jobs WHERE id = ? AND lease_owner = ? AND status = 'running'",
                (job_id, worker_id),
            )
            row = await cursor.fetchone()
            if row is None:
                return "lost"
            return await self._fail_or_requeue(conn, job_id, row[0], row[1], code, message, max_attempts, backoff_s)

    async def _requeue_where(self, condition: str, params: tuple[Any, ...], code: str, max_attempts: int) -> list[int]:
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                f"SELECT id, infra_attempts, infra_log FROM jobs WHERE status = 'running' AND {condition}", params
            )
            rows = await cursor.fetchall()
            for row in rows:
                await self._fail_or_requeue(
                    conn, row[0], row[1], row[2], code, "its worker stopped before finishing", max_attempts, 0.0
                )
        return [row[0] for row in rows]

    async def full_output_bytes(self, user_id: int) -> int:
        return int(
            await self.db.fetchval(
                "SELECT COALESCE(SUM(jt.full_output_bytes), 0) FROM jobs j JOIN job_tests jt ON jt.job_id = j.id"
                " WHERE j.user_id = ?",
                (user_id,),
            )
        )

    async def requeue_expired(self, max_attempts: int) -> list[int]:
        return await self._requeue_where("lease_expires < ?", (time.time(),), "worker_lost", max_attempts)

    async def requeue_all_running(self, max_attempts: int) -> list[int]:
        return await self._requeue_where("1", (), "appliance_restarted", max_attempts)


async def list_submissions(db: Database, where: list[str], params: list[Any], limit: int) -> list[Row]:
    """Submissions with the result shown (a published rejudge's), the problem's hidden-test
    feedback and the first failing test a student may see (`first_visible_failure`)."""
    return await db.fetchall(
        "SELECT j.id, j.problem_id, p.title, j.user_id, u.username, j.language, j.status,"
        " COALESCE(r.verdict, j.verdict) AS verdict, COALESCE(r.score, j.score) AS score, j.created_at,"
        f" p.hidden_feedback, {first_visible_failure_sql('COALESCE(r.id, j.id)')} AS first_visible_failure"
        " FROM jobs j JOIN problems p ON p.id = j.problem_id JOIN users u ON u.id = j.user_id"
        " LEFT JOIN jobs r ON r.id = j.published_rejudge"
        f" WHERE {' AND '.join(where)} ORDER BY j.id DESC LIMIT ?",
        (now_iso(), *params, limit),
    )


async def expire_full_outputs(conn: aiosqlite.Connection, finished_before: float, limit: int) -> tuple[int, list[str]]:
    """One batch: results of jobs finished before `finished_before` forget their full outputs.
    Returns how many results changed and the blob hashes they named (other rows may still use some)."""
    cursor = await conn.execute(
        "SELECT jt.job_id, jt.position, jt.stdout_blob, jt.stderr_blob"
        " FROM job_tests jt JOIN jobs j ON j.id = jt.job_id"
        " WHERE (jt.stdout_blob IS NOT NULL OR jt.stderr_blob IS NOT NULL) AND j.finished_at < ? LIMIT ?",
        (finished_before, limit),
    )
    rows = await cursor.fetchall()
    await conn.executemany(
        "UPDATE job_tests SET stdout_blob = NULL, stderr_blob = NULL, full_output_bytes = 0"
        " WHERE job_id = ? AND position = ?",
        [(row[0], row[1]) for row in rows],
    )
    return len(rows), [digest for row in rows for digest in row[2:] if digest is not None]
