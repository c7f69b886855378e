"""Numbered SQL migrations from `schema/`, each applied once in its own transaction, to the
SQLite file or the PostgreSQL database (`postgresql://` URL) the settings name.

A checksum per applied migration catches an edited file; a database that knows a migration the
code does not is newer than the code and is refused rather than guessed at. On SQLite a non-empty
database is copied aside before anything is applied, so a failed upgrade can be undone.

PostgreSQL runs the same numbered history: version N is `schema/postgresql/NNNN_name.sql` when
that exists, else the shared file through schema_translation's type rules. Its checksum is that of
the text applied. Each migration is one transaction there, DDL included, so a failed one leaves
the database as it was; still, before a non-empty database is upgraded its tables are exported
(store/pg_snapshots.py's CSV form, the one backups use) into `backup_dir` as a plain tar,
pre-migrate-vNNNN-<time>.pgexport, so a migration that succeeds but turns out wrong can be undone.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import sqlite3
import tarfile
import tempfile
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import schema
from appliance.db import Dialect, Location, is_postgresql
from appliance.schema_translation import Untranslatable, to_postgresql

if TYPE_CHECKING:
    import asyncpg

# The package's own folder: the checkout's schema/, the installed wheel's or the frozen binary's copy.
SCHEMA_DIR = Path(schema.__file__).resolve().parent
# Inside a schema folder: the PostgreSQL forms of the migrations the type rules cannot translate.
POSTGRESQL_DIR = "postgresql"
_T = TypeVar("_T")
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Held (session-scoped) while one process migrates a PostgreSQL database: "LBRM" as a number.
MIGRATE_LOCK_KEY = 0x4C42524D
# Byte order, as SQLite compares text: names sort the same, and ISO time text compares in time order.
_BYTE_ORDER = ("C", "POSIX")
_SCHEMA_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)"
)


class MigrationError(Exception):
    """The database and the code's migrations disagree; start-up must stop."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def filename(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class MigrationState:
    migration: Migration
    applied_at: str | None


def discover(schema_dir: Path = SCHEMA_DIR, dialect: Dialect = "sqlite") -> list[Migration]:
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
    return _for_postgresql(schema_dir / POSTGRESQL_DIR, found) if dialect == "postgresql" else found


def _for_postgresql(variants_dir: Path, shared: list[Migration]) -> list[Migration]:
    variants = {path.name: path for path in sorted(variants_dir.glob("*.sql"))}
    stray = sorted(set(variants) - {m.filename for m in shared})
    if stray:
        raise MigrationError(
            f"{POSTGRESQL_DIR}/{stray[0]}: a PostgreSQL form of a migration needs the shared migration of the"
            f" same number and name in {variants_dir.parent}"
        )
    found: list[Migration] = []
    for migration in shared:
        if migration.filename in variants:
            sql = variants[migration.filename].read_text(encoding="utf-8")
        else:
            try:
                sql = to_postgresql(migration.sql)
            except Untranslatable as exc:
                raise MigrationError(
                    f"{migration.filename}: {exc}; write its PostgreSQL form as {POSTGRESQL_DIR}/{migration.filename}"
                ) from None
        found.append(Migration(migration.version, migration.name, sql))
    return found


def _ensure_table(conn: sqlite3.Connection) -> None:
    conn.execute(_SCHEMA_MIGRATIONS)


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


def status(location: Location, schema_dir: Path = SCHEMA_DIR) -> list[MigrationState]:
    if is_postgresql(location):
        migrations = discover(schema_dir, "postgresql")
        applied = _in_thread(_pg_status(str(location)))
    else:
        migrations = discover(schema_dir)
        conn = sqlite3.connect(location)
        try:
            applied = _applied(conn)
        finally:
            conn.close()
    _verify(applied, migrations)
    return [MigrationState(m, applied[m.version][2] if m.version in applied else None) for m in migrations]


def migrate(
    location: Location,
    backup_dir: Path,
    schema_dir: Path = SCHEMA_DIR,
    *,
    target: int | None = None,
    schema: str | None = None,
) -> list[Migration]:
    """Apply pending migrations (up to `target`); return what was applied. `location` is the
    SQLite file, or a `postgresql://` URL. A non-empty database is copied into `backup_dir` first.

    `schema` (PostgreSQL only): migrate the tables in that schema of the database instead of the
    application's own, as a restore does to the backup it loads beside the live data."""
    if is_postgresql(location):
        return _in_thread(_pg_migrate(str(location), discover(schema_dir, "postgresql"), target, schema, backup_dir))
    if schema is not None:
        raise ValueError("a SQLite database has no schemas: `schema` is for PostgreSQL")
    return _migrate_sqlite(Path(location), backup_dir, discover(schema_dir), target)


