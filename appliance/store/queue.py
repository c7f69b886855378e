"""The job queue in SQLite, as the runner sees it: implements runner.queue's JobStore protocol.

Claims are one UPDATE … RETURNING on the single writer connection, so two workers can never
take the same job. A lease owner column fences late writes from a worker that lost its job.
Write transactions await nothing but SQL: a job's input files are read outside them, and its
result's blobs were stored by the runner before `complete` is called.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from appliance.blobs import BlobStore
from appliance.clock import DB_EPOCH, db_epoch, epoch
from appliance.db import Database, placeholders
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
# Whose share of the workers a job takes: its user's, or for a rejudge the one share of all
# rejudges (system work; user ids start at 1).
_SHARE = "CASE WHEN {t}kind = 'rejudge' THEN 0 ELSE {t}user_id END"

# The runner-host region a job should run in: its user's own choice, else that of the user's
# first class that has one.
_REGION = (
    "SELECT COALESCE((SELECT region FROM users WHERE id = ?), (SELECT c.region FROM class_members m"
    " JOIN classes c ON c.id = m.class_id WHERE m.user_id = ? AND c.region IS NOT NULL ORDER BY c.id LIMIT 1))"
)

_INSERT_TEST = (
    "INSERT INTO job_tests (job_id, position, test_case_id, name, verdict, exit_code, signal, time_ms,"
    " stdout, stderr, truncated, stdout_blob, stderr_blob, full_output_bytes, stdin_blob, expected_blob, visibility)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_IMAGE = (
    "INSERT INTO job_images (job_id, position, idx, kind, media_type, label, width, height, blob)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# After an infrastructure error a job fails for good, or goes back to the queue after a backoff;
# both take (infra_attempts, infra_log, finished_at or not_before, id).
_FAIL = (
    "UPDATE jobs SET status = 'failed', infra_attempts = ?, infra_log = ?, finished_at = ?,"
    " lease_owner = NULL, lease_expires = NULL WHERE id = ?"
)
_RETRY = (
    "UPDATE jobs SET status = 'queued', infra_attempts = ?, infra_log = ?, not_before = ?,"
    " lease_owner = NULL, lease_expires = NULL WHERE id = ?"
)


def _append_log(raw: str, code: str, message: str) -> str:
    entries = json.loads(raw or "[]")
    entries.append({"at": time.time(), "code": code, "message": message[:500]})
    return json.dumps(entries[-20:])


def _after_infra_error(
    job_id: int, attempts: int, log: str, code: str, message: str, max_attempts: int, backoff_s: float
) -> tuple[str, tuple[Any, ...]]:
    """The job's next status ("failed" or "queued") and the parameters of its `_FAIL` or `_RETRY`."""
    attempts += 1
    entries = _append_log(log, code, message)
    if attempts >= max_attempts:
        return "failed", (attempts, entries, db_epoch(time.time()), job_id)
    return "queued", (attempts, entries, db_epoch(time.time() + backoff_s * 2 ** (attempts - 1)), job_id)


# What a test result was judged against: blob hashes of the test's stdin and expected output, and
# its visibility then.
JudgedTest = tuple[str, str, str]


def _put_judged(blobs: BlobStore, rows: list[Any]) -> dict[int, JudgedTest]:
    """Store the data of these test case rows (id, stdin, expected_stdout, visibility) as blobs."""
    return {row[0]: (blobs.put(row[1].encode()), blobs.put(row[2].encode()), row[3]) for row in rows}


