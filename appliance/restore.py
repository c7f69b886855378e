"""Restoring a backup, and the restore drill (`labrunner backup --verify FILE`).

A restore unpacks the archive beside the data, checks every member's hash, the passphrase, the
database's integrity and row counts, the schema version and whose backup it is, all before
anything is replaced. Then it moves what it replaces into a `replaced-<time>` folder (kept as a
snapshot), renames the restored files into place and migrates them to this version's schema.

On PostgreSQL the database part loads into a staging schema and is migrated there before anything
is replaced; one transaction then swaps the rows (pg_backup.py says how, and where the replaced
rows are kept). The blobs swap by rename as on SQLite, just before that transaction, and swap back
if it fails.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from appliance import appliance_id, data_locks, erasure, identity, job_history, migrations, pg_backup
from appliance.backup_archive import (
    DB_MEMBER,
    PG_PREFIX,
    ArchiveRefused,
    Manifest,
    fsync_dir,
    unpack_verified,
)
from appliance.blobs import BlobStore
from appliance.db import SqliteDatabase, database_lock, is_postgresql, open_database
from appliance.errors import Conflict
from appliance.settings import Settings
from appliance.store import snapshots


@dataclass(frozen=True)
class RestoreResult:
    manifest: Manifest
    # Where what the restore replaced was kept (None: the data folder held nothing to replace).
    replaced: Path | None
    migrated: list[str]
    # Students the replaced data had erased, erased again in the restored data.
    erased_again: list[int] = field(default_factory=list)
    # PostgreSQL: the schema the replaced rows are kept in (None on SQLite: they are in `replaced`).
    replaced_schema: str | None = None


def _newest_known_schema() -> int:
    return max(m.version for m in migrations.discover())


def _engine(settings: Settings) -> str:
    return "postgresql" if is_postgresql(settings.database_location) else "sqlite"


def _unpack(settings: Settings, archive: Path, staging: Path, passphrase: str | None) -> Manifest:
    """Unpack into `staging` and check the members, the engine and the schema version."""
    if not archive.is_file():
        raise ArchiveRefused("backup_not_found", f"no backup file at {archive}")
    manifest = unpack_verified(archive, staging, passphrase)
    engine = _engine(settings)
    if manifest.database != engine:
        raise ArchiveRefused(
            "backup_other_engine",
            f"{archive.name} holds a {manifest.database} database, and this appliance keeps its data in {engine}:"
            " a backup restores only onto the same database engine",
        )
    known = _newest_known_schema()
    if manifest.schema_version > known:
        raise ArchiveRefused(
            "backup_newer_schema",
            f"{archive.name} was made by a newer Labrunner (schema {manifest.schema_version}, this version knows"
            f" up to {known}): upgrade Labrunner first",
        )
    return manifest


def _open_verified(settings: Settings, archive: Path, staging: Path, passphrase: str | None) -> Manifest:
    """Unpack into `staging` and check it all: members, database integrity, counts, schema."""
    manifest = _unpack(settings, archive, staging, passphrase)
    db = staging / DB_MEMBER
    problems = snapshots.integrity_problems(db)
    if problems:
        raise ArchiveRefused(
            "backup_db_damaged", f"the database in {archive.name} fails its integrity check: {problems[0]}"
        )
    if snapshots.schema_version(db) != manifest.schema_version or snapshots.table_counts(db) != manifest.tables:
        raise ArchiveRefused(
            "backup_corrupt", f"the database in {archive.name} does not hold what its manifest says (rows or schema)"
        )
    return manifest


def _check_owner(manifest: Manifest, data_dir: Path, archive: Path, as_new_machine: bool) -> None:
    own = appliance_id.read(data_dir)
    if own is not None and own != manifest.appliance_id and not as_new_machine:
        raise ArchiveRefused(
            "backup_foreign_appliance",
            f"{archive.name} is a backup of another appliance ({manifest.appliance_id[:8]}, this one is {own[:8]});"
            " to move that appliance's data onto this machine, restore with --as-new-machine",
        )


def _swap(settings: Settings, staging: Path, stamp: str) -> Path | None:
    """Move the current database and blobs aside into a snapshot folder, then the restored ones in.
    Each step is a rename inside the data folder: a crash leaves every file whole, in one place or
    the other."""
    data_dir = settings.data_dir
    snapshot = data_dir / f"replaced-{stamp}"
    snapshot.mkdir()
    db = settings.db_path
    current = [Path(f"{db}{suffix}") for suffix in ("", "-wal", "-shm")] + [settings.blob_dir]
    for path in current:
        if path.exists():
            os.rename(path, snapshot / path.name)
    os.rename(staging / DB_MEMBER, db)
    restored_blobs = staging / "blobs"
    restored_blobs.mkdir(exist_ok=True)
    os.rename(restored_blobs, settings.blob_dir)
    fsync_dir(data_dir)
    if not any(snapshot.iterdir()):
        snapshot.rmdir()
        return None
    return snapshot


async def restore(
    settings: Settings, archive: Path, *, passphrase: str | None, as_new_machine: bool = False
) -> RestoreResult:
    """Replace this data folder's database and blobs with the backup's (no server may run on it)."""
    data_dir = settings.data_dir
    with data_locks.no_server(data_dir), data_locks.maintenance(data_dir, "restore"):
        return await _restore_locked(settings, archive, passphrase, as_new_machine)


async def _restore_locked(
    settings: Settings, archive: Path, passphrase: str | None, as_new_machine: bool
) -> RestoreResult:
    if is_postgresql(settings.database_location):  # reachable, or a clear error before anything
        await asyncio.to_thread(pg_backup.database_bytes, str(settings.database_location))
    # A PostgreSQL database may be served from other data folders: their servers hold it too.
    async with database_lock(settings.database_location, exclusive=True) as alone:
        if not alone:
            raise Conflict(
                "server_running",
                "a Labrunner server is running on this database (perhaps from another data folder):"
                " stop it first (the restore replaces its data)",
            )
        if is_postgresql(settings.database_location):
            result, erasures = await _replace_pg(settings, archive, passphrase, as_new_machine)
        else:
            result = await asyncio.to_thread(_replace, settings, archive, passphrase, as_new_machine)
            erasures = None
        db = open_database(settings.database_location)
        await db.open()
        try:
            blobs = BlobStore(settings.blob_dir)
            if erasures:
                result = replace(result, erased_again=await erasure.erase_recorded(db, blobs, erasures))
            elif result.replaced is not None and (result.replaced / settings.db_path.name).exists():
                before = SqliteDatabase(result.replaced / settings.db_path.name)
                await before.open()
                try:
                    again = await erasure.erase_again(db, blobs, before)
                    result = replace(result, erased_again=again)
                finally:
                    await before.close()
            replaced = result.replaced_schema or (None if result.replaced is None else str(result.replaced))
            await job_history.record_restore(db, archive=archive.name, manifest=result.manifest.data, replaced=replaced)
        finally:
            await db.close()
    return result


def _swap_blobs(settings: Settings, restored: Path, snapshot: Path) -> None:
    snapshot.mkdir()
    if settings.blob_dir.exists():
        os.rename(settings.blob_dir, snapshot / settings.blob_dir.name)
    restored.mkdir(exist_ok=True)
    os.rename(restored, settings.blob_dir)
    fsync_dir(settings.data_dir)


def _unswap_blobs(settings: Settings, snapshot: Path) -> None:
    shutil.rmtree(settings.blob_dir, ignore_errors=True)
    if (snapshot / settings.blob_dir.name).exists():
        os.rename(snapshot / settings.blob_dir.name, settings.blob_dir)
    snapshot.rmdir()
    fsync_dir(settings.data_dir)


async def _replace_pg(
    settings: Settings, archive: Path, passphrase: str | None, as_new_machine: bool
) -> tuple[RestoreResult, list[dict[str, Any]]]:
    """The PostgreSQL restore: stage and check it all, then swap the blobs and the rows."""
    url = str(settings.database_location)
    data_dir = settings.data_dir
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=data_dir))
    try:
        manifest = await asyncio.to_thread(_unpack, settings, archive, staging, passphrase)
        _check_owner(manifest, data_dir, archive, as_new_machine)
        # The live tables at this version first (what the server's start-up does anyway): the rows
        # swap between tables of the same version, and a database never migrated gets its tables.
        await asyncio.to_thread(migrations.migrate, url, settings.backup_dir)
        staged = await pg_backup.stage(url, archive, staging / PG_PREFIX, manifest, settings.backup_dir)
        try:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            snapshot = data_dir / f"replaced-{stamp}"
            await asyncio.to_thread(_swap_blobs, settings, staging / "blobs", snapshot)
            try:
                kept_in, erasures = await pg_backup.replace_live(url, staged, stamp)
            except BaseException:
                await asyncio.to_thread(_unswap_blobs, settings, snapshot)
                raise
        finally:
            await pg_backup.drop(url, staged.schema)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _take_over(data_dir, manifest, as_new_machine)
    replaced = snapshot if any(snapshot.iterdir()) else None
    if replaced is None:
        snapshot.rmdir()
    result = RestoreResult(manifest, replaced, staged.migrated, replaced_schema=kept_in)
    return result, erasures


def _take_over(data_dir: Path, manifest: Manifest, as_new_machine: bool) -> None:
    # The database's sync change counter is the backup's now: later bundles start a new generation.
    identity.bump_generation(data_dir)
    if as_new_machine:
        appliance_id.ensure(data_dir)
    elif appliance_id.read(data_dir) is None:
        # A new machine standing in for the old one takes over its id.
        appliance_id.write(data_dir, manifest.appliance_id)


def _replace(settings: Settings, archive: Path, passphrase: str | None, as_new_machine: bool) -> RestoreResult:
    data_dir = settings.data_dir
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=data_dir))
    try:
        manifest = _open_verified(settings, archive, staging, passphrase)
        _check_owner(manifest, data_dir, archive, as_new_machine)
        replaced = _swap(settings, staging, datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ"))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _take_over(data_dir, manifest, as_new_machine)
    applied = migrations.migrate(settings.db_path, settings.backup_dir)
    return RestoreResult(manifest, replaced, [f"{m.version:04d}_{m.name}" for m in applied])


def verify(settings: Settings, archive: Path, *, passphrase: str | None) -> dict[str, Any]:
    """The restore drill: restore `archive` into a temporary folder (on PostgreSQL: the database into
    a staging schema, dropped after), migrate it, check it all."""
    with tempfile.TemporaryDirectory(prefix=".verify-", dir=settings.data_dir) as folder:
        staging = Path(folder)
        if is_postgresql(settings.database_location):
            manifest = _unpack(settings, archive, staging, passphrase)
            referenced = pg_backup.run(_staged_blobs(settings, archive, staging, manifest))
        else:
            manifest = _open_verified(settings, archive, staging, passphrase)
            db = staging / DB_MEMBER
            migrations.migrate(db, staging / "pre-migrate")
            problems = snapshots.integrity_problems(db)
            if problems:
                raise ArchiveRefused("backup_db_damaged", f"the restored database fails its check: {problems[0]}")
            referenced = snapshots.referenced_blobs(db)
        blobs = BlobStore(staging / "blobs")
        for digest in blobs.digests():
            try:
                blobs.get(digest)
            except (ValueError, OSError) as exc:
                raise ArchiveRefused("backup_corrupt", f"blob {digest} in {archive.name} is damaged: {exc}") from None
        missing = sorted(referenced - set(blobs.digests()))
        if missing:
            raise ArchiveRefused(
                "backup_blobs_missing",
                f"{archive.name} lacks {len(missing)} file(s) its database names (first: {missing[0]})",
            )
        return {
            "archive": archive.name,
            "appliance_id": manifest.appliance_id,
            "created_at": manifest.data["created_at"],
            "schema_version": manifest.schema_version,
            "tables": manifest.tables,
            "blobs": len(blobs.digests()),
        }


async def _staged_blobs(settings: Settings, archive: Path, staging: Path, manifest: Manifest) -> set[str]:
    """The drill on PostgreSQL: load and migrate the archive's data in a staging schema, then drop
    it; the blobs the migrated rows name."""
    url = str(settings.database_location)
    staged = await pg_backup.stage(url, archive, staging / PG_PREFIX, manifest, staging / "pre-migrate")
    await pg_backup.drop(url, staged.schema)
    return staged.blobs
