"""Quota overrides per student and per class (table limit_overrides, schema 0017)."""

from __future__ import annotations

from collections.abc import Mapping

from appliance.clock import db_now
from appliance.db import Database, Row

_COLS = "o.id, o.user_id, o.class_id, o.name, o.value, o.until, o.set_by, o.set_at"
_IN_FORCE = "(o.until IS NULL OR o.until > :now)"


async def in_force_for_student(db: Database, user_id: int) -> list[Row]:
    """The overrides that apply to a student now: their own (`scope` 'user'), and those of their
    classes (`scope` 'class') whose teacher may manage them: they joined by its code or the
    teacher made their account. A teacher adding someone else's student by username gains no
    say over that student's limits, as for their data (see `teacher_may_manage`)."""
    return await db.fetchall(
        f"SELECT 'user' AS scope, o.name, o.value FROM limit_overrides o WHERE o.user_id = :user AND {_IN_FORCE}"
        " UNION ALL"
        " SELECT 'class' AS scope, o.name, o.value FROM limit_overrides o"
        " JOIN class_members m ON m.class_id = o.class_id AND m.user_id = :user"
        " JOIN classes c ON c.id = o.class_id JOIN users u ON u.id = m.user_id"
        f" WHERE {_IN_FORCE} AND (m.joined_by_code = 1 OR u.created_by = c.owner_id)",
        {"user": user_id, "now": db_now()},
    )


async def of_class(db: Database, class_id: int) -> list[Row]:
    """A class's overrides in force."""
    return await db.fetchall(
        f"SELECT {_COLS} FROM limit_overrides o WHERE o.class_id = :class AND {_IN_FORCE} ORDER BY o.name",
        {"class": class_id, "now": db_now()},
    )


async def of_user(db: Database, user_id: int) -> list[Row]:
    """A student's own overrides in force."""
    return await db.fetchall(
        f"SELECT {_COLS} FROM limit_overrides o WHERE o.user_id = :user AND {_IN_FORCE} ORDER BY o.name",
        {"user": user_id, "now": db_now()},
    )


async def all_in_force(db: Database) -> list[Row]:
    """Every override in force, with its student's or class's name (the admin's list)."""
    return await db.fetchall(
        f"SELECT {_COLS}, u.username, c.name AS class_name FROM limit_overrides o"
        " LEFT JOIN users u ON u.id = o.user_id LEFT JOIN classes c ON c.id = o.class_id"
        f" WHERE {_IN_FORCE} ORDER BY o.class_id IS NULL, o.class_id, o.user_id, o.name",
        {"now": db_now()},
    )


async def put(
    db: Database,
    *,
    user_id: int | None = None,
    class_id: int | None = None,
    changes: Mapping[str, int | None],
    until: str | None,
    set_by: int,
) -> None:
    """Set (a value) or remove (None) one student's or one class's overrides, all in one transaction."""
    assert (user_id is None) != (class_id is None)
    column = "user_id" if user_id is not None else "class_id"
    target = user_id if user_id is not None else class_id
    async with db.transaction() as conn:
        for name, value in changes.items():
            if value is None:
                await conn.execute(f"DELETE FROM limit_overrides WHERE {column} = ? AND name = ?", (target, name))
                continue
            await conn.execute(
                f"INSERT INTO limit_overrides ({column}, name, value, until, set_by, set_at) VALUES (?, ?, ?, ?, ?, ?)"
                f" ON CONFLICT ({column}, name) WHERE {column} IS NOT NULL DO UPDATE SET value = excluded.value,"
                " until = excluded.until, set_by = excluded.set_by, set_at = excluded.set_at",
                (target, name, value, until, set_by, db_now()),
            )
