"""Taking a backup: a consistent copy of the live database (the server keeps running), checked,
counted and packed with the blob store into one self-contained archive in the backup folder.
The copy is the SQLite file (`VACUUM INTO`), or on PostgreSQL an export of every table from one
snapshot (pg_backup.py); the manifest's `database` names which.

The archive is written under a temporary name, fsynced and renamed, so a crash or a full disk
leaves no file that counts as a backup; older archives are then rotated out by policy.
"""

from __future__ import annotations

import asyncio
import errno
import io
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from appliance import __version__, appliance_id, clock, data_locks, job_history, pg_backup
from appliance.backup_archive import (
    DB_MEMBER,
    FORMAT,
    FORMAT_VERSION,
    PG_PREFIX,
    ArchiveWriter,
    encrypt,
    fsync_dir,
)
from appliance.backup_rotation import to_keep
from appliance.db import Database, is_postgresql
from appliance.errors import Unavailable
from appliance.settings import Settings
from appliance.store import snapshots

PASSPHRASE_ENV = "LABRUNNER_BACKUP_PASSPHRASE"
PARTIAL_PREFIX = ".partial-"
_STAMP = "%Y%m%dT%H%M%S%fZ"
_ARCHIVE = re.compile(r"^labrunner-backup-(?P<id>[0-9a-f]{8})-(?P<stamp>\d{8}T\d{12}Z)\.tar(?P<age>\.age)?$")
_DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


class BackupFailed(Unavailable):
    """The backup could not be taken; nothing that counts as a backup was written."""


@dataclass(frozen=True)
class Archive:
    path: Path
    created_at: datetime
    encrypted: bool


@dataclass(frozen=True)
class BackupResult:
    archive: Path
    size: int
    tables: dict[str, int]
    blobs: int
    schema_version: int
    encrypted: bool
    rotated_out: list[str] = field(default_factory=list)

    def detail(self) -> dict[str, Any]:
        return {
            "archive": self.archive.name,
            "tables": self.tables,
            "blobs": self.blobs,
            "schema_version": self.schema_version,
            "encrypted": self.encrypted,
            "rotated_out": self.rotated_out,
        }


def passphrase_from(settings: Settings, environ: Mapping[str, str] | None = None) -> str | None:
    """The backup passphrase: the environment variable, else the passphrase file; None: no encryption."""
    env = os.environ if environ is None else environ
    if env.get(PASSPHRASE_ENV):
        return env[PASSPHRASE_ENV]
    if settings.backup_passphrase_file:
        text = Path(settings.backup_passphrase_file).expanduser().read_text(encoding="utf-8").rstrip("\r\n")
        if not text:
            raise BackupFailed("backup_passphrase_empty", f"{settings.backup_passphrase_file} holds no passphrase")
        return text
    return None


def archives(backup_dir: Path, owner: str | None = None) -> list[Archive]:
    """The finished archives in `backup_dir` (of the appliance `owner` only, when given), newest first.
    Partial files of an interrupted backup never match the archive name, so they never count."""
    found: list[Archive] = []
    if not backup_dir.is_dir():
        return found
    for path in backup_dir.iterdir():
        match = _ARCHIVE.match(path.name)
        if match is None or (owner is not None and match["id"] != owner[:8]):
            continue
        created = datetime.strptime(match["stamp"], _STAMP).replace(tzinfo=UTC)
        found.append(Archive(path, created, bool(match["age"])))
    return sorted(found, key=lambda a: a.created_at, reverse=True)


def _blob_files(blob_dir: Path) -> list[tuple[str, Path]]:
    if not blob_dir.is_dir():
        return []
    return sorted(
        (f"blobs/{path.parent.name}/{path.name}", path)
        for path in blob_dir.glob("??/*")
        if not path.name.startswith(".tmp-")
    )


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _check_space(settings: Settings, db_bytes: int, blob_bytes: int) -> None:
    """Both disks the backup writes to must keep `backup_free_reserve_mb` after it."""
    reserve = settings.backup_free_reserve_mb << 20
    # The archive holds the copy and the blobs (age adds 16 bytes per 64 KiB); the copy is made in
    # the data folder first. On one disk, both at once.
    archive_bytes = int((db_bytes + blob_bytes) * 1.01) + (1 << 20)
    needs = {settings.data_dir: db_bytes, settings.backup_dir: archive_bytes}
    if os.stat(settings.data_dir).st_dev == os.stat(settings.backup_dir).st_dev:
        needs = {settings.backup_dir: db_bytes + archive_bytes}
    for folder, need in needs.items():
        free = shutil.disk_usage(folder).free
        if free < need + reserve:
            raise BackupFailed(
                "backup_no_space",
                f"not enough free space in {folder} for the backup: it needs about {need >> 20} MiB and"
                f" {settings.backup_free_reserve_mb} MiB must stay free, but {free >> 20} MiB are free",
            )