def _result_rows(
    job_id: int, result: JobResult, judged: dict[int, JudgedTest]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The job_tests and job_images rows of a result."""
    tests = [
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
            *(judged[t.test_case_id] if t.test_case_id in judged else (None, None, None)),
        )
        for t in result.tests
    ]
    images = [
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
        )
        for t in result.tests
        for idx, image in enumerate(t.images, start=1)
    ]
    return tests, images


class SqliteJobStore:
    """The runner's view of the queue."""

    def __init__(
        self, db: Database, run_time_limit_ms: int, run_memory_limit_mb: int, blobs: BlobStore | None = None
    ) -> None:
        self.db = db
        self.run_time_limit_ms = run_time_limit_ms
        self.run_memory_limit_mb = run_memory_limit_mb
        # Where job files' bytes and the test data results were judged against live; None only
        # where no job has files and results need not keep their test data (unit tests).
        self.blobs = blobs

    async def claim(self, worker_id: str, lease_s: float, max_running_per_user: int | None = None) -> ClaimedJob | None:
        """The next job by priority class, then fewest running jobs of its user (round robin),
        then age; with `max_running_per_user`, never one whose share is full (see JobStore)."""
        now = time.time()
        params: list[Any] = [worker_id, db_epoch(now + lease_s), db_epoch(now), db_epoch(now)]
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
            cursor = await conn.execute(_REGION, (row[2], row[2]))
            region = await cursor.fetchone()
            await cursor.close()
        return ClaimedJob(
            *row[:-1], graphical=None if row[-1] is None else bool(row[-1]), region=region[0] if region else None
        )

    async def heartbeat(self, job_id: int, worker_id: str, lease_s: float) -> bool:
        changed = await self.db.execute_rowcount(
            "UPDATE jobs SET lease_expires = ? WHERE id = ? AND lease_owner = ? AND status = 'running'",
            (db_epoch(time.time() + lease_s), job_id, worker_id),
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
            " CASE visibility WHEN 'visible' THEN CAST(? AS BIGINT) WHEN 'reveal_later' THEN CAST(? AS BIGINT)"
            " ELSE CAST(? AS BIGINT) END AS secrecy"
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

    async def _judged_tests(self, result: JobResult) -> tuple[dict[int, JudgedTest], list[Any]]:
        """The result's test data as blobs, by test case id, and the test case rows they hold. Read
        before `complete`'s transaction, which awaits nothing but SQL: if the tests changed since
        the job started, that transaction puts the job back in the queue and this goes unused."""
        ids = [t.test_case_id for t in result.tests if t.test_case_id is not None]
        if not ids or self.blobs is None:
            return {}, []
        rows = await self.db.fetchall(
            f"SELECT id, stdin, expected_stdout, visibility FROM test_cases WHERE id IN ({placeholders(ids)})", ids
        )
        return await asyncio.to_thread(_put_judged, self.blobs, rows), rows

    async def complete(self, job_id: int, worker_id: str, result: JobResult) -> bool:
        judged, judged_rows = await self._judged_tests(result)
        tests, images = _result_rows(job_id, result, judged)
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
                " host = ?, lease_owner = NULL, lease_expires = NULL"
                " WHERE id = ? AND lease_owner = ? AND status = 'running'",
                (
                    result.verdict,
                    result.score,
                    result.compile_output,
                    db_epoch(time.time()),
                    result.host,
                    job_id,
                    worker_id,
                ),
            )
            if cursor.rowcount != 1:
                return False
            await conn.execute("DELETE FROM job_images WHERE job_id = ?", (job_id,))
            await conn.execute("DELETE FROM job_tests WHERE job_id = ?", (job_id,))
            await conn.executemany(_INSERT_TEST, tests)
            await conn.executemany(_INSERT_IMAGE, images)
        if judged_rows and self.blobs is not None:
            # The orphan purge may have unlinked an identical unused blob after our put found it
            # there and before our rows named it (see blob_refs.ensure_blobs): put back what is gone.
            blobs = self.blobs
            gone = [row for row in judged_rows if not all(map(blobs.exists, judged[row[0]][:2]))]
            if gone:
                await asyncio.to_thread(_put_judged, blobs, gone)
        return True

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
            status, params = _after_infra_error(job_id, row[0], row[1], code, message, max_attempts, backoff_s)
            await conn.execute(_FAIL if status == "failed" else _RETRY, params)
            return status

    async def _requeue_where(self, condition: str, params: tuple[Any, ...], code: str, max_attempts: int) -> list[int]:
        """Running jobs matching `condition` (a fixed SQL condition of this class) lost their
        worker: each counts as one infrastructure error, without backoff."""
        message = "its worker stopped before finishing"
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                f"SELECT id, infra_attempts, infra_log FROM jobs WHERE status = 'running' AND {condition}", params
            )
            rows = await cursor.fetchall()
            updates = [_after_infra_error(r[0], r[1], r[2], code, message, max_attempts, 0.0) for r in rows]
            await conn.executemany(_FAIL, [p for status, p in updates if status == "failed"])
            await conn.executemany(_RETRY, [p for status, p in updates if status == "queued"])
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
        return await self._requeue_where("lease_expires < ?", (db_epoch(time.time()),), "worker_lost", max_attempts)

    async def requeue_all_running(self, max_attempts: int) -> list[int]:
        return await self._requeue_where("1 = 1", (), "appliance_restarted", max_attempts)


async def counts_by_status(db: Database) -> dict[str, int]:
    rows = await db.fetchall("SELECT status, COUNT(*) FROM jobs GROUP BY status")
    return {row[0]: row[1] for row in rows}


async def recent_latencies(db: Database, limit: int = 200) -> list[float]:
    rows = await db.fetchall(
        "SELECT created_at, finished_at FROM jobs WHERE status = 'done' ORDER BY id DESC LIMIT ?", (limit,)
    )
    return [epoch(row[1]) - epoch(row[0]) for row in rows]


async def requeue_failed(db: Database) -> int:
    """Every job the infrastructure gave up on goes back to the queue with fresh retries."""
    return await db.execute_rowcount(
        "UPDATE jobs SET status = 'queued', infra_attempts = 0, not_before = ? WHERE status = 'failed'", (DB_EPOCH,)
    )
