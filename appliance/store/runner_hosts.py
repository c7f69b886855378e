"""Registered runner hosts, which host ran a job, and the regions classes and users prefer."""

from __future__ import annotations

from appliance.db import Database, IntegrityError, Row


class AlreadyRegistered(Exception):
    """The name or the key is registered already."""


async def add(db: Database, name: str, public_key: str, fingerprint: str, at: str) -> None:
    try:
        await db.execute(
            "INSERT INTO runner_hosts (name, public_key, fingerprint, added_at) VALUES (?, ?, ?, ?)",
            (name, public_key, fingerprint, at),
        )
    except IntegrityError:
        raise AlreadyRegistered from None


async def remove(db: Database, name: str) -> bool:
    return await db.execute_rowcount("DELETE FROM runner_hosts WHERE name = ?", (name,)) == 1


async def listing(db: Database) -> list[Row]:
    return await db.fetchall(
        "SELECT h.name, h.fingerprint, h.added_at,"
        " (SELECT COUNT(*) FROM jobs j WHERE j.host = h.name) AS jobs_run"
        " FROM runner_hosts h ORDER BY h.name"
    )


async def keys(db: Database) -> dict[str, str]:
    return {str(row[0]): str(row[1]) for row in await db.fetchall("SELECT name, public_key FROM runner_hosts")}


async def set_class_region(db: Database, class_id: int, region: str | None) -> bool:
    return await db.execute_rowcount("UPDATE classes SET region = ? WHERE id = ?", (region, class_id)) == 1


async def set_user_region(db: Database, username: str, region: str | None) -> bool:
    return await db.execute_rowcount("UPDATE users SET region = ? WHERE username = ?", (region, username)) == 1
