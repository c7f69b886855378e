"""One student's rows: read for their export, and erased (pseudonymised) in one transaction.

What the erasure keeps: the account row under a pseudonym (disabled, no password, no birthdate),
its class memberships and legal acceptances, and each submission's verdict, score, lateness and
times, so the class's gradebook still counts and totals the same. Everything the student wrote or
their programs produced goes: code, stdin, outputs, pictures, files, drafts, runs, sessions,
tokens, and the teachers' comments on their submissions.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.db import Conn, Database, IntegrityError, MissingTable, Row

_THEIR_JOBS = "job_id IN (SELECT id FROM jobs WHERE user_id = :user)"
# Blobs holding the student's own bytes. A test's judged stdin and expected output (stdin_blob,
# expected_blob) are the teacher's test data and stay with the submission's result.
_THEIR_BLOBS = (
    "SELECT blob FROM files WHERE owner_id = :user"
    f" UNION SELECT blob FROM job_files WHERE {_THEIR_JOBS}"
    f" UNION SELECT blob FROM job_images WHERE {_THEIR_JOBS}"
    f" UNION SELECT stdout_blob FROM job_tests WHERE stdout_blob IS NOT NULL AND {_THEIR_JOBS}"
    f" UNION SELECT stderr_blob FROM job_tests WHERE stderr_blob IS NOT NULL AND {_THEIR_JOBS}"
)
# The unusable password of an erased account: no scrypt hash, so no password ever matches it.
ERASED_PASSWORD_HASH = "erased"


# --- export ---------------------------------------------------------------------------------------


async def memberships(db: Database, user_id: int) -> list[Row]:
    return await db.fetchall(
        "SELECT c.id, c.name, m.added_at, m.joined_by_code FROM class_members m JOIN classes c ON c.id = m.class_id"
        " WHERE m.user_id = ? ORDER BY c.id",
        (user_id,),
    )


async def legal_acceptances(db: Database, user_id: int) -> list[Row]:
    return await db.fetchall(
        "SELECT kind, version, accepted_at FROM legal_acceptances WHERE user_id = ? ORDER BY accepted_at, kind",
        (user_id,),
    )


async def tokens(db: Database, user_id: int) -> list[Row]:
    """Every token of theirs, revoked ones too; never the hash."""
    return await db.fetchall(
        "SELECT id, name, created_at, last_used_at, expires_at, revoked_at FROM api_tokens WHERE user_id = ?"
        " ORDER BY id",
        (user_id,),
    )


async def sessions(db: Database, user_id: int) -> list[Row]:
    return await db.fetchall(
        "SELECT created_at, expires_at FROM sessions WHERE user_id = ? ORDER BY created_at", (user_id,)
    )


async def drafts(db: Database, user_id: int) -> list[Row]:
    return await db.fetchall(
        "SELECT d.problem_id, p.title AS problem, d.language, d.code, d.stdin, d.revision, d.updated_at"
        " FROM drafts d LEFT JOIN problems p ON p.id = d.problem_id WHERE d.user_id = ? ORDER BY d.id",
        (user_id,),
    )


async def files(db: Database, user_id: int) -> list[Row]:
    """Every file row they own: deleted ones a submission still keeps too (still their data)."""
    return await db.fetchall(
        "SELECT id, name, kind, media_type, size, blob, created_at, expires_at, deleted_at FROM files"
        " WHERE owner_id = ? ORDER BY created_at, id",
        (user_id,),
    )


async def job_ids(db: Database, user_id: int, kind: str) -> list[int]:
    rows = await db.fetchall("SELECT id FROM jobs WHERE user_id = ? AND kind = ? ORDER BY id", (user_id, kind))
    return [int(row[0]) for row in rows]


async def erasures_recorded(db: Database) -> list[Row]:
    """Every erasure a database recorded (none in one from before erasures existed)."""
    try:
        return await db.fetchall("SELECT user_id, erased_by, erased_at, counts FROM erasures ORDER BY id")
    except MissingTable:
        return []


async def has_user(db: Database, user_id: int) -> bool:
    return await db.fetchone("SELECT 1 FROM users WHERE id = ?", (user_id,)) is not None


async def stop_jobs_in_flight(conn: Conn, user_id: int) -> None:
    """Before erasing again after a restore: the student's jobs the backup caught waiting or
    running never run (their code is about to go)."""
    await conn.execute(
        "UPDATE jobs SET status = 'failed' WHERE user_id = ? AND status IN ('queued', 'running')", (user_id,)
    )


async def erasure_of(db: Database, user_id: int) -> Row | None:
    return await db.fetchone("SELECT erased_by, erased_at FROM erasures WHERE user_id = ?", (user_id,))


# --- erasure --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Erased:
    counts: dict[str, int]
    # Blobs that held the student's bytes: the caller unlinks those no row uses any more.
    blobs: list[str]


class JobsInFlight(Exception):
    """The student has queued or running work: its result would be written after the erasure."""


class AlreadyErased(Exception):
    pass


Params = dict[str, object]


async def _count(conn: Conn, sql: str, params: Params) -> int:
    cursor = await conn.execute(sql, params)
    row = await cursor.fetchone()
    await cursor.close()
    return int(row[0]) if row else 0


async def _run(conn: Conn, sql: str, params: Params) -> int:
    cursor = await conn.execute(sql, params)
    count = cursor.rowcount
    await cursor.close()
    return count


async def erase(conn: Conn, user_id: int, pseudonym: str) -> Erased:
    """Inside the caller's write transaction, which also records the erasure (`record_erasure`)."""
    user = {"user": user_id}
    if await _count(conn, "SELECT COUNT(*) FROM erasures WHERE user_id = :user", user):
        raise AlreadyErased
    if await _count(conn, "SELECT COUNT(*) FROM jobs WHERE user_id = :user AND status IN ('queued', 'running')", user):
        raise JobsInFlight
    cursor = await conn.execute(_THEIR_BLOBS, user)
    blobs = sorted({str(row[0]) for row in await cursor.fetchall()})
    await cursor.close()
    counts = {
        "sessions": await _run(conn, "DELETE FROM sessions WHERE user_id = :user", user),
        "tokens": await _run(conn, "DELETE FROM api_tokens WHERE user_id = :user", user),
        "drafts": await _run(conn, "DELETE FROM drafts WHERE user_id = :user", user),
        "comments": await _run(conn, f"DELETE FROM submission_comments WHERE {_THEIR_JOBS}", user),
        "pictures": await _run(conn, f"DELETE FROM job_images WHERE {_THEIR_JOBS}", user),
        "job_files": await _run(conn, f"DELETE FROM job_files WHERE {_THEIR_JOBS}", user),
        "files": await _run(conn, "DELETE FROM files WHERE owner_id = :user", user),
        "runs": await _run(conn, "DELETE FROM jobs WHERE user_id = :user AND kind = 'run'", user),
        "test_results": await _run(
            conn,
            "UPDATE job_tests SET stdout = '', stderr = '', stdout_blob = NULL, stderr_blob = NULL,"
            f" full_output_bytes = 0 WHERE {_THEIR_JOBS}",
            user,
        ),
        # Submissions and rejudges keep verdict, score, lateness and times: the gradebook's facts.
        "submissions": await _run(
            conn,
            "UPDATE jobs SET code = '', code_hash = '', stdin = '', compile_output = NULL, infra_log = '[]'"
            " WHERE user_id = :user",
            user,
        ),
    }
    await _run(
        conn,
        "UPDATE users SET username = :name, password_hash = :hash, birthdate = NULL, disabled = 1 WHERE id = :user",
        {**user, "name": pseudonym, "hash": ERASED_PASSWORD_HASH},
    )
    return Erased(counts, blobs)


async def record_erasure(conn: Conn, user_id: int, erased_by: int | None, erased_at: str, counts_json: str) -> None:
    try:
        await _run(
            conn,
            "INSERT INTO erasures (user_id, erased_by, erased_at, counts) VALUES (:user, :by, :at, :counts)",
            {"user": user_id, "by": erased_by, "at": erased_at, "counts": counts_json},
        )
    except IntegrityError as exc:
        raise AlreadyErased from exc
