"""Uploaded files, problem assets, the files of each job, and which blobs rows still use.

Functions that must see the state a write transaction is about to change take `src`, which is
either the Database (reads on a reader connection) or the transaction's own connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from appliance.clock import db_epoch, db_now
from appliance.db import Conn, Database, Row, dialect_of, placeholders
from appliance.store.portable import insert_id

Source = Database | Conn

# A file some stored submission (or rejudge) uses is kept as long as that submission: it neither
# expires nor disappears when its owner deletes it. Runs snapshot the blob and pin nothing.
PINNED = (
    "EXISTS (SELECT 1 FROM job_files jf JOIN jobs j ON j.id = jf.job_id WHERE jf.file_id = f.id AND j.kind != 'run')"
)
# What its owner still has: not deleted, and not expired unless a submission keeps it.
_ALIVE = f"f.deleted_at IS NULL AND (f.expires_at > ? OR {PINNED})"
FILE_COLUMNS = (
    "f.id, f.owner_id, f.name, f.kind, f.media_type, f.size, f.blob, f.created_at, f.expires_at, f.deleted_at,"
    f" {PINNED} AS pinned"
)
ASSET_COLUMNS = "id, problem_id, name, kind, media_type, size, blob, in_workdir, uploaded_by, created_at"


async def _all(src: Source, sql: str, params: Sequence[Any] = ()) -> list[Row]:
    if isinstance(src, Database):
        return await src.fetchall(sql, params)
    cursor = await src.execute(sql, params)
    rows = await cursor.fetchall()
    await cursor.close()
    return list(rows)


async def _one(src: Source, sql: str, params: Sequence[Any] = ()) -> Row | None:
    rows = await _all(src, sql, params)
    return rows[0] if rows else None


# --- user files --------------------------------------------------------------------------------


async def get(src: Source, file_id: str) -> Row | None:
    return await _one(src, f"SELECT {FILE_COLUMNS} FROM files f WHERE f.id = ?", (file_id,))


async def alive_of(db: Database, owner_id: int, now: float) -> list[Row]:
    return await db.fetchall(
        f"SELECT {FILE_COLUMNS} FROM files f WHERE f.owner_id = ? AND {_ALIVE} ORDER BY f.name, f.id",
        (owner_id, db_epoch(now)),
    )


async def alive_named(src: Source, owner_id: int, names: Sequence[str], now: float) -> list[Row]:
    if not names:
        return []
    return await _all(
        src,
        f"SELECT {FILE_COLUMNS} FROM files f WHERE f.owner_id = ? AND f.name IN ({placeholders(names)}) AND {_ALIVE}",
        (owner_id, *names, db_epoch(now)),
    )


async def usage(src: Source, owner_id: int, now: float) -> tuple[int, int]:
    """(count, bytes) of the files an owner still has: what the quota counts."""
    row = await _one(
        src,
        f"SELECT COUNT(*), COALESCE(SUM(f.size), 0) FROM files f WHERE f.owner_id = ? AND {_ALIVE}",
        (owner_id, db_epoch(now)),
    )
    assert row is not None
    return int(row[0]), int(row[1])


async def insert(conn: Conn, values: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO files (id, owner_id, name, kind, media_type, size, blob, created_at, expires_at)"
        " VALUES (:id, :owner_id, :name, :kind, :media_type, :size, :blob, :created_at, :expires_at)",
        {**values, "created_at": db_epoch(values["created_at"]), "expires_at": db_epoch(values["expires_at"])},
    )


async def extend_expiry(conn: Conn, file_id: str, expires_at: float) -> None:
    later = db_epoch(expires_at)
    await conn.execute(
        "UPDATE files SET expires_at = CASE WHEN expires_at > ? THEN expires_at ELSE ? END WHERE id = ?",
        (later, later, file_id),
    )


async def is_pinned(src: Source, file_id: str) -> bool:
    return await _one(src, f"SELECT 1 FROM files f WHERE f.id = ? AND {PINNED}", (file_id,)) is not None


async def remove(conn: Conn, file_id: str, now: float) -> str | None:
    """Delete a file for its owner. Returns its blob if the row went, None if a submission keeps it."""
    if await is_pinned(conn, file_id):
        await conn.execute(
            "UPDATE files SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL", (db_epoch(now), file_id)
        )
        return None
    cursor = await conn.execute("DELETE FROM files WHERE id = ? RETURNING blob", (file_id,))
    row = await cursor.fetchone()
    await cursor.close()
    return None if row is None else str(row[0])


async def teacher_can_read(db: Database, file_id: str, teacher_id: int) -> bool:
    """The file is attached to a submission to the teacher's problem, or by a student of their class."""
    row = await db.fetchone(
        "SELECT 1 FROM job_files jf JOIN jobs j ON j.id = jf.job_id JOIN problems p ON p.id = j.problem_id"
        " WHERE jf.file_id = ? AND j.kind != 'run' AND (p.owner_id = ? OR EXISTS ("
        "  SELECT 1 FROM problem_classes pc JOIN classes c ON c.id = pc.class_id"
        "  JOIN class_members m ON m.class_id = c.id"
        "  WHERE pc.problem_id = p.id AND c.owner_id = ? AND m.user_id = j.user_id))"
        " LIMIT 1",
        (file_id, teacher_id, teacher_id),
    )
    return row is not None


