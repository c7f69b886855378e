"""The SQL of the retention purges (appliance/retention.py): which rows a policy no longer keeps,
removing them one bounded batch at a time, and the audit log of what each run removed.

Each kind of data has a `*_due` query, run on a reader (never holding the writer while it scans),
that pages through candidates by key after `after`; and a purge that takes one such page inside a
write transaction, checks every condition again (the row may have changed since it was read) and
returns how many rows went and the blob hashes they named (the caller unlinks those no row uses).

Who is a minor is decided by birthdate against `adult_born_by`, the latest birthdate of someone who
is an adult on the day of the purge: ISO dates compare as text in date order. No birthdate (staff
made without one) counts as an adult, as in `Accounts.is_minor`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from appliance.db import Conn, Database, Row, dialect_of, placeholders
from appliance.store.files import PINNED

# The cut-offs of one run, bound by name: `now`, `before` (the rule's age limit), `adult_born_by`.
Cut = dict[str, Any]
# What one batch removed: how many rows, and the blob hashes they named.
Taken = tuple[int, list[str]]

MINOR = "u.birthdate IS NOT NULL AND u.birthdate > :adult_born_by"
ADULT = "(u.birthdate IS NULL OR u.birthdate <= :adult_born_by)"
FINISHED = "j.status IN ('done', 'failed')"

# Blob columns of a job's rows, and the statements that read them for a list of job ids.
_JOB_BLOBS = (
    "SELECT stdout_blob FROM job_tests WHERE job_id IN ({ids}) AND stdout_blob IS NOT NULL",
    "SELECT stderr_blob FROM job_tests WHERE job_id IN ({ids}) AND stderr_blob IS NOT NULL",
    "SELECT stdin_blob FROM job_tests WHERE job_id IN ({ids}) AND stdin_blob IS NOT NULL",
    "SELECT expected_blob FROM job_tests WHERE job_id IN ({ids}) AND expected_blob IS NOT NULL",
    "SELECT blob FROM job_images WHERE job_id IN ({ids})",
    "SELECT blob FROM job_files WHERE job_id IN ({ids})",
)
# What stripping a job's outputs (the adult policy) reads: the test data snapshots stay.
_OUTPUT_BLOBS = (*_JOB_BLOBS[:2], _JOB_BLOBS[4])


async def _column(src: Database | Conn, sql: str, params: Sequence[Any] | dict[str, Any]) -> list[Any]:
    if isinstance(src, Database):
        rows: Sequence[Row] = await src.fetchall(sql, params)  # type: ignore[arg-type]
    else:
        cursor = await src.execute(sql, params)
        rows = list(await cursor.fetchall())
        await cursor.close()
    return [row[0] for row in rows]


def _named_in(keys: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """`IN (...)` with named parameters, for statements that also bind the cut-offs by name."""
    params = {f"k{i}": key for i, key in enumerate(keys)}
    return ",".join(f":{name}" for name in params), params


async def _blobs_of_jobs(conn: Conn, job_ids: Sequence[int], queries: Sequence[str]) -> list[str]:
    found: list[str] = []
    for sql in queries:
        found += await _column(conn, sql.format(ids=placeholders(job_ids)), job_ids)
    return found


# --- jobs ----------------------------------------------------------------------------------------

# Each rule: which finished jobs it takes, as a condition on `j` (the job) and `u` (its user).
MINOR_RUNS = f"j.kind = 'run' AND {FINISHED} AND j.created_at < :before AND {MINOR}"
MINOR_CONTENT = (
    f"j.kind != 'run' AND {FINISHED} AND j.created_at < :before AND {MINOR} AND j.purged IS DISTINCT FROM 'content'"
)
# A rejudge goes with the submission it re-ran (ON DELETE CASCADE).
MINOR_SUBMISSIONS = f"j.kind = 'submission' AND {FINISHED} AND j.created_at < :before AND {MINOR}"
ADULT_OUTPUTS = f"{FINISHED} AND j.finished_at < :before AND {ADULT} AND j.purged IS NULL"


async def jobs_due(db: Database, rule: str, cut: Cut, after: int, limit: int) -> list[int]:
    # NOT INDEXED: walk the jobs in id order from `after`, so each page goes on where the last one
    # stopped; through the status index, every page would read all finished jobs again and sort them.
    # SQLite's own hint: PostgreSQL's planner weighs the id order against the LIMIT by itself.
    hint = " NOT INDEXED" if dialect_of(db) == "sqlite" else ""
    return await _column(
        db,
        f"SELECT j.id FROM jobs j{hint} JOIN users u ON u.id = j.user_id WHERE j.id > :after AND {rule}"
        " ORDER BY j.id LIMIT :limit",
        {**cut, "after": after, "limit": limit},
    )


async def _still_due(conn: Conn, rule: str, cut: Cut, job_ids: Sequence[int]) -> list[int]:
    ids, params = _named_in(job_ids)
    return await _column(
        conn,
        f"SELECT j.id FROM jobs j JOIN users u ON u.id = j.user_id WHERE j.id IN ({ids}) AND {rule}",
        {**cut, **params},
    )


async def delete_jobs(conn: Conn, rule: str, cut: Cut, job_ids: Sequence[int]) -> Taken:
    """Delete the jobs of `job_ids` `rule` still takes, with their tests, pictures, files, comments
    and rejudges (their foreign keys cascade)."""
    due = await _still_due(conn, rule, cut, job_ids)
    if not due:
        return 0, []
    rejudges = await _column(conn, f"SELECT id FROM jobs WHERE rejudge_of IN ({placeholders(due)})", due)
    digests = await _blobs_of_jobs(conn, [*due, *rejudges], _JOB_BLOBS)
    await conn.execute(f"DELETE FROM jobs WHERE id IN ({placeholders(due)})", due)
    return len(due), digests


async def _strip_outputs(conn: Conn, job_ids: Sequence[int]) -> None:
    ids = placeholders(job_ids)
    await conn.execute(
        "UPDATE job_tests SET stdout = '', stderr = '', stdout_blob = NULL, stderr_blob = NULL,"
        f" full_output_bytes = 0 WHERE job_id IN ({ids})",
        job_ids,
    )
    await conn.execute(f"DELETE FROM job_images WHERE job_id IN ({ids})", job_ids)


async def strip_outputs(conn: Conn, rule: str, cut: Cut, job_ids: Sequence[int]) -> Taken:
    """Forget the outputs and pictures of the jobs `rule` still takes; code, verdicts and scores stay."""
    due = await _still_due(conn, rule, cut, job_ids)
    if not due:
        return 0, []
    digests = await _blobs_of_jobs(conn, due, _OUTPUT_BLOBS)
    await _strip_outputs(conn, due)
    await conn.execute(
        f"UPDATE jobs SET compile_output = NULL, purged = 'outputs' WHERE id IN ({placeholders(due)})", due
    )
    return len(due), digests


async def strip_content(conn: Conn, rule: str, cut: Cut, job_ids: Sequence[int]) -> Taken:
    """Forget the code, input, files, outputs and pictures of the jobs `rule` still takes: what is
    left is the gradebook's (verdicts and scores, per test too) and the teacher's comments."""
    due = await _still_due(conn, rule, cut, job_ids)
    if not due:
        return 0, []
    digests = await _blobs_of_jobs(conn, due, (*_OUTPUT_BLOBS, _JOB_BLOBS[5]))
    await _strip_outputs(conn, due)
    # The files go from the job: a file only this submission kept is no longer pinned, and expires.
    await conn.execute(f"DELETE FROM job_files WHERE job_id IN ({placeholders(due)})", due)
    await conn.execute(
        "UPDATE jobs SET code = '', code_hash = '', stdin = '', compile_output = NULL, purged = 'content'"
        f" WHERE id IN ({placeholders(due)})",
        due,
    )
    return len(due), digests


# --- files, drafts, sessions, tokens ---------------------------------------------------------------


@dataclass(frozen=True)
class Purgeable:
    """One table's rows a policy removes. `source` is the table as the condition reads it (with its
    alias and a join to the user where the policy goes by age), `key` the column that pages through
    and names the rows (as `source` spells it; `column` as the table itself does), `due` the
    condition, `blob` the column whose hash a removed row gives back (None: it names no blob)."""

    table: str
    column: str
    source: str
    key: str
    due: str
    blob: str | None = None

    async def due_after(self, db: Database, cut: Cut, after: Any, limit: int) -> list[Any]:
        return await _column(
            db,
            f"SELECT {self.key} FROM {self.source} WHERE {self.key} > :after AND {self.due}"
            f" ORDER BY {self.key} LIMIT :limit",
            {**cut, "after": after, "limit": limit},
        )

    async def delete(self, conn: Conn, cut: Cut, keys: Sequence[Any]) -> Taken:
        ids, params = _named_in(keys)
        returned = await _column(
            conn,
            f"DELETE FROM {self.table} WHERE {self.column} IN (SELECT {self.key} FROM {self.source}"
            f" WHERE {self.key} IN ({ids}) AND {self.due}) RETURNING {self.blob or self.column}",
            {**cut, **params},
        )
        return len(returned), returned if self.blob else []


# A file some kept submission still uses stays (PINNED); the submissions whose content was purged
# let go of their files first.
MINOR_FILES = Purgeable(
    "files",
    "id",
    "files f JOIN users u ON u.id = f.owner_id",
    "f.id",
    f"f.created_at < :before AND {MINOR} AND NOT {PINNED}",
    blob="blob",
)
MINOR_DRAFTS = Purgeable(
    "drafts", "id", "drafts d JOIN users u ON u.id = d.user_id", "d.id", f"d.updated_at < :before AND {MINOR}"
)
EXPIRED_SESSIONS = Purgeable("sessions", "id_hash", "sessions", "id_hash", "expires_at <= :now")
# Expired or revoked tokens stay a while, so their owner sees why a script stopped.
DEAD_TOKENS = Purgeable("api_tokens", "id", "api_tokens", "id", "(expires_at < :before OR revoked_at < :before)")


# --- the audit log ---------------------------------------------------------------------------------

AUDIT_COLUMNS = "id, run_at, policy, what, rows, blobs, older_than, finished_at"


async def record(conn: Conn, values: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO retention_purges (run_at, policy, what, rows, blobs, older_than, finished_at)"
        " VALUES (:run_at, :policy, :what, :rows, :blobs, :older_than, :finished_at)",
        values,
    )


async def last_run_at(db: Database) -> str | None:
    value = await db.fetchval("SELECT MAX(run_at) FROM retention_purges")
    return None if value is None else str(value)


async def recent(db: Database, limit: int) -> list[Row]:
    return await db.fetchall(f"SELECT {AUDIT_COLUMNS} FROM retention_purges ORDER BY id DESC LIMIT ?", (limit,))
