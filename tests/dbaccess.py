"""Synchronous access to a test server's database, on SQLite or PostgreSQL alike.

Tests look at (and sometimes set up) stored rows directly; going through here lets one test run on
both engines. SQL uses `?` placeholders as the store does; on PostgreSQL they become psycopg's `%s`.

- ``query(target, sql, params=()) -> list[tuple]``: the rows of one statement.
- ``execute(target, sql, params=())``: one statement, committed (foreign keys on, as in the server);
  the rows a `RETURNING` gives.
- ``tables(target)``, ``columns(target, table)``: table names (sorted), a table's column names (in order).
- ``dump_db(target, exclude=()) -> {table: rows}``: every row of every table, tables by name and rows
  in a stable order, for before/after comparisons.

`target` is the server's `Settings` (its database, whichever engine), or a SQLite file's Path.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from appliance.db import is_postgresql
from appliance.settings import Settings

Target = Settings | Path | str
Rows = list[tuple[Any, ...]]


def _location(target: Target) -> Path | str:
    return target.database_location if isinstance(target, Settings) else target


def to_psycopg(text: str) -> str:
    """`?` placeholders outside quotes become `%s`; a literal `%` becomes `%%` (psycopg reads both)."""
    out: list[str] = []
    quote: str | None = None
    for char in text:
        if char == "%":
            out.append("%%")
        elif quote is not None:
            out.append(char)
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
            out.append(char)
        elif char == "?":
            out.append("%s")
        else:
            out.append(char)
    return "".join(out)


@contextmanager
def _sqlite(path: Path, *, writable: bool) -> Iterator[sqlite3.Connection]:
    # Read-only unless writing, so a look at the data can never change the file.
    conn = sqlite3.connect(path) if writable else sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    if writable:
        conn.execute("PRAGMA foreign_keys = ON")
    try:
        yield conn
        conn.commit()
    finally:
        conn.close()


def _run(target: Target, sql: str, params: Sequence[Any], *, writable: bool) -> Rows:
    location = _location(target)
    if is_postgresql(location):
        import psycopg

        with psycopg.connect(str(location), autocommit=True) as conn:
            cursor = conn.execute(to_psycopg(sql), tuple(params))
            return [tuple(row) for row in cursor.fetchall()] if cursor.description else []
    with _sqlite(Path(location), writable=writable) as conn:
        return conn.execute(sql, tuple(params)).fetchall()


def query(target: Target, sql: str, params: Sequence[Any] = ()) -> Rows:
    """The rows `sql` returns, as tuples."""
    return _run(target, sql, params, writable=False)


def execute(target: Target, sql: str, params: Sequence[Any] = ()) -> Rows:
    """Run one statement and commit it; the rows it returns (`RETURNING`), if any."""
    return _run(target, sql, params, writable=True)


def columns(target: Target, table: str) -> list[str]:
    """`table`'s column names, in their order."""
    location = _location(target)
    select = f'SELECT * FROM "{table}" WHERE 1 = 0'
    if is_postgresql(location):
        import psycopg

        with psycopg.connect(str(location), autocommit=True) as conn:
            return [column.name for column in conn.execute(select).description or ()]
    with _sqlite(Path(location), writable=False) as conn:
        return [column[0] for column in conn.execute(select).description]


def tables(target: Target) -> list[str]:
    """The database's own tables (not the engine's), by name."""
    location = _location(target)
    rows = query(location, _TABLES["postgresql" if is_postgresql(location) else "sqlite"])
    return sorted(name for (name,) in rows if not name.startswith("sqlite_"))


_TABLES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table'",
    "postgresql": "SELECT table_name FROM information_schema.tables"
    " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
}


def _dump(conn: Any, tables_sql: str, exclude: Sequence[str]) -> dict[str, Rows]:
    names = sorted(name for (name,) in conn.execute(tables_sql) if not name.startswith("sqlite_"))
    return {
        name: sorted(map(tuple, conn.execute(f'SELECT * FROM "{name}"')), key=repr)
        for name in names
        if name not in exclude
    }


def dump_db(target: Target, *, exclude: Sequence[str] = ()) -> dict[str, Rows]:
    """All rows of all tables but `exclude` (tables by name, rows sorted by their repr), read in one
    snapshot on PostgreSQL."""
    location = _location(target)
    if is_postgresql(location):
        import psycopg

        with psycopg.connect(str(location)) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            with conn.transaction():
                return _dump(conn, _TABLES["postgresql"], exclude)
    with _sqlite(Path(location), writable=False) as conn:
        return _dump(conn, _TABLES["sqlite"], exclude)
