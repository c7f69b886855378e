"""Exams: their rows and problems, who is in one right now, submission counts inside an exam's
window, and the sessions a login during an exam ended. Times are stored as appliance.clock writes
them, so a window is compared as text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from appliance.clock import db_now
from appliance.db import Conn, Database, Row, placeholders
from appliance.errors import Conflict
from appliance.store.portable import insert_id

EXAM_COLUMNS = (
    "e.id, e.class_id, e.title, e.starts_at, e.ends_at, e.runs_allowed, e.max_submissions_per_problem,"
    " e.created_at, e.updated_at"
)
# The exams running now for one student, through any of their classes (parameters: user id, now, now).
_RUNNING_FOR = (
    "SELECT e.id FROM exams e JOIN class_members em ON em.class_id = e.class_id"
    " WHERE em.user_id = ? AND e.starts_at <= ? AND e.ends_at > ?"
)


def visible_in_exam_sql(problem_column: str, user_id: int, now: str) -> tuple[str, tuple[Any, ...]]:
    """A condition true for the problems a student may see as far as exams go: all of them while no
    class of theirs is in an exam, else only the running exams' problems. Problem queries for
    students AND it in, so a non-exam problem is never fetched for them during their exam."""
    sql = (
        f"(NOT EXISTS ({_RUNNING_FOR}) OR {problem_column} IN"
        f" (SELECT ep.problem_id FROM exam_problems ep WHERE ep.exam_id IN ({_RUNNING_FOR})))"
    )
    return sql, (user_id, now, now, user_id, now, now)


async def _check_overlap(conn: Conn, class_id: int, starts_at: str, ends_at: str, exam_id: int | None) -> None:
    cursor = await conn.execute(
        "SELECT id, title FROM exams WHERE class_id = ? AND starts_at < ? AND ends_at > ? AND id IS DISTINCT FROM ?"
        " ORDER BY starts_at LIMIT 1",
        (class_id, ends_at, starts_at, exam_id),
    )
    clash = await cursor.fetchone()
    await cursor.close()
    if clash is not None:
        raise Conflict(
            "exam_overlap",
            f"this class already has an exam at that time ({clash[1]!r}); one class takes one exam at a time",
            field="starts_at",
        )


async def _set_problems(conn: Conn, exam_id: int, problem_ids: Sequence[int]) -> None:
    await conn.execute("DELETE FROM exam_problems WHERE exam_id = ?", (exam_id,))
    for position, problem_id in enumerate(problem_ids, start=1):
        await conn.execute(
            "INSERT INTO exam_problems (exam_id, problem_id, position) VALUES (?, ?, ?)",
            (exam_id, problem_id, position),
        )


async def create(db: Database, class_id: int, fields: dict[str, Any], problem_ids: Sequence[int]) -> int:
    """`fields`: title, starts_at, ends_at, runs_allowed, max_submissions_per_problem. 409
    exam_overlap when the class has another exam in that time (checked under the writer lock)."""
    stamp = db_now()
    async with db.transaction() as conn:
        await _check_overlap(conn, class_id, fields["starts_at"], fields["ends_at"], None)
        exam_id = await insert_id(
            conn,
            "INSERT INTO exams (class_id, title, starts_at, ends_at, runs_allowed, max_submissions_per_problem,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                class_id,
                fields["title"],
                fields["starts_at"],
                fields["ends_at"],
                int(fields["runs_allowed"]),
                fields["max_submissions_per_problem"],
                stamp,
                stamp,
            ),
        )
        await _set_problems(conn, exam_id, problem_ids)
    return exam_id


async def update(db: Database, exam: Row, fields: dict[str, Any], problem_ids: Sequence[int] | None) -> None:
    """`fields` holds the changed columns only; `problem_ids` None keeps the problems."""
    merged = {"starts_at": exam["starts_at"], "ends_at": exam["ends_at"], **fields}
    async with db.transaction() as conn:
        await _check_overlap(conn, exam["class_id"], merged["starts_at"], merged["ends_at"], exam["id"])
        values = {**fields, "updated_at": db_now()}
        if "runs_allowed" in values:
            values["runs_allowed"] = int(values["runs_allowed"])
        assignments = ", ".join(f"{name} = ?" for name in values)
        await conn.execute(f"UPDATE exams SET {assignments} WHERE id = ?", (*values.values(), exam["id"]))
        if problem_ids is not None:
            await _set_problems(conn, exam["id"], problem_ids)


async def delete(db: Database, exam_id: int) -> None:
    await db.execute("DELETE FROM exams WHERE id = ?", (exam_id,))


async def get(db: Database, exam_id: int) -> Row | None:
    return await db.fetchone(f"SELECT {EXAM_COLUMNS} FROM exams e WHERE e.id = ?", (exam_id,))


async def list_for_class(db: Database, class_id: int) -> list[Row]:
    return await db.fetchall(
        f"SELECT {EXAM_COLUMNS} FROM exams e WHERE e.class_id = ? ORDER BY e.starts_at, e.id", (class_id,)
    )


async def problems_of(db: Database, exam_ids: Sequence[int]) -> dict[int, list[Row]]:
    """exam id → its problems (id, title) in the exam's order."""
    if not exam_ids:
        return {}
    rows = await db.fetchall(
        "SELECT ep.exam_id, p.id, p.title FROM exam_problems ep JOIN problems p ON p.id = ep.problem_id"
        f" WHERE ep.exam_id IN ({placeholders(exam_ids)}) ORDER BY ep.exam_id, ep.position",
        tuple(exam_ids),
    )
    out: dict[int, list[Row]] = {exam_id: [] for exam_id in exam_ids}
    for row in rows:
        out[row["exam_id"]].append(row)
    return out


