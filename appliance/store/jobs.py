"""Runs and submissions in the database: queueing them, reading their results, rejudges and listings.

SQL only: the functions that take a connection run inside a write transaction the caller holds,
and return facts (an existing job, counts, times) for the caller's policy to judge. The runner's
side of the queue (claims, leases, results) is in `appliance.store.queue`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appliance.clock import DB_EPOCH, db_epoch, db_now, epoch
from appliance.db import Conn, Database, Row
from appliance.store.portable import in_list, insert_id

JOB_COLUMNS = (
    "id, kind, user_id, problem_id, rejudge_of, language, code, code_hash, stdin, priority, status, verdict, score,"
    " compile_output, infra_attempts, infra_log, not_before, published_rejudge, late, created_at, started_at,"
    " finished_at"
)
# A test's output reaches a student only when the test itself is visible to them now.
_VISIBLE_TC = "(tc.visibility = 'visible' OR (tc.visibility = 'reveal_later' AND tc.reveal_at <= ?))"
# The same as a condition that is false, not NULL, where the result has no linked test case.
_VISIBLE_TC_KNOWN = f"COALESCE({_VISIBLE_TC}, FALSE)"


@dataclass(frozen=True)
class NewJob:
    """A row for the jobs table, queued as it is inserted."""

    kind: str
    user_id: int
    problem_id: int | None
    language: str
    code: str
    code_hash: str
    stdin: str
    priority: int
    created_at: float  # epoch seconds
    rejudge_of: int | None = None
    graphical: bool | None = None
    late: bool = False  # a submission after its student's due date (appliance.deadlines)


@dataclass(frozen=True)
class SubmissionFilter:
    """Which submissions `list_submissions` returns: each field that is set narrows the list."""

    user_id: int | None = None  # made by this user
    problem_owner_id: int | None = None  # to problems this teacher owns
    problem_id: int | None = None
    class_id: int | None = None  # made by members of this class
    problem_ids: tuple[int, ...] | None = None  # to one of these problems (a student's during an exam)


def first_visible_failure_sql(job_id: str) -> str:
    """SQL for the verdict of the first failing test of job `job_id` (an SQL expression) that a
    student may see now, NULL if none; it takes one parameter: the current time (`db_now()`)."""
    return (
        "(SELECT jt.verdict FROM job_tests jt LEFT JOIN test_cases tc ON tc.id = jt.test_case_id"
        f" WHERE jt.job_id = {job_id} AND jt.verdict != 'accepted' AND {_VISIBLE_TC_KNOWN}"
        " ORDER BY jt.position LIMIT 1)"
    )


async def pending_duplicate(
    conn: Conn,
    *,
    user_id: int,
    problem_id: int | None,
    kind: str,
    code_hash: str,
    language: str,
    since: float,
) -> int | None:
    """The user's newest job like this one that is still waiting or running, or was made since
    `since` (epoch seconds) and after the problem (its tests) last changed; None if there is none."""
    cursor = await conn.execute(
        "SELECT id FROM jobs WHERE user_id = ? AND problem_id IS NOT DISTINCT FROM ? AND kind = ? AND code_hash = ?"
        " AND language = ? AND (status IN ('queued', 'running') OR created_at >= ?)"
        # A result from before the teacher last changed the problem (its tests) is no answer
        # to this submission.
        " AND created_at >= COALESCE((SELECT updated_at FROM problems WHERE id = jobs.problem_id), ?)"
        " ORDER BY id DESC LIMIT 1",
        (user_id, problem_id, kind, code_hash, language, db_epoch(since), DB_EPOCH),
    )
    row = await cursor.fetchone()
    return None if row is None else int(row[0])


async def jobs_in_flight(conn: Conn, user_id: int) -> int:
    """How many of the user's own jobs (rejudges are not theirs) are waiting or running."""
    cursor = await conn.execute(
        "SELECT COUNT(*) FROM jobs WHERE user_id = ? AND kind != 'rejudge' AND status IN ('queued', 'running')",
        (user_id,),
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def queued_count(conn: Conn) -> int:
    cursor = await conn.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued'")
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def insert(conn: Conn, job: NewJob) -> int:
    """Queue the job; returns its id."""
    return await insert_id(
        conn,
        "INSERT INTO jobs (kind, user_id, problem_id, rejudge_of, language, code, code_hash, stdin, priority,"
        " graphical, late, status, created_at, not_before)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?) RETURNING id",
        (
            job.kind,
            job.user_id,
            job.problem_id,
            job.rejudge_of,
            job.language,
            job.code,
            job.code_hash,
            job.stdin,
            job.priority,
            None if job.graphical is None else int(job.graphical),
            int(job.late),
            db_epoch(job.created_at),
            DB_EPOCH,
        ),
    )


async def recent_submissions(conn: Conn, user_id: int, problem_id: int, since: float) -> list[float]:
    """When the user's submissions to the problem since `since` were made (epoch seconds), oldest first. A job the
    infrastructure gave up on does not count: the student was told it was not counted."""
    cursor = await conn.execute(
        "SELECT created_at FROM jobs WHERE user_id = ? AND problem_id = ? AND kind = 'submission'"
        " AND status != 'failed' AND created_at > ? ORDER BY created_at",
        (user_id, problem_id, db_epoch(since)),
    )
    return [epoch(row[0]) for row in await cursor.fetchall()]


async def get(db: Database, job_id: int) -> Row | None:
    return await db.fetchone(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))