async def delete_expired(conn: Conn, now: float, limit: int) -> list[str]:
    """One batch of expired or deleted files no submission keeps; returns their blobs."""
    cursor = await conn.execute(
        "DELETE FROM files WHERE id IN (SELECT f.id FROM files f"
        f" WHERE (f.deleted_at IS NOT NULL OR f.expires_at <= ?) AND NOT {PINNED} LIMIT ?) RETURNING blob",
        (db_epoch(now), limit),
    )
    rows = await cursor.fetchall()
    await cursor.close()
    return [str(row[0]) for row in rows]


# --- files of jobs -------------------------------------------------------------------------------


async def attach_to_job(conn: Conn, job_id: int, owner_id: int, file_ids: Sequence[str]) -> int | None:
    """Snapshot the owner's files into the job, inside the enqueue transaction.

    Returns the index of the first file that is no longer there (deleted or purged since it was
    checked), attaching none, so the caller can refuse the job; None when all were attached.
    """
    if not file_ids:
        return None
    cursor = await conn.execute(
        f"SELECT id FROM files WHERE id IN ({placeholders(file_ids)}) AND owner_id = ? AND deleted_at IS NULL",
        (*file_ids, owner_id),
    )
    present = {row[0] for row in await cursor.fetchall()}
    missing = next((index for index, file_id in enumerate(file_ids) if file_id not in present), None)
    if missing is not None:
        return missing
    await conn.executemany(
        "INSERT INTO job_files (job_id, position, file_id, name, size, blob)"
        " SELECT CAST(? AS BIGINT), CAST(? AS BIGINT), id, name, size, blob FROM files WHERE id = ?",
        [(job_id, position, file_id) for position, file_id in enumerate(file_ids, start=1)],
    )
    return None


async def files_of_job(db: Database, job_id: int) -> list[Row]:
    return await db.fetchall(
        "SELECT position, file_id, name, size, blob FROM job_files WHERE job_id = ? ORDER BY position", (job_id,)
    )


async def job_inputs(db: Database, job_id: int) -> list[Row]:
    """What a job's working directory starts with: its own files (a rejudge: its submission's)."""
    return await db.fetchall(
        "SELECT name, blob FROM job_files"
        " WHERE job_id = COALESCE((SELECT rejudge_of FROM jobs WHERE id = ?), ?) ORDER BY position",
        (job_id, job_id),
    )


# --- problem assets ------------------------------------------------------------------------------


async def assets_of(db: Database, problem_id: int) -> list[Row]:
    return await db.fetchall(
        f"SELECT {ASSET_COLUMNS} FROM problem_assets WHERE problem_id = ? ORDER BY name", (problem_id,)
    )


