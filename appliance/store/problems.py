"""Problems and test cases. Hidden test data is filtered here, in the query, never by callers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from appliance.clock import DB_EPOCH, db_now
from appliance.db import Conn, Database, Row, placeholders
from appliance.store.exams import visible_in_exam_sql
from appliance.store.portable import insert_id

PROBLEM_COLUMNS = (
    "id, owner_id, title, statement, language, time_limit_ms, memory_limit_mb, comparison, tolerance,"
    " graphical, hidden_feedback, starter_code, created_at, updated_at"
)
_P_COLS = ", ".join(f"p.{c.strip()}" for c in PROBLEM_COLUMNS.split(","))
EDITABLE_FIELDS = (
    "title",
    "statement",
    "language",
    "time_limit_ms",
    "memory_limit_mb",
    "comparison",
    "tolerance",
    "graphical",
    "hidden_feedback",
    "starter_code",
)
# Optional fields: graphical NULL lets the runner decide from each program's imports;
# hidden_feedback and starter_code default as their columns do.
_DEFAULTS = {"graphical": None, "hidden_feedback": "summary", "starter_code": ""}
TEST_COLUMNS = "id, position, name, stdin, expected_stdout, visibility, reveal_at, weight"
# A student may see a test once it is visible or its reveal date has passed; nothing else.
_STUDENT_VISIBLE = "(visibility = 'visible' OR (visibility = 'reveal_later' AND reveal_at <= ?))"


def _stored(fields: dict[str, Any]) -> dict[str, Any]:
    """Flags (graphical) as the 0 or 1 their integer columns hold."""
    return {name: int(value) if isinstance(value, bool) else value for name, value in fields.items()}


@dataclass(frozen=True)
class DueDate:
    """A problem's due date in one class (`due_at` stored as appliance.clock writes it; None: none)."""

    class_id: int
    due_at: str | None
    late_policy: str


async def _insert_tests(conn: Conn, problem_id: int, tests: list[dict[str, Any]]) -> None:
    for position, test in enumerate(tests, start=1):
        await conn.execute(
            "INSERT INTO test_cases (problem_id, position, name, stdin, expected_stdout, visibility, reveal_at, weight)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                problem_id,
                position,
                test["name"],
                test["stdin"],
                test["expected_stdout"],
                test["visibility"],
                test.get("reveal_at"),
                test["weight"],
            ),
        )


async def _set_classes(conn: Conn, problem_id: int, class_ids: list[int]) -> None:
    """Link exactly these classes; a class that stays linked keeps its due date."""
    await conn.execute(
        f"DELETE FROM problem_classes WHERE problem_id = ? AND class_id NOT IN ({placeholders(class_ids)})"
        if class_ids
        else "DELETE FROM problem_classes WHERE problem_id = ?",
        (problem_id, *class_ids),
    )
    for class_id in dict.fromkeys(class_ids):
        await conn.execute(
            "INSERT INTO problem_classes (problem_id, class_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (problem_id, class_id),
        )


async def _set_due_dates(conn: Conn, problem_id: int, due_dates: Sequence[DueDate]) -> None:
    """Every linked class gets the due date listed for it, or none."""
    await conn.execute(
        "UPDATE problem_classes SET due_at = NULL, late_policy = 'accept_late' WHERE problem_id = ?", (problem_id,)
    )
    for due in due_dates:
        await conn.execute(
            "UPDATE problem_classes SET due_at = ?, late_policy = ? WHERE problem_id = ? AND class_id = ?",
            (due.due_at, due.late_policy, problem_id, due.class_id),
        )


async def create(
    db: Database,
    owner_id: int,
    fields: dict[str, Any],
    class_ids: list[int],
    tests: list[dict[str, Any]],
    due_dates: Sequence[DueDate] = (),
) -> int:
    async with db.transaction() as conn:
        return await insert(conn, owner_id, fields, class_ids, tests, due_dates)


async def insert(
    conn: Conn,
    owner_id: int,
    fields: dict[str, Any],
    class_ids: list[int],
    tests: list[dict[str, Any]],
    due_dates: Sequence[DueDate] = (),
) -> int:
    """`create` inside a caller's transaction (an import writes several problems atomically)."""
    stamp = db_now()
    values = _stored({**_DEFAULTS, **fields})
    problem_id = await insert_id(
        conn,
        f"INSERT INTO problems (owner_id, {', '.join(EDITABLE_FIELDS)}, created_at, updated_at, tests_changed_at)"
        f" VALUES ({placeholders(range(len(EDITABLE_FIELDS) + 4))}) RETURNING id",
        (owner_id, *(values[name] for name in EDITABLE_FIELDS), stamp, stamp, DB_EPOCH),
    )
    await _set_classes(conn, problem_id, class_ids)
    await _set_due_dates(conn, problem_id, due_dates)
    await _insert_tests(conn, problem_id, tests)
    return problem_id


async def update(
    db: Database,
    problem_id: int,
    fields: dict[str, Any],
    class_ids: list[int] | None,
    tests: list[dict[str, Any]] | None,
    due_dates: list[DueDate] | None = None,
) -> None:
    """`None` for classes, tests or due dates leaves them as they are."""
    async with db.transaction() as conn:
        await update_in(conn, problem_id, fields, class_ids, tests, due_dates)