def _pending(applied: dict[int, Any], migrations: list[Migration], target: int | None) -> list[Migration]:
    return [m for m in migrations if m.version not in applied and (target is None or m.version <= target)]


def _migrate_sqlite(
    db_path: Path, backup_dir: Path, migrations: list[Migration], target: int | None
) -> list[Migration]:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 5000")
        applied = _applied(conn)
        _verify(applied, migrations)
        pending = _pending(applied, migrations, target)
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


def _in_thread(work: Coroutine[Any, Any, _T]) -> _T:
    """Run asyncpg work to its end from synchronous code, also when called inside a running event
    loop (the server migrates at start-up from its loop): in a loop of its own, on its own thread."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="migrate") as pool:
        return pool.submit(asyncio.run, work).result()


async def _pg_status(url: str) -> dict[int, tuple[str, str, str]]:
    import asyncpg  # only a PostgreSQL store pays for loading the driver

    conn = await asyncpg.connect(url)
    try:
        await _check_collation(conn)
        if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
            return {}
        return await _pg_applied(conn)
    finally:
        await conn.close()


async def _pg_migrate(
    url: str,
    migrations: list[Migration],
    target: int | None,
    schema: str | None = None,
    backup_dir: Path | None = None,
) -> list[Migration]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await _check_collation(conn)
        if schema is not None:
            # Unqualified names (the migrations use only those) now create and find that schema's
            # tables; types and extensions the database already has stay visible through public.
            await conn.execute(f"SET search_path = {_quote_ident(schema)}, public")
        # Two servers starting on one database: the second waits, then finds nothing pending.
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATE_LOCK_KEY)
        await conn.execute(to_postgresql(_SCHEMA_MIGRATIONS))
        applied = await _pg_applied(conn)
        _verify(applied, migrations)
        pending = _pending(applied, migrations, target)
        if applied and pending and schema is None and backup_dir is not None:
            await _pg_snapshot(url, backup_dir, max(applied))
        for migration in pending:
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                    _now(),
                )
        return pending
    finally:
        # Closing the session releases the advisory lock too.
        await conn.close()


async def _pg_applied(conn: asyncpg.Connection) -> dict[int, tuple[str, str, str]]:
    rows = await conn.fetch("SELECT version, name, checksum, applied_at FROM schema_migrations")
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


async def _check_collation(conn: asyncpg.Connection) -> None:
    row = await conn.fetchrow(
        "SELECT current_database() AS name, datcollate, datctype, to_jsonb(d) ->> 'datlocprovider' AS provider"
        " FROM pg_database AS d WHERE datname = current_database()"
    )
    assert row is not None  # the database we are connected to
    # With PostgreSQL 15's ICU provider ('i') datcollate is not what sorts; 'c' is the C library's.
    icu = row["provider"] == "i"
    if row["datcollate"] in _BYTE_ORDER and row["datctype"] in _BYTE_ORDER and not icu:
        return
    raise MigrationError(
        f"PostgreSQL database {row['name']!r} uses collation {row['datcollate']!r} (ctype {row['datctype']!r}"
        f"{', ICU' if icu else ''}); Labrunner needs the C collation: it sorts text in byte order as SQLite does,"
        " compares stored ISO times as text, and ignores only ASCII case in usernames. Create the database with:"
        f" CREATE DATABASE {row['name']} LC_COLLATE 'C' LC_CTYPE 'C'{' LOCALE_PROVIDER libc' if icu else ''}"
        " TEMPLATE template0"
    )


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


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


async def _pg_snapshot(url: str, backup_dir: Path, version: int) -> Path:
    """The tables as a backup exports them, in one tar: written under a temporary name and renamed,
    so a file of that name is always whole."""
    from appliance.store import pg_snapshots

    os.makedirs(backup_dir, exist_ok=True)  # this loop is the migration's own thread's: blocking is fine
    target = backup_dir / f"pre-migrate-v{version:04d}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.pgexport"
    with tempfile.TemporaryDirectory(prefix=".pre-migrate-", dir=backup_dir) as folder:
        exported = await pg_snapshots.export(url, Path(folder))
        partial = Path(folder) / target.name
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            for path in exported.files:
                tar.add(path, arcname=path.name)
        os.replace(partial, target)
    return target


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
