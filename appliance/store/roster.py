"""Bulk roster changes: creating many students and enrolling them, all in one transaction."""

from __future__ import annotations

from appliance.clock import db_now
from appliance.db import Database, IntegrityError
from appliance.errors import Conflict
from appliance.store.portable import insert_id


async def import_students(
    db: Database,
    class_id: int,
    created_by: int,
    new_students: list[tuple[str, str, str | None]],
    existing_ids: list[int],
) -> list[int]:
    """Create `new_students` (username, password hash, birthdate) and enroll them and `existing_ids`.

    All or nothing: a username taken meanwhile rolls the whole import back. Returns the new ids.
    """
    stamp = db_now()
    created: list[int] = []
    try:
        async with db.transaction() as conn:
            for username, password_hash, birthdate in new_students:
                user_id = await insert_id(
                    conn,
                    "INSERT INTO users (username, password_hash, role, birthdate, created_by, created_at)"
                    " VALUES (?, ?, 'student', ?, ?, ?) RETURNING id",
                    (username, password_hash, birthdate, created_by, stamp),
                )
                created.append(user_id)
            for user_id in [*created, *existing_ids]:
                await conn.execute(
                    "INSERT INTO class_members (class_id, user_id, added_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    (class_id, user_id, stamp),
                )
    except IntegrityError as exc:
        raise Conflict("username_taken", "a username in the file was taken meanwhile; import the file again") from exc
    return created
