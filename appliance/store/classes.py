from __future__ import annotations

from appliance.clock import db_now
from appliance.db import Database, IntegrityError, Row
from appliance.errors import Conflict

_CLASS_COLS = "c.id, c.name, c.owner_id, c.join_code, c.created_at"


async def create(db: Database, name: str, owner_id: int, join_code: str) -> int:
    try:
        return await db.insert(
            "INSERT INTO classes (name, owner_id, join_code, created_at) VALUES (?, ?, ?, ?) RETURNING id",
            (name, owner_id, join_code, db_now()),
        )
    except IntegrityError as exc:
        raise Conflict("join_code_taken", "that join code is in use; try again") from exc


async def get(db: Database, class_id: int) -> Row | None:
    return await db.fetchone(f"SELECT {_CLASS_COLS} FROM classes c WHERE c.id = ?", (class_id,))


async def by_join_code(db: Database, code: str) -> Row | None:
    return await db.fetchone(f"SELECT {_CLASS_COLS} FROM classes c WHERE c.join_code = ?", (code,))


async def list_all(db: Database) -> list[Row]:
    return await db.fetchall(f"SELECT {_CLASS_COLS} FROM classes c ORDER BY c.id")


async def list_owned(db: Database, owner_id: int) -> list[Row]:
    return await db.fetchall(f"SELECT {_CLASS_COLS} FROM classes c WHERE c.owner_id = ? ORDER BY c.id", (owner_id,))


async def list_joined(db: Database, user_id: int) -> list[Row]:
    return await db.fetchall(
        f"SELECT {_CLASS_COLS} FROM classes c JOIN class_members m ON m.class_id = c.id"
        " WHERE m.user_id = ? ORDER BY c.id",
        (user_id,),
    )


async def is_member(db: Database, class_id: int, user_id: int) -> bool:
    row = await db.fetchone("SELECT 1 FROM class_members WHERE class_id = ? AND user_id = ?", (class_id, user_id))
    return row is not None


async def add_members(db: Database, class_id: int, user_ids: list[int], *, by_code: bool = False) -> None:
    async with db.transaction() as conn:
        for user_id in user_ids:
            await conn.execute(
                "INSERT INTO class_members (class_id, user_id, added_at, joined_by_code) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (class_id, user_id)"
                " DO UPDATE SET joined_by_code = CASE WHEN excluded.joined_by_code > class_members.joined_by_code"
                " THEN excluded.joined_by_code ELSE class_members.joined_by_code END",
                (class_id, user_id, db_now(), int(by_code)),
            )


async def members(db: Database, class_id: int) -> list[Row]:
    return await db.fetchall(
        "SELECT u.id, u.username, u.role, m.added_at FROM class_members m JOIN users u ON u.id = m.user_id"
        " WHERE m.class_id = ? ORDER BY u.username",
        (class_id,),
    )


async def teacher_may_manage(db: Database, teacher_id: int, student_id: int) -> bool:
    """The teacher made this student's account, or the student joined one of their classes by its
    code. Being added by username proves nothing: any teacher could add anyone."""
    row = await db.fetchone(
        "SELECT 1 FROM users u WHERE u.id = ? AND (u.created_by = ? OR EXISTS (SELECT 1 FROM classes c"
        " JOIN class_members m ON m.class_id = c.id"
        " WHERE c.owner_id = ? AND m.user_id = u.id AND m.joined_by_code = 1))",
        (student_id, teacher_id, teacher_id),
    )
    return row is not None
