"""Backups and restores of a PostgreSQL store: the database part (the archive, blobs and checks
around it are backups.py's and restore.py's, the same for both engines).

A backup exports the tables from one snapshot (store/pg_snapshots.py). A restore, or the drill,
loads the archive's export into a staging schema of the same database: the migrations up to the
archive's version build its tables there, the rows are copied in with every constraint on, and the
staging tables are migrated to this version, all beside the live tables, which nothing touches
until everything has loaded. Then one transaction keeps the live rows in a `replaced_<stamp>`
schema and replaces them with the staging rows (store.pg_snapshots.replace_rows).

The replaced rows stay in the database, not in an export file: they are kept by the very
transaction that replaces them, so there is no moment at which they exist nowhere, and the restore
needs no second pass over the data nor room for it on the appliance's disk. A DBA drops the schema
(`DROP SCHEMA replaced_<stamp> CASCADE`) once satisfied, as the replaced-<time> folder of a SQLite
appliance is removed by hand.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from appliance import migrations
from appliance.backup_archive import ArchiveRefused, Manifest
from appliance.errors import Conflict, Unavailable
from appliance.store import pg_snapshots
from appliance.store.pg_snapshots import Export

_T = TypeVar("_T")
STAGING_PREFIX = "labrunner_staging_"
REPLACED_PREFIX = "replaced_"


def run(work: Coroutine[Any, Any, _T]) -> _T:
    """Run asyncpg work to its end from synchronous code (a backup runs in a worker thread, the
    drill from the command line or from a test's event loop): in a loop of its own thread."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-backup") as pool:
        return pool.submit(asyncio.run, work).result()


def database_bytes(url: str) -> int:
    """The database's size; the first contact of a backup, so an unreachable server is said here."""
    try:
        return run(pg_snapshots.database_bytes(url))
    except (OSError, asyncpg.PostgresError) as exc:
        raise Unavailable(
            "database_unavailable", f"cannot reach the PostgreSQL database the settings name (database_url): {exc}"
        ) from None


def export(url: str, folder: Path) -> Export:
    """The live tables into `folder`, from one snapshot (blocking)."""
    folder.mkdir(parents=True)
    return run(pg_snapshots.export(url, folder))


@dataclass
class Staged:
    """The archive's data loaded and migrated in schema `schema`, beside the live tables."""

    schema: str
    tables: dict[str, int]
    blobs: set[str]
    migrated: list[str] = field(default_factory=list)


def _refused(archive: Path, exc: Exception) -> ArchiveRefused:
    return ArchiveRefused("backup_db_damaged", f"the database in {archive.name} does not load: {exc}")


async def stage(url: str, archive: Path, folder: Path, manifest: Manifest, backup_dir: Path) -> Staged:
    """Load the export unpacked in `folder` into a new staging schema and migrate it to this
    version. Raises ArchiveRefused (the staging schema dropped again) when it does not hold what
    its manifest says or does not load."""
    try:
        index = pg_snapshots.read_index(folder)
    except pg_snapshots.LoadFailed as exc:
        raise _refused(archive, exc) from None
    listed = {str(t["name"]): int(t["rows"]) for t in index["tables"]}
    if int(index["schema_version"]) != manifest.schema_version or listed != manifest.tables:
        raise ArchiveRefused(
            "backup_corrupt", f"the database in {archive.name} does not hold what its manifest says (rows or schema)"
        )
    schema = STAGING_PREFIX + secrets.token_hex(6)
    conn = await asyncpg.connect(url)
    try:
        await pg_snapshots.sweep_staging(conn, STAGING_PREFIX)
        await pg_snapshots.claim_staging(conn, schema)
        await pg_snapshots.create_schema(conn, schema)
        await pg_snapshots.work_in(conn, schema)
        try:
            await asyncio.to_thread(migrations.migrate, url, backup_dir, target=manifest.schema_version, schema=schema)
            await pg_snapshots.load(conn, schema, folder, index)
            # The loaded schema_migrations rows must not claim migrations the tables never had.
            if await pg_snapshots.schema_version(conn, schema) != manifest.schema_version:
                raise pg_snapshots.LoadFailed("its migrations table names another schema version than it has")
            if await pg_snapshots.row_counts(conn, schema) != manifest.tables:
                raise pg_snapshots.LoadFailed("the loaded rows are not the ones the manifest counts")
            if await pg_snapshots.referenced_blobs(conn, schema) != set(index["blobs"]):
                raise pg_snapshots.LoadFailed("the loaded rows name other files than the export listed")
            if full := await pg_snapshots.exhausted_identities(conn, schema):
                raise pg_snapshots.LoadFailed(f"an id is at the top of its range ({', '.join(full)})")
            applied = await asyncio.to_thread(migrations.migrate, url, backup_dir, schema=schema)
            return Staged(
                schema,
                await pg_snapshots.row_counts(conn, schema),
                await pg_snapshots.referenced_blobs(conn, schema),
                [f"{m.version:04d}_{m.name}" for m in applied],
            )
        except BaseException as exc:
            await pg_snapshots.drop_schema(conn, schema)
            if isinstance(exc, pg_snapshots.LoadFailed | asyncpg.PostgresError | migrations.MigrationError):
                raise _refused(archive, exc) from None
            raise
    finally:
        await conn.close()


async def drop(url: str, schema: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await pg_snapshots.drop_schema(conn, schema)
    finally:
        await conn.close()


async def replace_live(url: str, staged: Staged, stamp: str) -> tuple[str, list[dict[str, Any]]]:
    """Replace the live rows with the staged ones in one transaction; the schema the replaced rows
    are kept in, and the erasures they had recorded. The staging schema is dropped after."""
    keep_as = REPLACED_PREFIX + stamp.lower()
    conn = await asyncpg.connect(url)
    try:
        live = await pg_snapshots.current_schema(conn)
        try:
            await pg_snapshots.replace_rows(conn, live, staged.schema, keep_as)
        except pg_snapshots.LoadFailed as exc:
            # Both are at this version: only tables made outside Labrunner's migrations differ.
            raise Conflict(
                "restore_tables_differ",
                f"the live tables differ from this version's ({exc}); nothing was replaced: compare the"
                " database with a freshly migrated one",
            ) from None
        erasures = await pg_snapshots.erasures_in(conn, keep_as)
        await pg_snapshots.drop_schema(conn, staged.schema)
    finally:
        await conn.close()
    return keep_as, erasures