async def update_in(
    conn: Conn,
    problem_id: int,
    fields: dict[str, Any],
    class_ids: list[int] | None,
    tests: list[dict[str, Any]] | None,
    due_dates: list[DueDate] | None = None,
) -> None:
    """`update` inside a caller's transaction."""
    changes = _stored({name: fields[name] for name in EDITABLE_FIELDS if name in fields})
    stamp = db_now()
    assignments = ", ".join(f"{name} = ?" for name in changes)
    await conn.execute(
        f"UPDATE problems SET {assignments + ', ' if assignments else ''}updated_at = ? WHERE id = ?",
        (*changes.values(), stamp, problem_id),
    )
    if class_ids is not None:
        await _set_classes(conn, problem_id, class_ids)
    if due_dates is not None:
        await _set_due_dates(conn, problem_id, due_dates)
    if tests is not None:
        await conn.execute("UPDATE problems SET tests_changed_at = ? WHERE id = ?", (stamp, problem_id))
        await conn.execute("DELETE FROM test_cases WHERE problem_id = ?", (problem_id,))
        await _insert_tests(conn, problem_id, tests)


async def delete(db: Database, problem_id: int) -> None:
    await db.execute("DELETE FROM problems WHERE id = ?", (problem_id,))


async def get(db: Database, problem_id: int) -> Row | None:
    return await db.fetchone(f"SELECT {PROBLEM_COLUMNS} FROM problems WHERE id = ?", (problem_id,))


async def class_ids(db: Database, problem_id: int) -> list[int]:
    rows = await db.fetchall(
        "SELECT class_id FROM problem_classes WHERE problem_id = ? ORDER BY class_id", (problem_id,)
    )
    return [row[0] for row in rows]


async def due_dates(db: Database, problem_id: int) -> list[DueDate]:
    """The problem's due date in each class it is shown to."""
    rows = await db.fetchall(
        "SELECT class_id, due_at, late_policy FROM problem_classes WHERE problem_id = ? ORDER BY class_id",
        (problem_id,),
    )
    return [DueDate(row[0], row[1], row[2]) for row in rows]


async def student_due_dates(db: Database, user_id: int, problem_id: int | None = None) -> dict[int, list[DueDate]]:
    """problem id → the due dates of the problem in each class of the student's that shows it
    (only `problem_id`'s when given)."""
    rows = await db.fetchall(
        "SELECT pc.problem_id, pc.class_id, pc.due_at, pc.late_policy FROM problem_classes pc"
        " JOIN class_members m ON m.class_id = pc.class_id WHERE m.user_id = ?"
        " AND (CAST(? AS BIGINT) IS NULL OR pc.problem_id = ?)"
        " ORDER BY pc.problem_id, pc.class_id",
        (user_id, problem_id, problem_id),
    )
    out: dict[int, list[DueDate]] = {}
    for row in rows:
        out.setdefault(row[0], []).append(DueDate(row[1], row[2], row[3]))
    return out


async def student_can_see(db: Database, problem_id: int, user_id: int) -> bool:
    """Shown to a class of the student's, and (during their exam) one of the exam's problems."""
    in_exam, exam_params = visible_in_exam_sql("pc.problem_id", user_id, db_now())
    row = await db.fetchone(
        "SELECT 1 FROM problem_classes pc JOIN class_members m ON m.class_id = pc.class_id"
        f" WHERE pc.problem_id = ? AND m.user_id = ? AND {in_exam} LIMIT 1",
        (problem_id, user_id, *exam_params),
    )
    return row is not None


async def list_for_student(db: Database, user_id: int) -> list[Row]:
    """The problems of the student's classes; during their exam only the exam's."""
    in_exam, exam_params = visible_in_exam_sql("p.id", user_id, db_now())
    return await db.fetchall(
        f"SELECT DISTINCT {_P_COLS} FROM problems p JOIN problem_classes pc ON pc.problem_id = p.id"
        f" JOIN class_members m ON m.class_id = pc.class_id WHERE m.user_id = ? AND {in_exam} ORDER BY p.id",
        (user_id, *exam_params),
    )


async def list_for_owner(db: Database, owner_id: int) -> list[Row]:
    return await db.fetchall(f"SELECT {PROBLEM_COLUMNS} FROM problems WHERE owner_id = ? ORDER BY id", (owner_id,))


async def list_all(db: Database) -> list[Row]:
    return await db.fetchall(f"SELECT {PROBLEM_COLUMNS} FROM problems ORDER BY id")


async def classes_of(db: Database, problem_ids: list[int]) -> dict[int, list[int]]:
    if not problem_ids:
        return {}
    rows = await db.fetchall(
        f"SELECT problem_id, class_id FROM problem_classes WHERE problem_id IN ({placeholders(problem_ids)})"
        " ORDER BY class_id",
        problem_ids,
    )
    out: dict[int, list[int]] = {pid: [] for pid in problem_ids}
    for row in rows:
        out[row[0]].append(row[1])
    return out


async def student_tests(db: Database, problem_id: int) -> list[Row]:
    return await db.fetchall(
        f"SELECT {TEST_COLUMNS} FROM test_cases WHERE problem_id = ? AND {_STUDENT_VISIBLE} ORDER BY position",
        (problem_id, db_now()),
    )


async def hidden_test_count(db: Database, problem_id: int) -> int:
    return int(
        await db.fetchval(
            f"SELECT COUNT(*) FROM test_cases WHERE problem_id = ? AND NOT {_STUDENT_VISIBLE}",
            (problem_id, db_now()),
        )
    )


async def all_tests(db: Database, problem_id: int) -> list[Row]:
    return await db.fetchall(
        f"SELECT {TEST_COLUMNS} FROM test_cases WHERE problem_id = ? ORDER BY position", (problem_id,)
    )


async def student_visible_test_ids(db: Database, problem_id: int) -> set[int]:
    rows = await db.fetchall(
        f"SELECT id FROM test_cases WHERE problem_id = ? AND {_STUDENT_VISIBLE}", (problem_id, db_now())
    )
    return {row[0] for row in rows}
