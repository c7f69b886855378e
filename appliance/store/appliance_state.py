"""The appliance_state table: small switches (queue paused, maintenance message) kept across restarts."""

from __future__ import annotations

from appliance.clock import db_now
from appliance.db import Database


async def all_values(db: Database) -> dict[str, str]:
    return {row[0]: row[1] for row in await db.fetchall("SELECT key, value FROM appliance_state")}


async def put(db: Database, key: str, value: str, user_id: int | None) -> None:
    await db.execute(
        "INSERT INTO appliance_state (key, value, updated_at, updated_by) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at,"
        " updated_by = excluded.updated_by",
        (key, value, db_now(), user_id),
    )
