"""Backups and restores against the real SQLite file and blob store (issue 10): a populated appliance
restored into a fresh data folder is the same row for row and blob for blob; an encrypted backup
needs its passphrase; a damaged, foreign or newer archive is refused before anything is replaced."""

from __future__ import annotations

import json
import shutil
import sqlite3
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appliance import appliance_id, backups, migrations
from appliance.backup_archive import ArchiveRefused
from appliance.restore import restore, verify
from appliance.settings import Settings
from tests.conftest import dump_db
from tests.ops.conftest import Classroom, blob_files

# The job history differs by design: the restore settles the backup's own run and records itself.
HISTORY = ("job_runs",)


async def _backup(classroom: Classroom) -> Path:
    reply = await classroom.admin.post("/api/admin/backups")
    assert reply.status == 201, reply
    return classroom.server.settings.backup_dir / reply.json["archive"]


async def test_a_restore_into_a_fresh_folder_gives_every_row_and_blob_back(
    classroom: Classroom, settings_factory: Callable[..., Settings]
) -> None:
    source = classroom.server.settings
    archive = await _backup(classroom)
    before, blobs_before = dump_db(source.db_path, exclude=HISTORY), blob_files(source.blob_dir)
    assert blobs_before and all(before[t] for t in ("users", "jobs", "job_images", "files", "problem_assets", "drafts"))

    fresh = settings_factory()
    result = await restore(fresh, archive, passphrase=None)
    assert result.replaced is None and result.migrated == []  # nothing was there to replace
    assert dump_db(fresh.db_path, exclude=HISTORY) == before
    assert blob_files(fresh.blob_dir) == blobs_before
    # The fresh machine takes over the backed-up appliance's id.
    assert appliance_id.read(fresh.data_dir) == appliance_id.read(source.data_dir)
    runs = {row[1]: row for row in dump_db(fresh.db_path)["job_runs"]}
    assert runs["backup"][5] == "ok" and runs["restore"][5] == "ok"
    assert verify(fresh, archive, passphrase=None)["blobs"] == len(blobs_before)


async def test_an_encrypted_backup_needs_its_passphrase(
    classroom: Classroom, settings_factory: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(backups.PASSPHRASE_ENV, "correct horse")
    archive = await _backup(classroom)
    monkeypatch.delenv(backups.PASSPHRASE_ENV)
    assert archive.name.endswith(".tar.age")
    raw = archive.read_bytes()
    assert raw.startswith(b"age-encryption.org/v1\n") and b"labrunner.sqlite3" not in raw

    target = settings_factory()
    for passphrase, code in ((None, "backup_passphrase_required"), ("wrong horse", "backup_wrong_passphrase")):
        with pytest.raises(ArchiveRefused) as refused:
            await restore(target, archive, passphrase=passphrase)
        assert refused.value.code == code
    await restore(target, archive, passphrase="correct horse")
    source = classroom.server.settings
    assert dump_db(target.db_path, exclude=HISTORY) == dump_db(source.db_path, exclude=HISTORY)
    assert blob_files(target.blob_dir) == blob_files(source.blob_dir)


def _flip(offset: Callable[[bytes], int]) -> Callable[[Path, Settings], None]:
    def damage(archive: Path, settings: Settings) -> None:
        data = bytearray(archive.read_bytes())
        data[offset(bytes(data))] ^= 0x01
        archive.write_bytes(bytes(data))

    return damage


def _member_offset(name: str, into: int) -> Callable[[bytes], int]:
    def find(data: bytes) -> int:
        with tarfile.open(fileobj=__import__("io").BytesIO(data)) as tar:
            return tar.getmember(name).offset_data + into

    return find


def _truncate(archive: Path, settings: Settings) -> None:
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])


def _cut_before_manifest(archive: Path, settings: Settings) -> None:
    with tarfile.open(archive) as tar:
        end = tar.getmember("manifest.json").offset
    archive.write_bytes(archive.read_bytes()[:end] + b"\0" * 1024)


def _foreign(archive: Path, settings: Settings) -> None:
    appliance_id.write(settings.data_dir, "f" * 32)