async def workdir_assets(src: Source, problem_id: int) -> list[Row]:
    return await _all(
        src,
        f"SELECT {ASSET_COLUMNS} FROM problem_assets WHERE problem_id = ? AND in_workdir = 1 ORDER BY name",
        (problem_id,),
    )


async def asset(src: Source, problem_id: int, asset_id: int) -> Row | None:
    return await _one(
        src, f"SELECT {ASSET_COLUMNS} FROM problem_assets WHERE problem_id = ? AND id = ?", (problem_id, asset_id)
    )


async def asset_named(src: Source, problem_id: int, name: str) -> Row | None:
    return await _one(
        src, f"SELECT {ASSET_COLUMNS} FROM problem_assets WHERE problem_id = ? AND name = ?", (problem_id, name)
    )


async def asset_count(src: Source, problem_id: int) -> int:
    row = await _one(src, "SELECT COUNT(*) FROM problem_assets WHERE problem_id = ?", (problem_id,))
    return 0 if row is None else int(row[0])


async def asset_by_content(db: Database, digest: str, name: str) -> Row | None:
    """An asset with this content and name, from any problem: what a content-hashed URL names."""
    return await db.fetchone(
        f"SELECT {ASSET_COLUMNS} FROM problem_assets WHERE blob = ? AND name = ? LIMIT 1", (digest, name)
    )


async def insert_asset(conn: Conn, values: dict[str, Any]) -> int:
    return await insert_id(
        conn,
        "INSERT INTO problem_assets (problem_id, name, kind, media_type, size, blob, in_workdir, uploaded_by,"
        " created_at) VALUES (:problem_id, :name, :kind, :media_type, :size, :blob, :in_workdir, :uploaded_by,"
        " :created_at) RETURNING id",
        {**values, "created_at": db_now()},
    )


async def update_asset(conn: Conn, asset_id: int, values: dict[str, Any]) -> None:
    await conn.execute(
        "UPDATE problem_assets SET kind = :kind, media_type = :media_type, size = :size, blob = :blob,"
        " in_workdir = :in_workdir, uploaded_by = :uploaded_by, created_at = :created_at WHERE id = :id",
        {**values, "id": asset_id, "created_at": db_now()},
    )


async def delete_asset(conn: Conn, asset_id: int) -> None:
    await conn.execute("DELETE FROM problem_assets WHERE id = ?", (asset_id,))


# --- blob references -----------------------------------------------------------------------------


async def blob_columns(src: Source) -> list[tuple[str, str]]:
    """Every (table, column) that holds blob hashes: columns named `blob` or ending in `_blob`.

    Found from the live schema rather than listed here, so a table another part of the appliance
    adds later is respected by the purge without anyone remembering to register it.
    """
    # The catalogues are each engine's own: no common text.
    if dialect_of(src) == "postgresql":
        sql = (
            "SELECT c.table_name, c.column_name FROM information_schema.columns c"
            " JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name"
            " WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'"
            " AND (c.column_name = 'blob' OR right(c.column_name, 5) = '_blob') ORDER BY 1, 2"
        )
    else:
        sql = (
            "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p"
            " WHERE m.type = 'table' AND (p.name = 'blob' OR substr(p.name, -5) = '_blob') ORDER BY m.name, p.name"
        )
    rows = await _all(src, sql)
    return [(str(row[0]), str(row[1])) for row in rows]


async def referenced_blobs(src: Source, digests: Sequence[str]) -> set[str]:
    """Which of `digests` some row anywhere still uses."""
    wanted = sorted(set(digests))
    if not wanted:
        return set()
    found: set[str] = set()
    for table, column in await blob_columns(src):
        rows = await _all(
            src, f'SELECT DISTINCT "{column}" FROM "{table}" WHERE "{column}" IN ({placeholders(wanted)})', wanted
        )
        found.update(str(row[0]) for row in rows)
    return found
