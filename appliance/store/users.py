from __future__ import annotations

from appliance.clock import db_now
from appliance.db import Database, IntegrityError, Row
from appliance.errors import Conflict
from appliance.store.portable import insert_id

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
            user_id = await insert_id(
                conn,
                "INSERT INTO users (username, password_hash, role, birthdate, created_by, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (username, password_hash, role, birthdate, created_by, db_now()),
            )
            for kind, version in (acceptances or {}).items():
                await conn.execute(
                    "INSERT INTO legal_acceptances (user_id, kind, version, accepted_at) VALUES (?, ?, ?, ?)",
                    (user_id, kind, version, db_now()),
                )
            return user_id
    except IntegrityError as exc:
        raise Conflict("username_taken", f"the username {username!r} is already taken", field="username") from exc


async def get(db: Database, user_id: int) -> Row | None:
    return await db.fetchone(f"SELECT {USER_COLUMNS} FROM users WHERE id = ?", (user_id,))


async def by_username(db: Database, username: str) -> Row | None:
    return await db.fetchone(f"SELECT {USER_COLUMNS} FROM users WHERE username = ?", (username,))


async def get_with_hash(db: Database, username: str) -> Row | None:
    return await db.fetchone(f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = ?", (username,))


async def set_password_hash(db: Database, user_id: int, password_hash: str) -> None:
    await db.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))


async def count(db: Database) -> int:
    return int(await db.fetchval("SELECT COUNT(*) FROM users"))


# What the staff administration shows of a teacher or admin. The newest session still on record
# stands for the last login: sessions are kept until they expire (then purged), so an account
# with none is one whose last login is not known any more.
_STAFF = (
    "SELECT u.id, u.username, u.role, u.created_at, u.disabled,"
    " (SELECT MAX(s.created_at) FROM sessions s WHERE s.user_id = u.id) AS last_login_at"
    " FROM users u WHERE u.role IN ('teacher', 'admin')"
)


async def list_staff(db: Database, role: str | None) -> list[Row]:
    """Teachers and admins (or only those of `role`), admins first, then by name."""
    return await db.fetchall(
        f"{_STAFF} AND (CAST(? AS TEXT) IS NULL OR u.role = ?) ORDER BY u.role = 'teacher', lower(u.username)",
        (role, role),
    )


async def get_staff(db: Database, user_id: int) -> Row | None:
    return await db.fetchone(f"{_STAFF} AND u.id = ?", (user_id,))


async def disable_staff(db: Database, user_id: int) -> bool:
    """Disable a teacher or admin, ending their sessions and revoking their tokens in the same
    transaction. False (nothing changed) when it is the last enabled admin: the check is part of
    the UPDATE, so two admins disabling each other at once cannot both succeed."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "UPDATE users SET disabled = 1 WHERE id = ? AND role IN ('teacher', 'admin')"
            " AND (role != 'admin' OR EXISTS"
            " (SELECT 1 FROM users o WHERE o.role = 'admin' AND o.disabled = 0 AND o.id != users.id))",
            (user_id,),
        )
        if cursor.rowcount == 0:
            return False
        await conn.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))
        await conn.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL", (db_now(), user_id)
        )
        return True


async def enable_staff(db: Database, user_id: int) -> None:
    await db.execute("UPDATE users SET disabled = 0 WHERE id = ? AND role IN ('teacher', 'admin')", (user_id,))


async def replace_password(db: Database, user_id: int, password_hash: str, *, keep_session: str | None) -> None:
    """A new password, every session but `keep_session` (a session id hash) ended and every token
    revoked, together: whoever knew the old password may have logged in or made a token with it."""
    async with db.transaction() as conn:
        await conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))
        await conn.execute(
            "DELETE FROM sessions WHERE user_id = ? AND id_hash IS DISTINCT FROM ?", (user_id, keep_session)
        )
        await conn.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL", (db_now(), user_id)
        )
