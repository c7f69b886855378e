"""One-time login and setup links (hashes only), and the first accounts a setup link creates."""

from __future__ import annotations

from datetime import timedelta

from appliance.clock import db_later, db_now
from appliance.db import Database, IntegrityError, Row
from appliance.errors import Conflict
from appliance.store.portable import insert_id
from appliance.store.users import USER_COLUMNS

# The appliance is set up once it has a teacher or an admin. Students do not count: anyone on the
# network can register one while the setup page waits for the person at the machine.
_STAFF_COUNT = "SELECT COUNT(*) FROM users WHERE role IN ('teacher', 'admin')"


async def create(db: Database, token_hash: str, purpose: str, user_id: int | None, lifetime: timedelta) -> None:
    # Links nobody used are worth nothing once expired: each new link clears them out.
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM login_links WHERE expires_at <= ?", (db_now(),))
        await conn.execute(
            "INSERT INTO login_links (token_hash, purpose, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            (token_hash, purpose, user_id, db_now(), db_later(lifetime)),
        )


async def consume(db: Database, token_hash: str) -> Row | None:
    """Mark the link used and return it as it was before (its `used_at` NULL unless used before);
    None for an unknown token. In one write transaction, so two requests cannot both find it unused;
    an unknown token (a guess, garbage) is answered from a read and never takes the writer."""
    if await get(db, token_hash) is None:
        return None
    async with db.transaction() as conn:
        cursor = await conn.execute("SELECT * FROM login_links WHERE token_hash = ?", (token_hash,))
        row = await cursor.fetchone()
        await cursor.close()
        if row is not None and row["used_at"] is None:
            await conn.execute("UPDATE login_links SET used_at = ? WHERE id = ?", (db_now(), row["id"]))
        return row


async def get(db: Database, token_hash: str) -> Row | None:
    return await db.fetchone("SELECT * FROM login_links WHERE token_hash = ?", (token_hash,))


async def desktop_user(db: Database, username: str | None) -> Row | None:
    """The account a login link is for: `username` if it is a teacher or admin, else the most
    recently created teacher (so also the only one). Disabled accounts never."""
    if username is not None:
        return await db.fetchone(
            f"SELECT {USER_COLUMNS} FROM users WHERE username = ? AND role IN ('teacher', 'admin') AND disabled = 0",
            (username,),
        )
    return await db.fetchone(
        f"SELECT {USER_COLUMNS} FROM users WHERE role = 'teacher' AND disabled = 0"
        " ORDER BY created_at DESC, id DESC LIMIT 1"
    )


async def desktop_user_by_id(db: Database, user_id: int) -> Row | None:
    """The account if it is still an enabled teacher or admin."""
    return await db.fetchone(
        f"SELECT {USER_COLUMNS} FROM users WHERE id = ? AND role IN ('teacher', 'admin') AND disabled = 0",
        (user_id,),
    )


async def create_first_accounts(
    db: Database,
    admin: tuple[str, str],
    teacher: tuple[str, str],
    acceptances: dict[str, str],
    token_hash: str,
) -> int | None:
    """Create the admin and the teacher (username, password hash) and mark the setup link used, all
    in one transaction that first checks no teacher or admin exists and the link is still unused;
    returns the teacher's id, or None (and changes nothing) when either check fails. Conflict
    (`username_taken`) when a student registered one of the names meanwhile."""
    try:
        async with db.transaction() as conn:
            cursor = await conn.execute(_STAFF_COUNT)
            row = await cursor.fetchone()
            await cursor.close()
            if row is None or row[0] != 0:
                return None
            cursor = await conn.execute(
                "UPDATE login_links SET used_at = ? WHERE token_hash = ? AND purpose = 'setup' AND used_at IS NULL",
                (db_now(), token_hash),
            )
            if cursor.rowcount != 1:
                return None
            ids = []
            for (username, password_hash), role in ((admin, "admin"), (teacher, "teacher")):
                ids.append(
                    await insert_id(
                        conn,
                        "INSERT INTO users (username, password_hash, role, birthdate, created_by, created_at)"
                        " VALUES (?, ?, ?, NULL, NULL, ?) RETURNING id",
                        (username, password_hash, role, db_now()),
                    )
                )
            # The teacher is the person at the machine: the texts they accepted on the setup page count.
            for kind, version in acceptances.items():
                await conn.execute(
                    "INSERT INTO legal_acceptances (user_id, kind, version, accepted_at) VALUES (?, ?, ?, ?)",
                    (ids[1], kind, version, db_now()),
                )
            return ids[1]
    except IntegrityError as exc:
        raise Conflict("username_taken", "one of these usernames was taken meanwhile: choose another") from exc


async def staff_count(db: Database) -> int:
    return int(await db.fetchval(_STAFF_COUNT))


async def username_taken(db: Database, username: str) -> bool:
    return await db.fetchone("SELECT 1 FROM users WHERE username = ?", (username,)) is not None