# Copies taken when erasures or purges keep removing files a copy names (each takes a new snapshot).
COPY_ATTEMPTS = 3


def _write_archive(
    out: BinaryIO, database: list[tuple[str, Path]], blob_files: list[tuple[str, Path]], manifest: dict[str, Any]
) -> int:
    writer = ArchiveWriter(out)
    for name, path in database:
        writer.add_file(name, path)
    blobs = sum(writer.add_file(name, path) for name, path in blob_files)
    writer.finish({**manifest, "blobs": blobs})
    return blobs


def _sqlite_copy(settings: Settings, work: Path) -> tuple[list[tuple[str, Path]], dict[str, int], int, set[str]]:
    """A checked copy of the SQLite file: its archive member, row counts, schema version and the
    blobs its rows name."""
    copy = work / "labrunner.sqlite3"
    snapshots.copy_live(settings.db_path, copy)
    problems = snapshots.integrity_problems(copy)
    if problems:
        raise BackupFailed(
            "backup_db_damaged",
            f"the database copy fails its integrity check ({len(problems)} problem(s), first: {problems[0]});"
            " the live database may be damaged: no backup was written",
        )
    return (
        [(DB_MEMBER, copy)],
        snapshots.table_counts(copy),
        snapshots.schema_version(copy),
        snapshots.referenced_blobs(copy),
    )


def _pg_export(settings: Settings, work: Path) -> tuple[list[tuple[str, Path]], dict[str, int], int, set[str]]:
    """The PostgreSQL tables exported from one snapshot: the archive members, counts, version and
    the blobs its rows name."""
    exported = pg_backup.export(str(settings.database_location), work / "postgresql")
    members = [(PG_PREFIX + path.name, path) for path in exported.files]
    return members, exported.tables, exported.schema_version, set(exported.blobs)