def _newer_schema(archive: Path, settings: Settings) -> None:
    """Replace the archive with a real backup of a database one migration ahead of this version."""
    future = settings.data_dir.parent / (settings.data_dir.name + "-future")
    schema = future / "schema"
    shutil.copytree(migrations.SCHEMA_DIR, schema)
    version = len(migrations.discover()) + 1
    (schema / f"{version:04d}_future.sql").write_text("CREATE TABLE from_the_future (id INTEGER PRIMARY KEY);\n")
    newer = Settings(**{**settings.__dict__, "data_dir": future / "data"})
    newer.data_dir.mkdir()
    migrations.migrate(newer.db_path, newer.backup_dir, schema)
    appliance_id.write(newer.data_dir, appliance_id.read(settings.data_dir) or "")
    made = backups.write_backup(newer, passphrase=None, now=__import__("appliance").clock.now()).archive
    shutil.copyfile(made, archive)


DAMAGE: dict[str, tuple[Callable[[Path, Settings], None], str]] = {
    "a byte flipped in the database": (_flip(_member_offset("db/labrunner.sqlite3", 5000)), "backup_corrupt"),
    "a byte flipped in the manifest": (_flip(_member_offset("manifest.json", 30)), "backup_corrupt"),
    "a byte flipped in a tar header": (_flip(_member_offset("db/labrunner.sqlite3", -400)), "backup_corrupt"),
    "truncated in the middle": (_truncate, "backup_truncated"),
    "cut before its manifest": (_cut_before_manifest, "backup_truncated"),
    "another appliance's": (_foreign, "backup_foreign_appliance"),
    "from a newer schema": (_newer_schema, "backup_newer_schema"),
}


def _state(settings: Settings) -> tuple[Any, ...]:
    # The database's -wal and -shm files come and go with connections, the dump's own too.
    files = sorted(p.name for p in settings.data_dir.iterdir() if not p.name.endswith(("-wal", "-shm")))
    return dump_db(settings.db_path), blob_files(settings.blob_dir), files


@pytest.mark.parametrize("damage", DAMAGE)
async def test_a_bad_archive_is_refused_before_anything_is_replaced(
    classroom: Classroom, settings_factory: Callable[..., Settings], damage: str
) -> None:
    archive = await _backup(classroom)
    # The machine to restore onto holds data of its own (its own earlier restore of this backup).
    target = settings_factory()
    await restore(target, archive, passphrase=None)
    for replaced in target.data_dir.glob("replaced-*"):
        shutil.rmtree(replaced)
    spoil, code = DAMAGE[damage]
    spoil(archive, target)
    before = _state(target)
    with pytest.raises(ArchiveRefused) as refused:
        await restore(target, archive, passphrase=None)
    assert refused.value.code == code, refused.value.message
    assert _state(target) == before
    if code != "backup_foreign_appliance":
        with pytest.raises(ArchiveRefused):
            verify(target, archive, passphrase=None)


async def test_a_foreign_backup_restores_as_a_new_machine(
    classroom: Classroom, settings_factory: Callable[..., Settings]
) -> None:
    archive = await _backup(classroom)
    target = settings_factory()
    own = appliance_id.ensure(target.data_dir)
    result = await restore(target, archive, passphrase=None, as_new_machine=True)
    assert appliance_id.read(target.data_dir) == own
    assert result.replaced is None
    source = classroom.server.settings
    assert dump_db(target.db_path, exclude=HISTORY) == dump_db(source.db_path, exclude=HISTORY)


async def test_a_restore_refuses_while_a_server_runs_on_the_folder(classroom: Classroom) -> None:
    settings = classroom.server.settings
    archive = await _backup(classroom)
    before = dump_db(settings.db_path)
    with pytest.raises(Exception) as refused:
        await restore(settings, archive, passphrase=None)
    assert getattr(refused.value, "code", None) == "server_running"
    assert dump_db(settings.db_path) == before


async def test_the_manifest_says_what_the_archive_holds(classroom: Classroom) -> None:
    archive = await _backup(classroom)
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert names[0] == "db/labrunner.sqlite3" and names[-2:] == ["manifest.json", "manifest.json.sha256"]
    settings = classroom.server.settings
    assert manifest["appliance_id"] == appliance_id.read(settings.data_dir)
    assert manifest["schema_version"] == len(migrations.discover())
    assert manifest["format_version"] == 1 and manifest["app_version"]
    assert set(manifest["members"]) == set(names[:-2])
    conn = sqlite3.connect(settings.db_path)
    assert manifest["tables"]["users"] == conn.execute("SELECT count(*) FROM users").fetchone()[0]
    conn.close()
