"""Problems and test cases. Hidden test data is filtered here, in the query, never by callers."""

from __future__ import annotations

from typing import Any

from appliance.clock import DB_EPOCH, db_now
from appliance.db import Database, Row, placeholders

PROBLEM_COLUMNS = (
    "id, owner_id, title, statement, language, time_limit_ms, memory_limit_mb, comparison, tolerance,"
    " graphical, hidden_feedback, created_at, updated_at"
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
)
# Optional fields: graphical NULL lets the runner decide from each program's imports;
# hidden_feedback defaults as its column does.
_DEFAULTS = {"graphical": None, "hidden_feedback": "summary"}
TEST_COLUMNS = "id, position, name, stdin, expected_stdout, visibility, reveal_at, weight"
# A student may see a test once it is visible or its reveal date has passed; nothing else.
_STUDENT_VISIBLE = "(visibility = 'visible' OR (visibility = 'reveal_later' AND reveal_at <= ?))"


async def _insert_tests(conn: Any, problem_id: int, tests: list[dict[str, Any]]) -> None:
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


async def _set_classes(conn: Any, problem_id: int, class_ids: list[int]) -> None:
    await conn.execute("DELETE FROM problem_classes WHERE problem_id = ?", (problem_id,))
    for class_id in dict.fromkeys(class_ids):
        await conn.execute("INSERT INTO problem_classes (problem_id, class_id) VALUES (?, ?)", (problem_id, class_id))


async def create(
    db: Database, owner_id: int, fields: dict[str, Any], class_ids: list[int], tests: list[dict[str, Any]]
) -> int:
    stamp = db_now()
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "INSERT INTO problems (owner_id, title, statement, language, time_limit_ms, memory_limit_mb,"
            " comparison, tolerance, graphical, hidden_feedback, created_at, updated_at, tests_changed_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (owner_id, *({**_DEFAULTS, **fields}[name] for name in EDITABLE_FIELDS), stamp, stamp, DB_EPOCH),
        )
        problem_id = int(cursor.lastrowid or 0)
        await _set_classes(conn, problem_id, class_ids)
        await _insert_tests(conn, problem_id, tests)
    return problem_id


async def update(
    db: Database,
    problem_id: int,
    fields: dict[str, Any],
    class_ids: list[int] | None,
    tests: list[dict[str, Any]] | None,
) -> None:
    changes = {name: fields[name] for name in EDITABLE_FIELDS if name in fields}
    stamp = db_now()
    async with db.transaction() as conn:
        assignments = ", ".join(f"{name} = ?" for name in changes)
        await conn.execute(
            f"UPDATE problems SET {assignments + ', ' if assignments else ''}updated_at = ? WHERE id = ?",
            (*changes.values(), stamp, problem_id),
        )
        if class_ids is not None:
            await _set_classes(conn, problem_id, class_ids)
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


async def student_can_see(db: Database, problem_id: int, user_id: int) -> bool:
    row = await db.fetchone(
        "SELECT 1 FROM problem_classes pc JOIN class_members m ON m.class_id = pc.class_id"
        " WHERE pc.problem_id = ? AND m.user_id = ? LIMIT 1",
        (problem_id, user_id),
    )
    return row is not None


async def list_for_student(db: Database, user_id: int) -> list[Row]:
    return await db.fetchall(
        f"SELECT DISTINCT {_P_COLS} FROM problems p JOIN problem_classes pc ON pc.problem_id = p.id"
        " JOIN class_members m ON m.class_id = pc.class_id WHERE m.user_id = ? ORDER BY p.id",
        (user_id,),
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
