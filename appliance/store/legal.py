from __future__ import annotations

from appliance.clock import db_now
from appliance.db import Database, IntegrityError, Row
from appliance.errors import Conflict


async def current(db: Database, kind: str) -> Row | None:
    return await db.fetchone(
        "SELECT kind, version, markdown, created_at FROM legal_documents WHERE kind = ? ORDER BY id DESC LIMIT 1",
        (kind,),
    )


async def publish(db: Database, kind: str, version: str, markdown: str, created_by: int | None) -> None:
    try:
        await db.execute(
            "INSERT INTO legal_documents (kind, version, markdown, created_at, created_by) VALUES (?, ?, ?, ?, ?)",
            (kind, version, markdown, db_now(), created_by),
        )
    except IntegrityError as exc:
        raise Conflict("version_exists", f"{kind} version {version!r} already exists", field="version") from exc


async def accept(db: Database, user_id: int, accepted: dict[str, str]) -> None:
    async with db.transaction() as conn:
        for kind, version in accepted.items():
            await conn.execute(
                "INSERT INTO legal_acceptances (user_id, kind, version, accepted_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (user_id, kind, version, db_now()),
            )


async def accepted_versions(db: Database, user_id: int) -> set[tuple[str, str]]:
    rows = await db.fetchall("SELECT kind, version FROM legal_acceptances WHERE user_id = ?", (user_id,))
    return {(row["kind"], row["version"]) for row in rows}
