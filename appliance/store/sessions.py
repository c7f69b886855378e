"""Server-side sessions and API tokens, stored only as hashes so a leaked database grants nothing."""

from __future__ import annotations

from datetime import timedelta

from appliance.clock import db_later, db_now
from appliance.db import Database, Row
from appliance.store.users import USER_COLUMNS

_USER_COLS = ", ".join(f"u.{c.strip()}" for c in USER_COLUMNS.split(","))


async def create_session(db: Database, id_hash: str, user_id: int, lifetime: timedelta) -> None:
    await db.execute(
        "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
        (id_hash, user_id, db_now(), db_later(lifetime)),
    )


async def create_session_if_password(
    db: Database, id_hash: str, user_id: int, lifetime: timedelta, password_hash: str
) -> bool:
    """A login's session, only if the account still has the password hash the login checked and
    is enabled: a reset (or a disable) committed while the password was being checked, which is
    slow on purpose, ended every session, and must end this one too. False: nothing created."""
    created = await db.execute_rowcount(
        "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) SELECT ?, ?, ?, ?"
        " WHERE EXISTS (SELECT 1 FROM users WHERE id = ? AND password_hash = ? AND disabled = 0)",
        (id_hash, user_id, db_now(), db_later(lifetime), user_id, password_hash),
    )
    return created == 1


async def user_for_session(db: Database, id_hash: str) -> Row | None:
    return await db.fetchone(
        f"SELECT {_USER_COLS} FROM sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.id_hash = ? AND s.expires_at > ? AND u.disabled = 0",
        (id_hash, db_now()),
    )


async def delete_session(db: Database, id_hash: str) -> None:
    await db.execute("DELETE FROM sessions WHERE id_hash = ?", (id_hash,))


async def delete_user_sessions(db: Database, user_id: int) -> None:
    await db.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))


async def purge_expired_sessions(db: Database) -> int:
    return await db.execute_rowcount("DELETE FROM sessions WHERE expires_at <= ?", (db_now(),))


_TOKEN_COLS = "id, name, created_at, last_used_at, expires_at"


async def create_token(db: Database, user_id: int, name: str, token_hash: str, expires_at: str) -> int:
    return await db.insert(
        "INSERT INTO api_tokens (user_id, name, token_hash, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?) RETURNING id",
        (user_id, name, token_hash, db_now(), expires_at),
    )


async def user_for_token(db: Database, token_hash: str) -> Row | None:
    """The user behind a live token, with the token's `token_id` and `token_last_used_at`."""
    return await db.fetchone(
        f"SELECT {_USER_COLS}, t.id AS token_id, t.last_used_at AS token_last_used_at"
        " FROM api_tokens t JOIN users u ON u.id = t.user_id"
        " WHERE t.token_hash = ? AND t.revoked_at IS NULL AND t.expires_at > ? AND u.disabled = 0",
        (token_hash, db_now()),
    )


async def touch_token(db: Database, token_id: int, when: str) -> None:
    await db.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (when, token_id))


async def get_token(db: Database, user_id: int, token_id: int) -> Row | None:
    return await db.fetchone(
        f"SELECT {_TOKEN_COLS} FROM api_tokens WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
        (token_id, user_id),
    )


async def list_tokens(db: Database, user_id: int) -> list[Row]:
    """One user's tokens not revoked (expired ones too, so their owner sees why a script stopped)."""
    return await db.fetchall(
        f"SELECT {_TOKEN_COLS} FROM api_tokens WHERE user_id = ? AND revoked_at IS NULL ORDER BY id",
        (user_id,),
    )


async def revoke_token(db: Database, user_id: int, token_id: int) -> bool:
    """Revoke one token of this user; False when there is no such live token of theirs."""
    changed = await db.execute_rowcount(
        "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
        (db_now(), token_id, user_id),
    )
    return changed > 0


async def revoke_user_tokens(db: Database, user_id: int) -> None:
    await db.execute(
        "UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL", (db_now(), user_id)
    )
