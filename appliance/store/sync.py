"""Sync's SQL, both sides (schema/0020_sync.sql explains the tables).

Classroom side: reads inside one snapshot (`Database.snapshot`) of what changed after a watermark.
Central side: registered appliance keys, and upserts of imported things into the `synced_*`
tables inside the import's one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from appliance.db import Conn, Database, IntegrityError, Row, placeholders

ENTITIES = ("user", "class", "problem", "submission")
_CHANGED = "SELECT local_id FROM sync_changes WHERE entity = ? AND seq > ?"
# Ids per DELETE: both engines cap the parameters of one statement (SQLite 32766, PostgreSQL 32767).
_DELETE_BATCH = 10_000


async def _all(conn: Conn, sql: str, params: Sequence[Any] = ()) -> list[Row]:
    return list(await conn.execute_fetchall(sql, params))


# --- classroom side: what a bundle carries --------------------------------------------------------


async def watermark(conn: Conn) -> int:
    rows = await _all(conn, "SELECT seq FROM sync_counter WHERE id = 1")
    return int(rows[0][0])


async def deleted(conn: Conn, entity: str, since: int) -> list[int]:
    """Things changed after `since` whose row is gone: the central instance drops its copy."""
    # A submission's id taken again by a run (ids of deleted rows can be reused) is gone too.
    live = {
        "user": "users t WHERE t.id = c.local_id",
        "class": "classes t WHERE t.id = c.local_id",
        "problem": "problems t WHERE t.id = c.local_id",
        "submission": "jobs t WHERE t.id = c.local_id AND t.kind = 'submission'",
    }[entity]
    rows = await _all(
        conn,
        "SELECT c.local_id FROM sync_changes c WHERE c.entity = ? AND c.seq > ?"
        f" AND NOT EXISTS (SELECT 1 FROM {live}) ORDER BY c.local_id",
        (entity, since),
    )
    return [int(row[0]) for row in rows]


async def users(conn: Conn, since: int) -> list[Row]:
    return await _all(
        conn, f"SELECT id, username, role, created_at FROM users WHERE id IN ({_CHANGED}) ORDER BY id", ("user", since)
    )


async def classes(conn: Conn, since: int) -> list[Row]:
    return await _all(
        conn,
        f"SELECT id, name, owner_id, created_at FROM classes WHERE id IN ({_CHANGED}) ORDER BY id",
        ("class", since),
    )


async def class_members(conn: Conn, since: int) -> list[Row]:
    return await _all(
        conn,
        f"SELECT class_id, user_id FROM class_members WHERE class_id IN ({_CHANGED}) ORDER BY class_id, user_id",
        ("class", since),
    )


async def problems(conn: Conn, since: int) -> list[Row]:
    return await _all(
        conn,
        "SELECT id, owner_id, title, statement, language, time_limit_ms, memory_limit_mb, comparison, tolerance,"
        " starter_code, hidden_feedback, graphical, created_at, updated_at"
        f" FROM problems WHERE id IN ({_CHANGED}) ORDER BY id",
        ("problem", since),
    )


async def problem_classes(conn: Conn, since: int) -> list[Row]:
    return await _all(
        conn,
        "SELECT problem_id, class_id, due_at, late_policy FROM problem_classes"
        f" WHERE problem_id IN ({_CHANGED}) ORDER BY problem_id, class_id",
        ("problem", since),
    )


async def test_cases(conn: Conn, since: int) -> list[Row]:
    return await _all(
        conn,
        "SELECT problem_id, position, name, stdin, expected_stdout, visibility, reveal_at, weight FROM test_cases"
        f" WHERE problem_id IN ({_CHANGED}) ORDER BY problem_id, position",
        ("problem", since),
    )


async def problem_assets(conn: Conn, since: int) -> list[Row]:
    return await _all(
        conn,
        "SELECT problem_id, name, kind, media_type, size, blob, in_workdir FROM problem_assets"
        f" WHERE problem_id IN ({_CHANGED}) ORDER BY problem_id, name",
        ("problem", since),
    )


async def submissions(conn: Conn, since: int) -> list[Row]:
    """Finished submissions, with the verdict and score that count: a published rejudge's, else
    their own (as the gradebook counts them). Queued and running ones come once judged (judging
    bumps their sequence again)."""
    return await _all(
        conn,
        "SELECT j.id, j.user_id, j.problem_id, j.language, j.code, j.status, j.late, j.created_at, j.finished_at,"
        " COALESCE(r.verdict, j.verdict) AS verdict, COALESCE(r.score, j.score) AS score"
        " FROM jobs j LEFT JOIN jobs r ON r.id = j.published_rejudge"
        f" WHERE j.kind = 'submission' AND j.status IN ('done', 'failed') AND j.id IN ({_CHANGED}) ORDER BY j.id",
        ("submission", since),
    )


# --- central side: registered appliances ----------------------------------------------------------


class AlreadyRegistered(Exception):
    """The name or the key is registered already."""


async def add_appliance(
    db: Database, name: str, public_key: str, fingerprint: str, appliance_id: str | None, at: str
) -> int:
    try:
        return await db.insert(
            "INSERT INTO sync_appliances (name, public_key, fingerprint, appliance_id, added_at)"
            " VALUES (?, ?, ?, ?, ?) RETURNING id",
            (name, public_key, fingerprint, appliance_id, at),
        )
    except IntegrityError:
        raise AlreadyRegistered from None


async def appliances(db: Database) -> list[Row]:
    return await db.fetchall(
        "SELECT name, fingerprint, appliance_id, added_at, last_generation, last_watermark, last_imported_at"
        " FROM sync_appliances ORDER BY name"
    )


async def appliance_by_key(conn: Conn, public_key: str) -> Row | None:
    rows = await _all(conn, "SELECT * FROM sync_appliances WHERE public_key = ?", (public_key,))
    return rows[0] if rows else None


async def key_of_appliance(conn: Conn, appliance_id: str) -> str | None:
    rows = await _all(conn, "SELECT public_key FROM sync_appliances WHERE appliance_id = ?", (appliance_id,))
    return str(rows[0][0]) if rows else None


async def record_import(
    conn: Conn,
    row_id: int,
    appliance_id: str,
    mark: tuple[int, int],
    bundle_sha256: str,
    at: str,
) -> None:
    """`mark`: the bundle's (generation, watermark)."""
    await conn.execute(
        "UPDATE sync_appliances SET appliance_id = ?, last_generation = ?, last_watermark = ?,"
        " last_bundle_sha256 = ?, last_imported_at = ? WHERE id = ?",
        (appliance_id, *mark, bundle_sha256, at, row_id),
    )


