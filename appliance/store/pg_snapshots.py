"""PostgreSQL databases as whole things, the twin of snapshots.py: a consistent export of the live
tables, loading an export into a schema of its own, and replacing the live rows with that schema's.

The export format: one CSV file per table (`COPY … TO STDOUT (FORMAT csv, HEADER)`, UTF-8, NULL
unquoted and empty text quoted, so the two stay apart) and an index, `tables.json`, holding the
tables in foreign-key order with their columns and row counts, the schema version and the blob
digests the rows name. CSV rather than COPY's binary format: it is PostgreSQL's text form of every
value, so it loads into any later server version, a DBA can read it with any tool, and the header
row lets the load check (HEADER MATCH) that each file still fits its table's columns. No pg_dump:
no external binary whose version must match the server.

All reads of one export run in one REPEATABLE READ READ ONLY transaction: the rows, counts,
version and blob digests are one moment of the data while the server's writers carry on.
Every function takes an asyncpg connection of its own (not the server's pool): a backup, restore
or drill runs beside the server, or from the command line with no server at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

INDEX = "tables.json"
EXPORT_VERSION = 1


class LoadFailed(Exception):
    """The export does not load into the schema (damaged data, or another table layout)."""


@dataclass(frozen=True)
class Export:
    schema_version: int
    tables: dict[str, int]
    blobs: list[str]
    # The files written, index first (the archive's member order).
    files: list[Path]


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def database_bytes(url: str) -> int:
    """The whole database's size on the server's disk."""
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT pg_database_size(current_database())"))
    finally:
        await conn.close()


async def current_schema(conn: asyncpg.Connection) -> str:
    return str(await conn.fetchval("SELECT current_schema()"))


async def tables_in_order(conn: asyncpg.Connection, schema: str) -> list[str]:
    """The schema's tables, each after the tables its foreign keys point at (a load in this order
    never meets a missing parent; a table's references to itself are checked per statement)."""
    names = [
        row[0]
        for row in await conn.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname",
            schema,
        )
    ]
    parents: dict[str, set[str]] = {name: set() for name in names}
    for row in await conn.fetch(
        "SELECT c.relname, p.relname FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
        " JOIN pg_class p ON p.oid = k.confrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE k.contype = 'f' AND n.nspname = $1",
        schema,
    ):
        if row[0] != row[1] and row[1] in parents:
            parents[row[0]].add(row[1])
    ordered: list[str] = []
    while parents:
        ready = sorted(name for name, needs in parents.items() if not needs - set(ordered))
        if not ready:
            raise LoadFailed(f"the tables' foreign keys form a cycle: {sorted(parents)}")
        ordered += ready
        for name in ready:
            del parents[name]
    return ordered


async def _columns(conn: asyncpg.Connection, schema: str, table: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        schema,
        table,
    )
    return [row[0] for row in rows]


async def _key(conn: asyncpg.Connection, schema: str, table: str) -> list[str]:
    """The primary key's columns (for a stable row order in the export); empty without one."""
    rows = await conn.fetch(
        "SELECT a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey)"
        " WHERE n.nspname = $1 AND c.relname = $2 AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
        schema,
        table,
    )
    return [row[0] for row in rows]


async def referenced_blobs(conn: asyncpg.Connection, schema: str) -> set[str]:
    """Every blob digest a row names, in columns named `blob` or ending in `_blob` (the convention
    store.files.blob_columns reads too)."""
    columns = await conn.fetch(
        "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped"
        " AND (a.attname = 'blob' OR right(a.attname, 5) = '_blob')",
        schema,
    )
    found: set[str] = set()
    for table, column in columns:
        target = f"{quote(schema)}.{quote(table)}"
        rows = await conn.fetch(f"SELECT DISTINCT {quote(column)} FROM {target} WHERE {quote(column)} IS NOT NULL")
        found |= {str(row[0]) for row in rows}
    return found


async def schema_version(conn: asyncpg.Connection, schema: str) -> int:
    table = f"{quote(schema)}.schema_migrations"
    if await conn.fetchval("SELECT to_regclass($1)", table) is None:
        return 0
    return int(await conn.fetchval(f"SELECT coalesce(max(version), 0) FROM {table}"))


async def row_counts(conn: asyncpg.Connection, schema: str) -> dict[str, int]:
    return {
        table: int(await conn.fetchval(f"SELECT count(*) FROM {quote(schema)}.{quote(table)}"))
        for table in await tables_in_order(conn, schema)
    }


