from __future__ import annotations

import sqlite3

from appliance.clock import db_now
from appliance.db import Database, Row
from appliance.errors import Conflict

USER_COLUMNS = "id, username, role, birthdate, created_by, created_at, disabled"


async def create(
    db: Database,
    *,
    username: str,
    password_hash: str,
    role: str,
    birthdate: str | None,
    created_by: int | None,
    acceptances: dict[str, str] | None = None,
) -> int:
    """Create the user and record the legal versions they accepted, together or not at all."""
    try:
        async with db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO users (username, password_hash, role, birthdate, created_by, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (username, password_hash, role, birthdate, created_by, db_now()),
            )
            user_id = int(cursor.lastrowid or 0)
            for kind, version in (acceptances or {}).items():
                await conn.execute(
                    "INSERT INTO legal_acceptances (user_id, kind, version, accepted_at) VALUES (?, ?, ?, ?)",
                    (user_id, kind, version, db_now()),
                )
            return user_id
    except sqlite3.IntegrityError as exc:
        raise Conflict("username_taken", f"the username {username!r} is already taken", field="username") from exc


async def get(db: Database, user_id: int) -> Row | None:
    return await db.fetchone(f"SELECT {USER_COLUMNS} FROM users WHERE id = ?", (user_id,))


async def get_with_hash(db: Database, username: str) -> Row | None:
    return await db.fetchone(f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = ?", (username,))


async def set_password_hash(db: Database, user_id: int, password_hash: str) -> None:
    await db.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))


async def count(db: Database) -> int:
    return int(await db.fetchval("SELECT COUNT(*) FROM users"))
