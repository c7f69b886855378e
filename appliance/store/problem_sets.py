"""Problem sets' SQL (schema/0021_problem_sets.sql): the publisher's publications, the classroom's
trusted publishers, inbox and origin mapping, and reads of problems as a set carries them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from appliance.db import Conn, Database, IntegrityError, Row, placeholders
from appliance.store.problems import EDITABLE_FIELDS

Source = Database | Conn


async def _all(src: Source, sql: str, params: Sequence[Any] = ()) -> list[Row]:
    if isinstance(src, Database):
        return await src.fetchall(sql, params)
    return list(await src.execute_fetchall(sql, params))


async def _one(src: Source, sql: str, params: Sequence[Any] = ()) -> Row | None:
    rows = await _all(src, sql, params)
    return rows[0] if rows else None


# --- problems as a set carries them (publisher side, and a local copy's content) ------------------


async def problems_by_id(src: Source, ids: Sequence[int]) -> list[Row]:
    return await _all(
        src,
        f"SELECT id, owner_id, {', '.join(EDITABLE_FIELDS)} FROM problems"
        f" WHERE id IN ({placeholders(ids)}) ORDER BY id",
        ids,
    )


async def tests_of(src: Source, ids: Sequence[int]) -> list[Row]:
    return await _all(
        src,
        "SELECT problem_id, position, name, stdin, expected_stdout, visibility, reveal_at, weight FROM test_cases"
        f" WHERE problem_id IN ({placeholders(ids)}) ORDER BY problem_id, position",
        ids,
    )


async def assets_of(src: Source, ids: Sequence[int]) -> list[Row]:
    return await _all(
        src,
        "SELECT id, problem_id, name, kind, media_type, size, blob, in_workdir FROM problem_assets"
        f" WHERE problem_id IN ({placeholders(ids)}) ORDER BY problem_id, name",
        ids,
    )


# --- publisher side -------------------------------------------------------------------------------


async def latest_version(conn: Conn, set_id: str) -> int:
    row = await _one(conn, "SELECT COALESCE(MAX(version), 0) FROM published_problem_sets WHERE set_id = ?", (set_id,))
    return int(row[0]) if row else 0


async def add_publication(conn: Conn, values: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO published_problem_sets (set_id, name, version, problem_ids, sha256, size, bundle_blob,"
        " published_at) VALUES (:set_id, :name, :version, :problem_ids, :sha256, :size, :bundle_blob, :published_at)",
        values,
    )


async def publications(db: Database) -> list[Row]:
    return await db.fetchall(
        "SELECT set_id, name, version, problem_ids, sha256, size, published_at FROM published_problem_sets"
        " ORDER BY name, version"
    )


async def offers(db: Database) -> list[Row]:
    """The latest publication of every set."""
    return await db.fetchall(
        "SELECT set_id, name, version, sha256, size, bundle_blob FROM published_problem_sets p"
        " WHERE version = (SELECT MAX(version) FROM published_problem_sets q WHERE q.set_id = p.set_id)"
        " ORDER BY name"
    )


async def offer(db: Database, set_id: str) -> Row | None:
    return await db.fetchone(
        "SELECT set_id, name, version, sha256, size, bundle_blob FROM published_problem_sets WHERE set_id = ?"
        " ORDER BY version DESC LIMIT 1",
        (set_id,),
    )


# --- classroom side: trusted publishers -----------------------------------------------------------


class AlreadyTrusted(Exception):
    """The name or the key is trusted already."""


async def add_publisher(db: Database, name: str, public_key: str, fingerprint: str, at: str) -> int:
    try:
        return await db.insert(
            "INSERT INTO trusted_publishers (name, public_key, fingerprint, added_at) VALUES (?, ?, ?, ?) RETURNING id",
            (name, public_key, fingerprint, at),
        )
    except IntegrityError:
        raise AlreadyTrusted from None


async def publishers(db: Database) -> list[Row]:
    return await db.fetchall(
        "SELECT t.name, t.fingerprint, t.added_at, COUNT(i.id) AS sets FROM trusted_publishers t"
        " LEFT JOIN problem_set_inbox i ON i.publisher_id = t.id GROUP BY t.id ORDER BY t.name"
    )


async def remove_publisher(db: Database, name: str) -> bool:
    """Untrusts the publisher; its sets leave the inbox (their bundle blobs become the purge's)."""
    return await db.execute_rowcount("DELETE FROM trusted_publishers WHERE name = ?", (name,)) > 0


async def publisher_by_key(src: Source, public_key: str) -> Row | None:
    return await _one(src, "SELECT * FROM trusted_publishers WHERE public_key = ?", (public_key,))


async def any_publisher(db: Database) -> bool:
    return await db.fetchone("SELECT 1 FROM trusted_publishers LIMIT 1") is not None


# --- classroom side: the inbox --------------------------------------------------------------------


async def inbox_entry(src: Source, publisher_id: int, set_id: str) -> Row | None:
    return await _one(
        src, "SELECT * FROM problem_set_inbox WHERE publisher_id = ? AND set_id = ?", (publisher_id, set_id)
    )


async def received_hashes(db: Database) -> set[str]:
    """The SHA-256 of every bundle in the inbox: a fetch skips an offer it names (the very bundle)."""
    return {str(row[0]) for row in await db.fetchall("SELECT sha256 FROM problem_set_inbox")}


async def put_inbox(conn: Conn, values: dict[str, Any]) -> int:
    """Stores a received set, replacing the older version of it; returns the entry's id."""
    cursor = await conn.execute(
        "INSERT INTO problem_set_inbox (publisher_id, set_id, name, version, sha256, size, bundle_blob, problems,"
        " received_at) VALUES (:publisher_id, :set_id, :name, :version, :sha256, :size, :bundle_blob, :problems,"
        " :received_at) ON CONFLICT (publisher_id, set_id) DO UPDATE SET name = excluded.name,"
        " version = excluded.version, sha256 = excluded.sha256, size = excluded.size,"
        " bundle_blob = excluded.bundle_blob, problems = excluded.problems, received_at = excluded.received_at"
        " RETURNING id",
        values,
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def remove_inbox(conn: Conn, inbox_id: int) -> str | None:
    """Removes an inbox entry; the blob of its bundle, or None when there was none."""
    cursor = await conn.execute("DELETE FROM problem_set_inbox WHERE id = ? RETURNING bundle_blob", (inbox_id,))
    row = await cursor.fetchone()
    return None if row is None else str(row[0])


_INBOX_COLUMNS = (
    "i.id, i.set_id, i.name, i.version, i.sha256, i.size, i.problems, i.received_at, i.bundle_blob,"
    " t.name AS publisher, t.fingerprint, t.public_key"
)


async def inbox(db: Database) -> list[Row]:
    return await db.fetchall(
        f"SELECT {_INBOX_COLUMNS} FROM problem_set_inbox i JOIN trusted_publishers t ON t.id = i.publisher_id"
        " ORDER BY i.received_at DESC, i.id DESC"
    )


async def inbox_get(db: Database, inbox_id: int) -> Row | None:
    return await db.fetchone(
        f"SELECT {_INBOX_COLUMNS} FROM problem_set_inbox i JOIN trusted_publishers t ON t.id = i.publisher_id"
        " WHERE i.id = ?",
        (inbox_id,),
    )


# --- classroom side: where imported problems came from ---------------------------------------------


async def origins_of_owner(src: Source, owner_id: int, public_key: str, set_id: str) -> list[Row]:
    """The owner's copies of a set's problems that still exist."""
    return await _all(
        src,
        "SELECT o.problem_id, o.origin_problem_id, o.version, o.content_sha256 FROM problem_origins o"
        " JOIN problems p ON p.id = o.problem_id WHERE o.owner_id = ? AND o.publisher_key = ? AND o.set_id = ?",
        (owner_id, public_key, set_id),
    )


async def origins_for_owner(db: Database, owner_id: int) -> list[Row]:
    return await db.fetchall(
        "SELECT problem_id, publisher_key, set_id, origin_problem_id, version FROM problem_origins WHERE owner_id = ?",
        (owner_id,),
    )


async def set_origin(conn: Conn, values: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO problem_origins (problem_id, owner_id, publisher_key, set_id, origin_problem_id, version,"
        " content_sha256, imported_at) VALUES (:problem_id, :owner_id, :publisher_key, :set_id, :origin_problem_id,"
        " :version, :content_sha256, :imported_at) ON CONFLICT (problem_id) DO UPDATE SET version = excluded.version,"
        " content_sha256 = excluded.content_sha256, imported_at = excluded.imported_at",
        values,
    )


async def add_classes(conn: Conn, problem_id: int, class_ids: Sequence[int]) -> None:
    """Links more classes; those linked already keep their due dates."""
    await conn.executemany(
        "INSERT INTO problem_classes (problem_id, class_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
        [(problem_id, class_id) for class_id in class_ids],
    )


async def replace_assets(
    conn: Conn, problem_id: int, assets: Sequence[dict[str, Any]], uploaded_by: int, at: str
) -> list[str]:
    """The problem's assets become exactly `assets`; returns the blobs of those that went."""
    cursor = await conn.execute("DELETE FROM problem_assets WHERE problem_id = ? RETURNING blob", (problem_id,))
    gone = [str(row[0]) for row in await cursor.fetchall()]
    await conn.executemany(
        "INSERT INTO problem_assets (problem_id, name, kind, media_type, size, blob, in_workdir, uploaded_by,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                problem_id,
                a["name"],
                a["kind"],
                a["media_type"],
                a["size"],
                a["sha256"],
                int(a["in_workdir"]),
                uploaded_by,
                at,
            )
            for a in assets
        ],
    )
    return gone