async def stop_queued_run(db: Database, job_id: int) -> bool:
    """End a run that is still waiting in the queue as stopped; False when it is not waiting."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "UPDATE jobs SET status = 'done', verdict = 'stopped', finished_at = ?"
            " WHERE id = ? AND kind = 'run' AND status = 'queued'",
            (db_now(), job_id),
        )
        return cursor.rowcount == 1


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
    """Every test result in full, for staff and for the owner of a run. `stdin_blob` and
    `expected_blob` name the data the test was judged against; `stdin` and `expected_stdout` are the
    linked test case's, which are the same while it links (edits replace test cases, and unlink
    the results), and NULL once it was replaced or deleted."""
    return await db.fetchall(
        "SELECT jt.position, jt.test_case_id, jt.name, jt.verdict, jt.exit_code, jt.signal, jt.time_ms, jt.stdout,"
        " jt.stderr, jt.truncated, jt.stdout_blob, jt.stderr_blob, jt.stdin_blob, jt.expected_blob,"
        " tc.stdin, tc.expected_stdout, COALESCE(jt.visibility, tc.visibility) AS visibility,"
        " 1 AS visible FROM job_tests jt LEFT JOIN test_cases tc ON tc.id = jt.test_case_id"
        " WHERE jt.job_id = ? ORDER BY jt.position",
        (job_id,),
    )


async def tests_for_student(db: Database, job_id: int, *, hidden_rows: bool = True) -> list[Row]:
    """Per-test results with everything but the verdict blanked for tests the student may not see;
    `hidden_rows` False leaves those tests out altogether (see `hidden_summary`)."""
    shown = ("name", "exit_code", "signal", "time_ms", "stdout", "stderr", "truncated", "stdout_blob", "stderr_blob")
    columns = ", ".join(f"CASE WHEN visible = 1 THEN {c} END AS {c}" for c in shown if c != "name")
    return await db.fetchall(
        f"SELECT position, verdict, visible, CASE WHEN visible = 1 THEN name ELSE 'hidden test' END AS name,"
        f" {columns}, CASE WHEN visible = 1 THEN tc_stdin END AS stdin,"
        " CASE WHEN visible = 1 THEN tc_expected END AS expected_stdout"
        " FROM (SELECT jt.*, tc.stdin AS tc_stdin, tc.expected_stdout AS tc_expected,"
        f" CASE WHEN {_VISIBLE_TC} THEN 1 ELSE 0 END AS visible FROM job_tests jt"
        " LEFT JOIN test_cases tc ON tc.id = jt.test_case_id WHERE jt.job_id = ?) AS t"
        " WHERE visible = 1 OR ? ORDER BY position",
        (db_now(), job_id, hidden_rows),
    )


async def hidden_summary(db: Database, job_id: int) -> tuple[int, int]:
    """(passed, total) over the job's tests a student may not see now: all they learn of them in
    a problem with summary feedback."""
    row = await db.fetchone(
        "SELECT COALESCE(SUM(CASE WHEN jt.verdict = 'accepted' THEN 1 ELSE 0 END), 0), COUNT(*) FROM job_tests jt"
        f" LEFT JOIN test_cases tc ON tc.id = jt.test_case_id WHERE jt.job_id = ? AND NOT {_VISIBLE_TC_KNOWN}",
        (job_id, db_now()),
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
        where.append(_VISIBLE_TC_KNOWN)
        params.append(db_now())
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
    """The submissions a rejudge runs again: not an erased student's, nor those whose code the
    retention purge took (run again, the empty program would replace the verdict their gradebook
    keeps)."""
    return await db.fetchall(
        f"SELECT {JOB_COLUMNS} FROM jobs WHERE problem_id = ? AND kind = 'submission'"
        " AND purged IS DISTINCT FROM 'content' AND user_id NOT IN (SELECT user_id FROM erasures) ORDER BY id",
        (problem_id,),
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


async def latest_rejudges(db: Database, problem_id: int) -> list[Row]:
    """Each submission of the problem that was rejudged, with its newest rejudge (`new_*`) and the
    result before it (`old_*`): the newest earlier rejudge that finished, else the submission's own."""
    return await db.fetchall(
        "SELECT s.id AS submission_id, s.user_id, u.username, r.id AS rejudge_id, r.status,"
        " o.status AS old_status, o.verdict AS old_verdict, o.score AS old_score,"
        " r.verdict AS new_verdict, r.score AS new_score,"
        " CASE WHEN s.published_rejudge = r.id THEN 1 ELSE 0 END AS published, r.finished_at"
        " FROM jobs s JOIN users u ON u.id = s.user_id"
        " JOIN jobs r ON r.id = (SELECT MAX(id) FROM jobs WHERE rejudge_of = s.id)"
        " JOIN jobs o ON o.id = COALESCE((SELECT MAX(id) FROM jobs WHERE rejudge_of = s.id AND id < r.id"
        " AND status = 'done'), s.id)"
        " WHERE s.problem_id = ? AND s.kind = 'submission' ORDER BY s.id",
        (problem_id,),
    )