def write_backup(
    settings: Settings, *, passphrase: str | None, now: datetime, run_id: int | None = None
) -> BackupResult:
    """Take one backup (blocking: run it in a thread). The caller holds the maintenance lock."""
    on_postgresql = is_postgresql(settings.database_location)
    owner = appliance_id.ensure(settings.data_dir)
    backup_dir = settings.backup_dir
    try:
        backup_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(backup_dir, exc) from None
    # Only this appliance's leftovers: a shared backup folder may hold another machine's backup in progress.
    for partial in backup_dir.glob(f"{PARTIAL_PREFIX}labrunner-backup-{owner[:8]}-*"):
        partial.unlink(missing_ok=True)
    # Work folders of a killed backup or restore (none runs now: the caller holds the lock).
    for stale in [*settings.data_dir.glob(".backup-work-*"), *settings.data_dir.glob(".restore-*")]:
        shutil.rmtree(stale, ignore_errors=True)
    blob_files = _blob_files(settings.blob_dir)
    if on_postgresql:
        # The export's CSV text is about as large as the tables' pages; the database's size bounds it.
        db_bytes = pg_backup.database_bytes(str(settings.database_location))
    else:
        db_bytes = sum(_file_size(Path(f"{settings.db_path}{suffix}")) for suffix in ("", "-wal"))
    _check_space(settings, db_bytes, sum(_file_size(path) for _, path in blob_files))
    name = f"labrunner-backup-{owner[:8]}-{now.astimezone(UTC).strftime(_STAMP)}.tar" + (".age" if passphrase else "")
    final = backup_dir / name
    partial = backup_dir / (PARTIAL_PREFIX + name)
    work = Path(tempfile.mkdtemp(prefix=".backup-work-", dir=settings.data_dir))
    try:
        for attempt in range(1, COPY_ATTEMPTS + 1):
            folder = work / f"copy-{attempt}"
            folder.mkdir()
            database, tables, schema_version, referenced = (_pg_export if on_postgresql else _sqlite_copy)(
                settings, folder
            )
            # The blobs listed after the copy was made: every blob a row of the copy names was
            # written before that row, so it is listed, unless an erasure or a purge that committed
            # after the copy removed it meanwhile; then the copy is taken again, after that change.
            blob_files = _blob_files(settings.blob_dir)
            if referenced <= {Path(name).parent.name + Path(name).name for name, _ in blob_files}:
                break
            if attempt == COPY_ATTEMPTS:
                raise BackupFailed(
                    "backup_blobs_changing",
                    f"files the database names were removed while {COPY_ATTEMPTS} copies were taken (erasures"
                    " or purges under way); no backup was written: try again",
                )
            shutil.rmtree(folder)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "app_version": __version__,
            "database": "postgresql" if on_postgresql else "sqlite",
            "schema_version": schema_version,
            "appliance_id": owner,
            "created_at": clock.to_db(now),
            "tables": tables,
            # The job history row of this backup, still 'running' in the copy: a restore settles it.
            "job_run_id": run_id,
        }
        with partial.open("wb") as out:
            if passphrase:
                # pyrage encrypts whole byte strings only: the plain archive is built in memory, so
                # no unencrypted copy of the data ever lands on the backup disk.
                plain = io.BytesIO()
                blobs = _write_archive(plain, database, blob_files, manifest)
                out.write(encrypt(plain.getvalue(), passphrase))
            else:
                blobs = _write_archive(out, database, blob_files, manifest)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, final)
        fsync_dir(backup_dir)
    except OSError as exc:
        if exc.errno in _DISK_FULL:
            raise BackupFailed(
                "backup_disk_full",
                f"the disk filled up while the backup was written ({exc.strerror}); no backup was kept",
            ) from None
        if exc.filename == str(partial):
            raise _unwritable(backup_dir, exc) from None
        raise
    except snapshots.CopyFailed as exc:
        if "full" in str(exc):
            raise BackupFailed(
                "backup_disk_full", f"the disk filled up while the database was copied ({exc}); no backup was kept"
            ) from None
        raise
    finally:
        partial.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    rotated = rotate(settings, owner)
    return BackupResult(final, final.stat().st_size, tables, blobs, schema_version, bool(passphrase), rotated)


def _unwritable(backup_dir: Path, exc: OSError) -> BackupFailed:
    return BackupFailed(
        "backup_folder_unwritable",
        f"cannot write into the backup folder {backup_dir} ({exc.strerror or exc}): it must be a folder the"
        " server's user can write (the Debian package's service writes only where ReadWritePaths allows)",
    )


def rotate(settings: Settings, owner: str) -> list[str]:
    """Delete this appliance's archives the keep policy no longer wants; returns their names."""
    found = archives(settings.backup_dir, owner)
    keep = to_keep(
        [a.created_at for a in found],
        daily=settings.backup_keep_daily,
        weekly=settings.backup_keep_weekly,
        monthly=settings.backup_keep_monthly,
    )
    removed = []
    for archive in found:
        if archive.created_at not in keep:
            archive.path.unlink(missing_ok=True)
            removed.append(archive.path.name)
    return removed


async def backup_now(settings: Settings, *, passphrase: str | None = None, run_id: int | None = None) -> BackupResult:
    """One backup under the maintenance lock, off the event loop (requests keep being served)."""
    chosen = passphrase if passphrase is not None else passphrase_from(settings)
    with data_locks.maintenance(settings.data_dir, "backup"):
        return await asyncio.to_thread(write_backup, settings, passphrase=chosen, now=clock.now(), run_id=run_id)


async def take_backup(db: Database, settings: Settings, *, trigger: str, passphrase: str | None = None) -> BackupResult:
    """A backup recorded in the job history (the schedule records its runs itself)."""
    async with job_history.recorded(db, "backup", trigger) as run:
        result = await backup_now(settings, passphrase=passphrase, run_id=run.id)
        run.detail.update(result.detail())
        run.bytes = result.size
    return result
