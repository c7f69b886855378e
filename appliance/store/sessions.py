"""Server-side sessions and API tokens, stored only as hashes so a leaked database grants nothing."""

from __future__ import annotations

from datetime import timedelta

from appliance.clock import later_iso, now_iso
from appliance.db import Database, Row
from appliance.store.users import USER_COLUMNS

_USER_COLS = ", ".join(f"u.{c.strip()}" for c in USER_COLUMNS.split(","))


async def create_session(db: Database, id_hash: str, user_id: int, lifetime: timedelta) -> None:
    await db.execute(
        "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
        (id_hash, user_id, now_iso(), later_iso(lifetime)),
    )


async def user_for_session(db: Database, id_hash: str) -> Row | None:
    return await db.fetchone(
        f"SELECT {_USER_COLS} FROM sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.id_hash = ? AND s.expires_at > ? AND u.disabled = 0",
        (id_hash, now_iso()),
    )


async def delete_session(db: Database, id_hash: str) -> None:
    await db.execute("DELETE FROM sessions WHERE id_hash = ?", (id_hash,))


async def delete_user_sessions(db: Database, user_id: int) -> None:
    await db.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))


async def purge_expired_sessions(db: Database) -> int:
    return await db.execute_rowcount("DELETE FROM sessions WHERE expires_at <= ?", (now_iso(),))


async def create_token(db: Database, user_id: int, name: str, token_hash: str) -> int:
    return await db.execute(
        "INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES (?, ?, ?, ?)",
        (user_id, name, token_hash, now_iso()),
    )


async def user_for_token(db: Database, token_hash: str) -> Row | None:
    return await db.fetchone(
        f"SELECT {_USER_COLS} FROM api_tokens t JOIN users u ON u.id = t.user_id"
        " WHERE t.token_hash = ? AND t.revoked_at IS NULL AND u.disabled = 0",
        (token_hash,),
    )


async def revoke_user_tokens(db: Database, user_id: int) -> None:
    await db.execute(
        "UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL", (now_iso(), user_id)
    )