async def list_submissions(db: Database, where: SubmissionFilter, limit: int) -> list[Row]:
    """Submissions, newest first, with the result shown (a published rejudge's), the problem's
    hidden-test feedback and the first failing test a student may see (`first_visible_failure`)."""
    conditions = ["j.kind = 'submission'"]
    params: list[Any] = [db_now()]
    if where.user_id is not None:
        conditions.append("j.user_id = ?")
        params.append(where.user_id)
    if where.problem_owner_id is not None:
        conditions.append("p.owner_id = ?")
        params.append(where.problem_owner_id)
    if where.problem_id is not None:
        conditions.append("j.problem_id = ?")
        params.append(where.problem_id)
    if where.class_id is not None:
        conditions.append("j.user_id IN (SELECT user_id FROM class_members WHERE class_id = ?)")
        params.append(where.class_id)
    if where.problem_ids is not None:
        conditions.append(in_list("j.problem_id", where.problem_ids))
        params.extend(where.problem_ids)
    return await db.fetchall(
        "SELECT j.id, j.problem_id, p.title, j.user_id, u.username, j.language, j.status, j.late,"
        " COALESCE(r.verdict, j.verdict) AS verdict, COALESCE(r.score, j.score) AS score, j.created_at,"
        f" p.hidden_feedback, {first_visible_failure_sql('COALESCE(r.id, j.id)')} AS first_visible_failure"
        " FROM jobs j JOIN problems p ON p.id = j.problem_id JOIN users u ON u.id = j.user_id"
        " LEFT JOIN jobs r ON r.id = j.published_rejudge"
        f" WHERE {' AND '.join(conditions)} ORDER BY j.id DESC LIMIT ?",
        (*params, limit),
    )


async def expire_full_outputs(conn: Conn, finished_before: float, limit: int) -> tuple[int, list[str]]:
    """One batch: results of jobs finished before `finished_before` (epoch seconds) forget their full outputs.
    Returns how many results changed and the blob hashes they named (other rows may still use some)."""
    cursor = await conn.execute(
        "SELECT jt.job_id, jt.position, jt.stdout_blob, jt.stderr_blob"
        " FROM job_tests jt JOIN jobs j ON j.id = jt.job_id"
        " WHERE (jt.stdout_blob IS NOT NULL OR jt.stderr_blob IS NOT NULL) AND j.finished_at < ? LIMIT ?",
        (db_epoch(finished_before), limit),
    )
    rows = await cursor.fetchall()
    await conn.executemany(
        "UPDATE job_tests SET stdout_blob = NULL, stderr_blob = NULL, full_output_bytes = 0"
        " WHERE job_id = ? AND position = ?",
        [(row[0], row[1]) for row in rows],
    )
    return len(rows), [digest for row in rows for digest in row[2:] if digest is not None]
