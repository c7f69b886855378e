"""Database files as whole things: a consistent copy of the live database, and what a copy holds.

Plain sqlite3 on files (run in a thread by callers on the event loop): a backup copies with
`VACUUM INTO` on a connection of its own, which reads one snapshot in a single step and never
holds the writer (the online backup API would restart its page copy at every write).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

# What `copy_live` raises when the copy cannot be made (its message says "full" when the disk filled).
CopyFailed = sqlite3.OperationalError


def _connect_ro(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def copy_live(db_path: Path, target: Path) -> None:
    """A consistent copy of the database at `db_path` into the new file `target`."""
    conn = _connect_ro(db_path)
    try:
        conn.execute("VACUUM INTO ?", (str(target),))
    finally:
        conn.close()


def integrity_problems(path: Path) -> list[str]:
    """What `PRAGMA integrity_check` finds wrong (empty: the file is sound)."""
    try:
        conn = _connect_ro(path)
        try:
            rows = [row[0] for row in conn.execute("PRAGMA integrity_check").fetchall()]
            rows += [f"foreign key: {row}" for row in conn.execute("PRAGMA foreign_key_check").fetchall()]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    return [] if rows == ["ok"] else rows


def table_counts(path: Path) -> dict[str, int]:
    conn = _connect_ro(path)
    try:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        return {table: conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] for table in tables}
    finally:
        conn.close()


def schema_version(path: Path) -> int:
    """The highest migration applied to the database at `path` (0: none)."""
    conn = _connect_ro(path)
    try:
        return int(conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def referenced_blobs(path: Path) -> set[str]:
    """Every blob hash a row of the database at `path` names, in columns named `blob` or ending in
    `_blob` (the convention `store.files.blob_columns` reads too)."""
    conn = _connect_ro(path)
    try:
        columns = conn.execute(
            "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p"
            " WHERE m.type = 'table' AND (p.name = 'blob' OR substr(p.name, -5) = '_blob')"
        ).fetchall()
        found: set[str] = set()
        for table, column in columns:
            found |= {
                row[0]
                for row in conn.execute(f'SELECT DISTINCT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL')
            }
        return found
    finally:
        conn.close()