async def problems_in_class(db: Database, class_id: int, problem_ids: Sequence[int]) -> dict[int, int]:
    """problem id → owner id, for those of `problem_ids` that are shown to the class."""
    if not problem_ids:
        return {}
    rows = await db.fetchall(
        "SELECT p.id, p.owner_id FROM problems p JOIN problem_classes pc ON pc.problem_id = p.id"
        f" WHERE pc.class_id = ? AND p.id IN ({placeholders(problem_ids)})",
        (class_id, *problem_ids),
    )
    return {row[0]: row[1] for row in rows}


async def running_for_student(db: Database, user_id: int, now: str) -> list[Row]:
    """The exams running at `now` in any class of the student's, ending first first."""
    return await db.fetchall(
        f"SELECT {EXAM_COLUMNS} FROM exams e WHERE e.id IN ({_RUNNING_FOR}) ORDER BY e.ends_at, e.id",
        (user_id, now, now),
    )


async def in_exam(db: Database, user_id: int, now: str) -> bool:
    return await db.fetchone(f"{_RUNNING_FOR} LIMIT 1", (user_id, now, now)) is not None


async def submissions_in_window(conn: Conn, user_id: int, problem_id: int, starts_at: str, ends_at: str) -> int:
    """The student's submissions to the problem made inside the window. A job the infrastructure gave
    up on does not count (the student was told so); a deduplicated resubmission made no job at all."""
    cursor = await conn.execute(
        "SELECT COUNT(*) FROM jobs WHERE user_id = ? AND problem_id = ? AND kind = 'submission'"
        " AND status != 'failed' AND created_at >= ? AND created_at < ?",
        (user_id, problem_id, starts_at, ends_at),
    )
    row = await cursor.fetchone()
    await cursor.close()
    return int(row[0]) if row else 0


async def window_counts(db: Database, exam: Row, user_id: int | None = None) -> list[Row]:
    """Per student (of the exam's class) and exam problem: submissions made inside the exam's window
    and their best score (the published rejudge's where there is one), optionally for one student."""
    return await db.fetchall(
        "SELECT j.user_id, j.problem_id, COUNT(*) AS used,"
        " MAX(CASE WHEN j.status = 'done' THEN COALESCE(r.score, j.score) END) AS best_score"
        " FROM jobs j LEFT JOIN jobs r ON r.id = j.published_rejudge"
        " WHERE j.kind = 'submission' AND j.status != 'failed' AND j.created_at >= ? AND j.created_at < ?"
        " AND j.problem_id IN (SELECT problem_id FROM exam_problems WHERE exam_id = ?)"
        " AND j.user_id IN (SELECT user_id FROM class_members WHERE class_id = ?)"
        " AND (CAST(? AS BIGINT) IS NULL OR j.user_id = ?)"
        " GROUP BY j.user_id, j.problem_id",
        (exam["starts_at"], exam["ends_at"], exam["id"], exam["class_id"], user_id, user_id),
    )


# A session ended twice is remembered as ended the second time.
_REMEMBER_ENDED = (
    "ON CONFLICT (id_hash) DO UPDATE SET user_id = excluded.user_id, ended_at = excluded.ended_at,"
    " expires_at = excluded.expires_at"
)


async def end_other_sessions(db: Database, user_id: int, keep_hash: str) -> int:
    """Delete the user's sessions but `keep_hash`, remembering each as ended; returns how many."""
    stamp = db_now()
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM ended_sessions WHERE expires_at <= ?", (stamp,))
        await conn.execute(
            "INSERT INTO ended_sessions (id_hash, user_id, ended_at, expires_at)"
            " SELECT id_hash, user_id, CAST(? AS TEXT), expires_at FROM sessions WHERE user_id = ? AND id_hash != ?"
            f" {_REMEMBER_ENDED}",
            (stamp, user_id, keep_hash),
        )
        cursor = await conn.execute("DELETE FROM sessions WHERE user_id = ? AND id_hash != ?", (user_id, keep_hash))
        ended = cursor.rowcount
        await cursor.close()
    return ended


async def end_if_older_session(db: Database, user_id: int, id_hash: str) -> bool:
    """End the session `id_hash` (remembering it as ended) if the user has a newer one; True if it ended."""
    stamp = db_now()
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "SELECT 1 FROM sessions s JOIN sessions mine ON mine.id_hash = ? AND mine.user_id = s.user_id"
            " WHERE s.user_id = ? AND s.id_hash != mine.id_hash AND (s.created_at > mine.created_at"
            " OR (s.created_at = mine.created_at AND s.rowid > mine.rowid)) LIMIT 1",
            (id_hash, user_id),
        )
        newer = await cursor.fetchone()
        await cursor.close()
        if newer is None:
            return False
        await conn.execute(
            "INSERT INTO ended_sessions (id_hash, user_id, ended_at, expires_at)"
            f" SELECT id_hash, user_id, CAST(? AS TEXT), expires_at FROM sessions WHERE id_hash = ? {_REMEMBER_ENDED}",
            (stamp, id_hash),
        )
        await conn.execute("DELETE FROM sessions WHERE id_hash = ?", (id_hash,))
    return True


async def session_was_ended(db: Database, id_hash: str) -> bool:
    row = await db.fetchone("SELECT 1 FROM ended_sessions WHERE id_hash = ? AND expires_at > ?", (id_hash, db_now()))
    return row is not None