async def export(url: str, folder: Path) -> Export:
    """Write every table of the application's schema into `folder` (new, empty), with the index,
    all from one snapshot of the data."""
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            schema = await current_schema(conn)
            index: list[dict[str, Any]] = []
            files = [folder / INDEX]
            for table in await tables_in_order(conn, schema):
                columns = await _columns(conn, schema, table)
                order = ", ".join(quote(c) for c in (await _key(conn, schema, table) or columns))
                path = folder / f"{table}.csv"
                status = await conn.copy_from_query(
                    f"SELECT * FROM {quote(schema)}.{quote(table)} ORDER BY {order}",
                    output=str(path),
                    format="csv",
                    header=True,
                    encoding="UTF8",
                )
                index.append({"name": table, "columns": columns, "rows": int(status.rsplit(" ", 1)[-1])})
                files.append(path)
            version = await schema_version(conn, schema)
            blobs = sorted(await referenced_blobs(conn, schema))
    finally:
        await conn.close()
    body = {"export_version": EXPORT_VERSION, "schema_version": version, "tables": index, "blobs": blobs}
    (folder / INDEX).write_text(json.dumps(body, indent=1, sort_keys=True), encoding="utf-8")
    return Export(version, {t["name"]: t["rows"] for t in index}, blobs, files)


def read_index(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LoadFailed(f"the export's index is not readable: {exc}") from None
    if not isinstance(data, dict) or data.get("export_version") != EXPORT_VERSION or not _well_formed(data):
        raise LoadFailed("the export's index is not one this version reads")
    return data


def _well_formed(index: dict[str, Any]) -> bool:
    """The index has the shape export() writes (a crafted archive's may not: its hashes prove nothing)."""

    def number(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    tables, blobs = index.get("tables"), index.get("blobs")
    return (
        number(index.get("schema_version"))
        and isinstance(blobs, list)
        and all(isinstance(b, str) for b in blobs)
        and isinstance(tables, list)
        and all(
            isinstance(t, dict)
            and isinstance(t.get("name"), str)
            and number(t.get("rows"))
            and isinstance(t.get("columns"), list)
            and all(isinstance(c, str) for c in t["columns"])
            for t in tables
        )
    )


async def create_schema(conn: asyncpg.Connection, schema: str) -> None:
    await conn.execute(f"CREATE SCHEMA {quote(schema)}")


async def work_in(conn: asyncpg.Connection, schema: str) -> None:
    """Unqualified names on `conn` now mean `schema`'s tables: also those the sync triggers'
    function names, which it looks up when it runs, so a trigger of a staging table never
    touches the live sync log."""
    await conn.execute(f"SET search_path = {quote(schema)}, public")


# Held (session-level) by the connection that stages an archive for as long as it works: a staging
# schema whose lock nobody holds was left by a process that died, and goes.
STAGING_LOCK = 0x4C425354


async def claim_staging(conn: asyncpg.Connection, schema: str) -> None:
    await conn.execute("SELECT pg_advisory_lock($1, hashtext($2))", STAGING_LOCK, schema)


async def sweep_staging(conn: asyncpg.Connection, prefix: str) -> list[str]:
    """Drop the staging schemas no live connection holds (a restore or drill killed midway)."""
    dropped = []
    names = await conn.fetch("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)", prefix)
    for (name,) in names:
        if await conn.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))", STAGING_LOCK, name):
            try:
                await drop_schema(conn, name)
                dropped.append(name)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", STAGING_LOCK, name)
    return dropped


async def exhausted_identities(conn: asyncpg.Connection, schema: str) -> list[str]:
    """`table.column` of every identity whose largest id leaves its counter nowhere to go: a
    restore could not set the counter past it, and nothing could be added after."""
    full = []
    for table, column in await conn.fetch(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = $1 AND is_identity = 'YES'",
        schema,
    ):
        target = f"{quote(schema)}.{quote(table)}"
        top = await conn.fetchval(
            f"SELECT max({quote(column)}) >= (SELECT max_value FROM pg_sequences"
            " WHERE format('%I.%I', schemaname, sequencename)::regclass = pg_get_serial_sequence($1, $2)::regclass)"
            f" FROM {target}",
            target,
            column,
        )
        if top:
            full.append(f"{table}.{column}")
    return full