# --- central side: imported copies ----------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    name: str
    columns: tuple[str, ...]


_SYNCED = {
    "user": _Table("synced_users", ("role", "name")),
    "class": _Table("synced_classes", ("name", "owner_local_id")),
    "problem": _Table("synced_problems", ("title",)),
    "submission": _Table("synced_submissions", ("user_local_id", "problem_local_id", "verdict", "score")),
}


async def upsert(
    conn: Conn, entity: str, appliance_id: str, local_id: int, columns: dict[str, Any], record: str
) -> str:
    """Insert or update one imported thing: 'new', 'updated' or 'same' (then nothing is written)."""
    table = _SYNCED[entity]
    assert set(columns) == set(table.columns)
    rows = await _all(
        conn, f"SELECT record FROM {table.name} WHERE appliance_id = ? AND local_id = ?", (appliance_id, local_id)
    )
    if rows and rows[0][0] == record:
        return "same"
    names = ("appliance_id", "local_id", *table.columns, "record")
    updates = ", ".join(f"{c} = excluded.{c}" for c in (*table.columns, "record"))
    await conn.execute(
        f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        f" ON CONFLICT (appliance_id, local_id) DO UPDATE SET {updates}",
        (appliance_id, local_id, *(columns[c] for c in table.columns), record),
    )
    return "updated" if rows else "new"


async def delete(conn: Conn, entity: str, appliance_id: str, local_id: int) -> bool:
    cursor = await conn.execute(
        f"DELETE FROM {_SYNCED[entity].name} WHERE appliance_id = ? AND local_id = ?", (appliance_id, local_id)
    )
    return cursor.rowcount > 0


async def delete_others(conn: Conn, entity: str, appliance_id: str, keep: Sequence[int]) -> int:
    """After a full bundle: the appliance's copies it no longer holds go; returns how many."""
    table = _SYNCED[entity].name
    kept = set(keep)
    held = await _all(conn, f"SELECT local_id FROM {table} WHERE appliance_id = ? ORDER BY local_id", (appliance_id,))
    gone = [int(row[0]) for row in held if int(row[0]) not in kept]
    for start in range(0, len(gone), _DELETE_BATCH):
        batch = gone[start : start + _DELETE_BATCH]
        await conn.execute(
            f"DELETE FROM {table} WHERE appliance_id = ? AND local_id IN ({placeholders(batch)})",
            (appliance_id, *batch),
        )
    return len(gone)


async def replace_assets(
    conn: Conn, appliance_id: str, problem_local_id: int, assets: Sequence[tuple[str, str]]
) -> None:
    """A synced problem's (name, blob) assets become exactly `assets`."""
    await conn.execute(
        "DELETE FROM synced_problem_assets WHERE appliance_id = ? AND problem_local_id = ?",
        (appliance_id, problem_local_id),
    )
    await conn.executemany(
        "INSERT INTO synced_problem_assets (appliance_id, problem_local_id, name, blob) VALUES (?, ?, ?, ?)",
        [(appliance_id, problem_local_id, name, blob) for name, blob in assets],
    )
