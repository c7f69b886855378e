"""Numbered SQL migrations from `schema/`, each applied once in its own transaction.

A checksum per applied migration catches an edited file; a database that knows a migration the
code does not is newer than the code and is refused rather than guessed at. A non-empty
database is copied aside before anything is applied, so a failed upgrade can be undone.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import schema

# The package's own folder: the checkout's schema/, the installed wheel's or the frozen binary's copy.
SCHEMA_DIR = Path(schema.__file__).resolve().parent
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(Exception):
    """The database and the code's migrations disagree; start-up must stop."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class MigrationState:
    migration: Migration
    applied_at: str | None


def discover(schema_dir: Path = SCHEMA_DIR) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(schema_dir.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path.read_text(encoding="utf-8")))
    if not found:
        # Else an install that lost its migrations would start on an empty database ("no such table").
        raise MigrationError(f"no migrations in {schema_dir}: this installation of Labrunner is incomplete")
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"migrations must be numbered 1..N without gaps, found {versions}")
    return found


def _ensure_table(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )


def _applied(conn: sqlite3.Connection) -> dict[int, tuple[str, str, str]]:
    _ensure_table(conn)
    rows = conn.execute("SELECT version, name, checksum, applied_at FROM schema_migrations").fetchall()
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


def _verify(applied: dict[int, tuple[str, str, str]], migrations: list[Migration]) -> None:
    known = {m.version: m for m in migrations}
    newer = sorted(v for v in applied if v not in known)
    if newer:
        raise MigrationError(
            f"the database has migration(s) {newer} that this version of Labrunner does not know: "
            "it was used by a newer version. Upgrade Labrunner or restore a matching backup."
        )
    for version, (name, checksum, _) in sorted(applied.items()):
        if known[version].checksum != checksum:
            raise MigrationError(
                f"migration {version:04d}_{name}.sql was edited after it was applied to this database "
                "(checksum differs). Restore the original file; add a new migration for changes."
            )


def status(db_path: Path, schema_dir: Path = SCHEMA_DIR) -> list[MigrationState]:
    migrations = discover(schema_dir)
    conn = sqlite3.connect(db_path)
    try:
        applied = _applied(conn)
    finally:
        conn.close()
    _verify(applied, migrations)
    return [MigrationState(m, applied[m.version][2] if m.version in applied else None) for m in migrations]


def migrate(
    db_path: Path, backup_dir: Path, schema_dir: Path = SCHEMA_DIR, *, target: int | None = None
) -> list[Migration]:
    """Apply pending migrations (up to `target`); return what was applied."""
    migrations = discover(schema_dir)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 5000")
        applied = _applied(conn)
        _verify(applied, migrations)
        pending = [m for m in migrations if m.version not in applied and (target is None or m.version <= target)]
        if not pending:
            return []
        if applied:
            _snapshot(conn, backup_dir, max(applied))
        for migration in pending:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
                    (migration.version, migration.name, migration.checksum, _now()),
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return pending
    finally:
        conn.close()


def _statements(sql: str) -> list[str]:
    """Split a script into statements; executescript would commit implicitly and break atomicity."""
    statements: list[str] = []
    buffer = ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(part.strip().startswith("--") or not part.strip() for part in buffer.splitlines()):
        raise MigrationError(f"incomplete SQL statement at end of migration: {buffer.strip()[:80]!r}")
    return statements


def _snapshot(conn: sqlite3.Connection, backup_dir: Path, version: int) -> Path:
    backup_dir.mkdir(parents=True, exist_ok=True)
    target = backup_dir / f"pre-migrate-v{version:04d}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.sqlite3"
    conn.execute("VACUUM INTO ?", (str(target),))
    return target


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