async def drop_schema(conn: asyncpg.Connection, schema: str) -> None:
    await conn.execute(f"DROP SCHEMA IF EXISTS {quote(schema)} CASCADE")


async def _set_triggers(conn: asyncpg.Connection, schema: str, tables: Iterable[str], *, enabled: bool) -> None:
    # USER: the sync triggers; the foreign keys' own triggers keep checking.
    state = "ENABLE" if enabled else "DISABLE"
    for table in tables:
        await conn.execute(f"ALTER TABLE {quote(schema)}.{quote(table)} {state} TRIGGER USER")


async def load(conn: asyncpg.Connection, schema: str, folder: Path, index: dict[str, Any]) -> None:
    """Replace the rows of `schema`'s tables (migrated to the export's version) with the export's,
    in one transaction, with the sync triggers off: the rows are the backup's, not new changes.
    Constraints are on: rows that break a key or a check fail the load (LoadFailed)."""
    listed = {str(t["name"]): t for t in index["tables"]}
    async with conn.transaction():
        order = await tables_in_order(conn, schema)
        if set(order) != set(listed):
            differ = sorted(set(order) ^ set(listed))
            raise LoadFailed(f"the export's tables differ from its schema version's (first: {differ[0]})")
        await _set_triggers(conn, schema, order, enabled=False)
        # The migrations' own seed rows (the sync counter, the first legal texts) make way for the backup's.
        await conn.execute("TRUNCATE " + ", ".join(f"{quote(schema)}.{quote(t)}" for t in order))
        for table in order:
            columns = [str(c) for c in listed[table]["columns"]]
            if columns != await _columns(conn, schema, table):
                raise LoadFailed(f"the export's columns of {table} differ from its schema version's")
            try:
                await conn.copy_to_table(
                    table,
                    source=str(folder / f"{table}.csv"),
                    schema_name=schema,
                    columns=columns,
                    format="csv",
                    header="MATCH",
                    encoding="UTF8",
                )
            except (asyncpg.PostgresError, OSError) as exc:
                raise LoadFailed(f"the rows of {table} do not load: {exc}") from None
        await _set_triggers(conn, schema, order, enabled=True)


async def replace_rows(conn: asyncpg.Connection, live: str, source: str, keep_as: str) -> None:
    """In one transaction: copy the live rows into the new schema `keep_as`, then replace every
    live table's rows with `source`'s (same tables, same columns: both at the current version),
    with the sync triggers off, and set every identity counter past the largest id restored.

    Other connections wait on the tables' locks and then see the restored rows, never a mix."""
    async with conn.transaction():
        order = await tables_in_order(conn, live)
        if order != await tables_in_order(conn, source):
            raise LoadFailed("the restored tables differ from the live ones")
        await create_schema(conn, keep_as)
        for table in order:
            await conn.execute(f"CREATE TABLE {quote(keep_as)}.{quote(table)} AS TABLE {quote(live)}.{quote(table)}")
        await _set_triggers(conn, live, order, enabled=False)
        await conn.execute("TRUNCATE " + ", ".join(f"{quote(live)}.{quote(t)}" for t in order))
        for table in order:
            columns = await _columns(conn, live, table)
            if columns != await _columns(conn, source, table):
                raise LoadFailed(f"the restored columns of {table} differ from the live ones")
            names = ", ".join(quote(c) for c in columns)
            await conn.execute(
                f"INSERT INTO {quote(live)}.{quote(table)} ({names}) OVERRIDING SYSTEM VALUE"
                f" SELECT {names} FROM {quote(source)}.{quote(table)}"
            )
        for table, column in await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = $1 AND is_identity = 'YES'",
            live,
        ):
            target = f"{quote(live)}.{quote(table)}"
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence($1, $2), coalesce(max({quote(column)}), 0) + 1, false)"
                f" FROM {target}",
                target,
                column,
            )
        await _set_triggers(conn, live, order, enabled=True)


async def erasures_in(conn: asyncpg.Connection, schema: str) -> list[dict[str, Any]]:
    """The erasures the rows kept in `schema` recorded (none before erasures existed)."""
    table = f"{quote(schema)}.erasures"
    if await conn.fetchval("SELECT to_regclass($1)", table) is None:
        return []
    rows = await conn.fetch(f"SELECT user_id, erased_by, erased_at, counts FROM {table} ORDER BY id")
    return [dict(row) for row in rows]
