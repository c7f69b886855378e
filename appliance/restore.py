"""Restoring a backup, and the restore drill (`labrunner backup --verify FILE`).

A restore unpacks the archive beside the data, checks every member's hash, the passphrase, the
database's integrity and row counts, the schema version and whose backup it is, all before
anything is replaced. Then it moves what it replaces into a `replaced-<time>` folder (kept as a
snapshot), renames the restored files into place and migrates them to this version's schema.
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

from appliance import appliance_id, data_locks, erasure, identity, job_history, migrations
from appliance.backup_archive import DB_MEMBER, ArchiveRefused, Manifest, fsync_dir, unpack_verified
from appliance.blobs import BlobStore
from appliance.db import SqliteDatabase, is_postgresql, open_database
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


def _newest_known_schema() -> int:
    return max(m.version for m in migrations.discover())


def _open_verified(archive: Path, staging: Path, passphrase: str | None) -> Manifest:
    """Unpack into `staging` and check it all: members, database integrity, counts, schema."""
    if not archive.is_file():
        raise ArchiveRefused("backup_not_found", f"no backup file at {archive}")
    manifest = unpack_verified(archive, staging, passphrase)
    known = _newest_known_schema()
    if manifest.schema_version > known:
        raise ArchiveRefused(
            "backup_newer_schema",
            f"{archive.name} was made by a newer Labrunner (schema {manifest.schema_version}, this version knows"
            f" up to {known}): upgrade Labrunner first",
        )
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
    if is_postgresql(settings.database_location):
        # The archive holds a SQLite file: putting it in the data folder would restore nothing.
        raise Conflict(
            "restore_postgresql_unsupported",
            "this appliance keeps its data in PostgreSQL, and Labrunner cannot restore a backup into"
            " PostgreSQL yet: restore the database with the database server's own tools",
        )
    data_dir = settings.data_dir
    with data_locks.no_server(data_dir), data_locks.maintenance(data_dir, "restore"):
        result = await asyncio.to_thread(_replace, settings, archive, passphrase, as_new_machine)
        db = open_database(settings.database_location)
        await db.open()
        try:
            if result.replaced is not None and (result.replaced / settings.db_path.name).exists():
                before = SqliteDatabase(result.replaced / settings.db_path.name)
                await before.open()
                try:
                    again = await erasure.erase_again(db, BlobStore(settings.blob_dir), before)
                    result = replace(result, erased_again=again)
                finally:
                    await before.close()
            replaced = None if result.replaced is None else str(result.replaced)
            await job_history.record_restore(db, archive=archive.name, manifest=result.manifest.data, replaced=replaced)
        finally:
            await db.close()
    return result


def _replace(settings: Settings, archive: Path, passphrase: str | None, as_new_machine: bool) -> RestoreResult:
    data_dir = settings.data_dir
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=data_dir))
    try:
        manifest = _open_verified(archive, staging, passphrase)
        _check_owner(manifest, data_dir, archive, as_new_machine)
        replaced = _swap(settings, staging, datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ"))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    # The database's sync change counter is the backup's now: later bundles start a new generation.
    identity.bump_generation(data_dir)
    if as_new_machine:
        appliance_id.ensure(data_dir)
    elif appliance_id.read(data_dir) is None:
        # A new machine standing in for the old one takes over its id.
        appliance_id.write(data_dir, manifest.appliance_id)
    applied = migrations.migrate(settings.db_path, settings.backup_dir)
    return RestoreResult(manifest, replaced, [f"{m.version:04d}_{m.name}" for m in applied])


def verify(settings: Settings, archive: Path, *, passphrase: str | None) -> dict[str, Any]:
    """The restore drill: restore `archive` into a temporary folder, migrate it, check it all."""
    with tempfile.TemporaryDirectory(prefix=".verify-", dir=settings.data_dir) as folder:
        staging = Path(folder)
        manifest = _open_verified(archive, staging, passphrase)
        db = staging / DB_MEMBER
        migrations.migrate(db, staging / "pre-migrate")
        problems = snapshots.integrity_problems(db)
        if problems:
            raise ArchiveRefused("backup_db_damaged", f"the restored database fails its check: {problems[0]}")
        blobs = BlobStore(staging / "blobs")
        for digest in blobs.digests():
            try:
                blobs.get(digest)
            except (ValueError, OSError) as exc:
                raise ArchiveRefused("backup_corrupt", f"blob {digest} in {archive.name} is damaged: {exc}") from None
        missing = sorted(snapshots.referenced_blobs(db) - set(blobs.digests()))
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
