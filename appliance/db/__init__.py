"""The database connection, on SQLite (a file in the data folder, the default) or PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from appliance.db.base import (
    Conn,
    Cursor,
    Database,
    Dialect,
    IntegrityError,
    MissingTable,
    Params,
    Row,
    UnstorableText,
    placeholders,
)
from appliance.db.sqlite import SqliteDatabase

__all__ = [
    "Conn",
    "Cursor",
    "Database",
    "Dialect",
    "IntegrityError",
    "Location",
    "MissingTable",
    "Params",
    "Row",
    "SqliteDatabase",
    "UnstorableText",
    "database_lock",
    "dialect_of",
    "is_postgresql",
    "open_database",
    "placeholders",
]

Location = Path | str


def is_postgresql(location: Location) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def dialect_of(src: Database | Conn) -> Dialect:
    """The engine behind a database or one of its connections, for the few queries with no text
    both engines accept."""
    return src.dialect if isinstance(src, Database) else getattr(src, "dialect", "sqlite")


@asynccontextmanager
async def database_lock(location: Location, *, exclusive: bool) -> AsyncIterator[bool]:
    """Whether this process may serve (shared) or replace (exclusive) the data at `location`, held
    inside. PostgreSQL: an advisory lock, since servers with other data folders may share the
    database. SQLite: always True, the data folder's own lock file (data_locks) says it."""
    if not is_postgresql(location):
        yield True
        return
    from appliance.db.postgres import serving_lock

    async with serving_lock(str(location), exclusive=exclusive) as held:
        yield held


def open_database(location: Location) -> Database:
    """An unopened database: a SQLite file at a path, or PostgreSQL at a `postgresql://` URL."""
    if is_postgresql(location):
        from appliance.db.postgres import PgDatabase

        return PgDatabase(str(location))
    return SqliteDatabase(Path(location))
