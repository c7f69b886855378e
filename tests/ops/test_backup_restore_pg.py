"""Backups and restores of an appliance that keeps its data in PostgreSQL, against a real server
(the run's own cluster, whatever `--db` says, so the main run covers them): the archive is one
consistent moment while writers carry on; a restore gives every row and blob back, replaces a
database that moved on while keeping what it replaced, never logs the restored rows as sync
changes, erases again whom the replaced data had erased, migrates an older backup, and refuses a
bad, foreign, newer or other-engine archive before anything changes."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from appliance import appliance_id, backups, clock, migrations
from appliance.backup_archive import ArchiveRefused, ArchiveWriter
from appliance.restore import restore, verify
from appliance.settings import Settings
from appliance.store import pg_snapshots
from tests import dbaccess
from tests.conftest import REPO_ROOT, LiveServer
from tests.ops.conftest import PASSWORD, Classroom, blob_files, picture_sandbox, populate, upload
from tests.pg_cluster import PgCluster

# The job history differs by design: the restore settles the backup's own run and records itself.
HISTORY = ("job_runs",)
NewDatabase = Callable[..., str]


@pytest.fixture
def new_database(pg_cluster: PgCluster, pg_template: str) -> Iterator[NewDatabase]:
    """`new_database(migrated=True)`: the URL of a database of its own (a copy of the run's migrated
    template, or empty), dropped after the test."""
    made: list[str] = []

    def make(*, migrated: bool = True) -> str:
        name = f"pgbackup_{len(made)}_{threading.get_ident() % 10000}_{id(made) % 100000}"
        made.append(name)
        return pg_cluster.create_database(name, template=pg_template if migrated else None)

    yield make
    for name in made:
        pg_cluster.drop_database(name)


@pytest.fixture
def pg_settings(settings_factory: Callable[..., Settings], new_database: NewDatabase) -> Callable[..., Settings]:
    """Settings on a fresh data folder whose data lives in a new PostgreSQL database."""

    def make(*, migrated: bool = True, **overrides: Any) -> Settings:
        return settings_factory(database_url=new_database(migrated=migrated), **overrides)

    return make


@pytest.fixture
async def pg_classroom(
    server_factory: Callable[..., Awaitable[LiveServer]], new_database: NewDatabase, fast_passwords: None
) -> Classroom:
    server = await server_factory(
        app_options={"sandbox": picture_sandbox()}, backup_time="", database_url=new_database()
    )
    return await populate(server)


async def _backup(classroom: Classroom) -> Path:
    reply = await classroom.admin.post("/api/admin/backups")
    assert reply.status == 201, reply
    return classroom.server.settings.backup_dir / reply.json["archive"]


def _schemas(settings: Settings) -> list[str]:
    rows = dbaccess.query(settings, "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%' ORDER BY 1")
    return [row[0] for row in rows if row[0] != "information_schema"]


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def _csv_rows(members: dict[str, bytes], table: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(members[f"db/postgresql/{table}.csv"].decode())))


async def test_a_restore_into_a_fresh_database_gives_every_row_and_blob_back(
    pg_classroom: Classroom, pg_settings: Callable[..., Settings]
) -> None:
    source = pg_classroom.server.settings
    archive = await _backup(pg_classroom)
    before, blobs_before = dbaccess.dump_db(source, exclude=HISTORY), blob_files(source.blob_dir)
    assert blobs_before and all(before[t] for t in ("users", "jobs", "job_images", "files", "problem_assets", "drafts"))
    members = _members(archive)
    manifest = json.loads(members["manifest.json"])
    assert manifest["database"] == "postgresql" and "db/labrunner.sqlite3" not in members
    assert manifest["tables"]["users"] == len(before["users"]) == len(_csv_rows(members, "users"))
    assert manifest["schema_version"] == len(migrations.discover())

    fresh = pg_settings(migrated=False)  # not even migrated: the restore builds the tables first
    schemas = _schemas(fresh)
    result = await restore(fresh, archive, passphrase=None)
    assert result.replaced is None and result.migrated == []
    assert dbaccess.dump_db(fresh, exclude=HISTORY) == before
    assert blob_files(fresh.blob_dir) == blobs_before
    # The identity counters of the new tables were set past the restored ids.
    [(new_id,)] = dbaccess.execute(
        fresh,
        "INSERT INTO users (username, password_hash, role, created_at) VALUES ('later', 'x', 'student', ?)"
        " RETURNING id",
        ("2026-11-30T00:00:00.000000Z",),
    )
    assert new_id == max(row[0] for row in before["users"]) + 1
    assert appliance_id.read(fresh.data_dir) == appliance_id.read(source.data_dir)
    runs = {row[1]: row for row in dbaccess.dump_db(fresh)["job_runs"]}
    assert runs["backup"][5] == "ok" and runs["restore"][5] == "ok"
    # The staging schema is gone; the (empty) replaced rows are kept beside the live ones.
    assert _schemas(fresh) == sorted([*schemas, result.replaced_schema])
    # The drill loads the archive into a staging schema and drops it again, the live rows untouched
    # (its sync log too: the staging tables' triggers never reach the live tables).
    live = dbaccess.dump_db(fresh)
    assert verify(fresh, archive, passphrase=None)["blobs"] == len(blobs_before)
    assert _schemas(fresh) == sorted([*schemas, result.replaced_schema])
    assert dbaccess.dump_db(fresh) == live


def _write_users(settings: Settings, stop: threading.Event, going: threading.Event, written: list[int]) -> None:
    with psycopg.connect(str(settings.database_location), autocommit=True) as conn:
        while not stop.is_set():
            conn.execute(
                "INSERT INTO users (username, password_hash, role, created_at) VALUES (%s, 'x', 'student', %s)",
                (f"writer{len(written)}", "2026-11-30T00:00:00.000000Z"),
            )
            written.append(1)
            if len(written) == 50:
                going.set()


def test_a_backup_taken_while_writers_write_is_one_moment_of_the_data(pg_settings: Callable[..., Settings]) -> None:
    settings = pg_settings()
    stop, going, written = threading.Event(), threading.Event(), []
    writer = threading.Thread(target=_write_users, args=(settings, stop, going, written))
    writer.start()
    try:
        assert going.wait(60)
        before = len(written)
        result = backups.write_backup(settings, passphrase=None, now=clock.now())
        assert len(written) > before  # the writer kept writing while the tables were exported
    finally:
        stop.set()
        writer.join()
    members = _members(result.archive)
    users, changes = _csv_rows(members, "users"), _csv_rows(members, "sync_changes")
    [counter] = _csv_rows(members, "sync_counter")
    # Each user's insert logs its change and bumps the counter in the same transaction: in one
    # snapshot the three agree, whatever order the tables were exported in.
    assert {int(u["id"]) for u in users} == {int(c["local_id"]) for c in changes if c["entity"] == "user"}
    assert int(counter["seq"]) == max(int(c["seq"]) for c in changes)
    assert result.tables["users"] == len(users)


async def test_a_restore_replaces_a_database_that_moved_on_and_keeps_what_it_replaced(
    pg_classroom: Classroom, server_factory: Callable[..., Awaitable[LiveServer]]
) -> None:
    settings = pg_classroom.server.settings
    archive = await _backup(pg_classroom)
    at_backup, blobs_at_backup = dbaccess.dump_db(settings, exclude=HISTORY), blob_files(settings.blob_dir)
    # The appliance moves on: a new account, a new upload (a new blob), a submission.
    newcomer = await pg_classroom.server.make_user("student")
    uploaded = await pg_classroom.student.post("/api/files", data=upload(b"after the backup\n", "late.txt"))
    assert uploaded.status == 201, uploaded
    moved_on = dbaccess.dump_db(settings, exclude=HISTORY)
    assert moved_on["sync_counter"] != at_backup["sync_counter"]
    await pg_classroom.server.close()

    result = await restore(settings, archive, passphrase=None)
    # Every row as it was at the backup, the sync log and counter included: the restore's own
    # inserts were not logged as changes.
    assert dbaccess.dump_db(settings, exclude=HISTORY) == at_backup
    assert blob_files(settings.blob_dir) == blobs_at_backup
    # What was replaced is kept: the rows in their own schema, the blobs in the replaced folder.
    assert result.replaced_schema is not None and result.replaced is not None
    kept = dbaccess.query(settings, f'SELECT username FROM "{result.replaced_schema}".users')
    assert (newcomer.username,) in kept
    assert len(kept) == len(moved_on["users"])
    assert set(blob_files(result.replaced / "blobs")) > set(blobs_at_backup)
    # The identity counters start past the restored ids: the server takes new rows again.
    again = await server_factory(
        data_dir=settings.data_dir, backup_time="", database_url=settings.database_url, app_options={}
    )
    another = await again.make_user("student")
    assert another.user_id > max(row[0] for row in at_backup["users"])


async def test_a_student_erased_after_the_backup_is_erased_again(pg_classroom: Classroom) -> None:
    settings = pg_classroom.server.settings
    archive = await _backup(pg_classroom)
    student = pg_classroom.student
    erased = await pg_classroom.teacher.post(
        f"/api/users/{student.user_id}/erase", json={"confirm_username": student.username}
    )
    assert erased.status == 200, erased
    await pg_classroom.server.close()
    result = await restore(settings, archive, passphrase=None)
    assert result.erased_again == [student.user_id]
    rows = dbaccess.dump_db(settings)
    assert student.username not in repr(rows)
    [erasure] = rows["erasures"]
    assert erasure[1] == student.user_id


async def test_an_older_backup_restores_and_is_migrated(pg_settings: Callable[..., Settings]) -> None:
    newest = len(migrations.discover())
    old = pg_settings(migrated=False)
    migrations.migrate(old.database_location, old.backup_dir, target=newest - 2)
    dbaccess.execute(
        old,
        "INSERT INTO users (username, password_hash, role, created_at) VALUES ('oldtimer', 'x', 'teacher', ?)",
        ("2026-01-01T00:00:00.000000Z",),
    )
    made = backups.write_backup(old, passphrase=None, now=clock.now())
    assert made.schema_version == newest - 2

    target = pg_settings()
    result = await restore(target, made.archive, passphrase=None, as_new_machine=True)
    assert [name[:4] for name in result.migrated] == [f"{newest - 1:04d}", f"{newest:04d}"]
    assert dbaccess.query(target, "SELECT max(version) FROM schema_migrations") == [(newest,)]
    assert dbaccess.query(target, "SELECT role FROM users WHERE username = 'oldtimer'") == [("teacher",)]


def _flip_in(member: str, into: int) -> Callable[[Path, Settings], None]:
    def damage(archive: Path, settings: Settings) -> None:
        data = bytearray(archive.read_bytes())
        with tarfile.open(archive) as tar:
            data[tar.getmember(member).offset_data + into] ^= 0x01
        archive.write_bytes(bytes(data))

    return damage


def _foreign(archive: Path, settings: Settings) -> None:
    appliance_id.write(settings.data_dir, "f" * 32)


def _newer_schema(archive: Path, settings: Settings) -> None:
    """Replace the archive with a real backup of a database one migration ahead of this version."""
    schema = settings.data_dir.parent / (settings.data_dir.name + "-future-schema")
    shutil.copytree(migrations.SCHEMA_DIR, schema)
    version = len(migrations.discover()) + 1
    (schema / f"{version:04d}_future.sql").write_text("CREATE TABLE from_the_future (id INTEGER PRIMARY KEY);\n")
    future = Settings(**{**settings.__dict__, "database_url": settings.database_url.replace("?", "_future?", 1)})
    name = future.database_url.split("@/", 1)[1].split("?", 1)[0]
    dbaccess.execute(settings, f'CREATE DATABASE "{name}"')
    migrations.migrate(future.database_location, future.backup_dir, schema)
    made = backups.write_backup(future, passphrase=None, now=clock.now()).archive
    shutil.copyfile(made, archive)
    dbaccess.execute(settings, f'DROP DATABASE "{name}" WITH (FORCE)')


def _sqlite_archive(archive: Path, settings: Settings) -> None:
    """Replace the archive with a backup of a SQLite appliance of the same id."""
    other = Settings(**{**settings.__dict__, "database_url": "", "data_dir": settings.data_dir.parent / "sqlite-one"})
    other.data_dir.mkdir()
    migrations.migrate(other.db_path, other.backup_dir)
    appliance_id.write(other.data_dir, appliance_id.read(settings.data_dir) or "")
    shutil.copyfile(backups.write_backup(other, passphrase=None, now=clock.now()).archive, archive)


def _rows_that_break_a_key(archive: Path, settings: Settings) -> None:
    """A well-formed archive (every hash right) whose users table holds one row twice."""
    members = _members(archive)
    manifest = json.loads(members.pop("manifest.json"))
    members.pop("manifest.json.sha256")
    users = members["db/postgresql/users.csv"]
    members["db/postgresql/users.csv"] = users + users.splitlines(keepends=True)[-1]
    folder = settings.data_dir.parent / (settings.data_dir.name + "-rehashed")
    with archive.open("wb") as out:
        writer = ArchiveWriter(out)
        for name, data in members.items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            writer.add_file(name, path)
        writer.finish({k: v for k, v in manifest.items() if k != "members"})


DAMAGE: dict[str, tuple[Callable[[Path, Settings], None], str]] = {
    "rows that break a key, with every hash right": (_rows_that_break_a_key, "backup_db_damaged"),
    "a byte flipped in a table's rows": (_flip_in("db/postgresql/users.csv", 60), "backup_corrupt"),
    "a byte flipped in the export's index": (_flip_in("db/postgresql/tables.json", 40), "backup_corrupt"),
    "another appliance's": (_foreign, "backup_foreign_appliance"),
    "from a newer schema": (_newer_schema, "backup_newer_schema"),
    "a SQLite appliance's": (_sqlite_archive, "backup_other_engine"),
}


def _state(settings: Settings) -> tuple[Any, ...]:
    # Lock files come and go with every restore attempt.
    files = sorted(p.name for p in settings.data_dir.iterdir() if p.suffix != ".lock")
    return dbaccess.dump_db(settings), blob_files(settings.blob_dir), files, _schemas(settings)


@pytest.mark.parametrize("damage", DAMAGE)
async def test_a_bad_archive_is_refused_before_anything_changes(
    pg_classroom: Classroom, pg_settings: Callable[..., Settings], damage: str
) -> None:
    archive = await _backup(pg_classroom)
    # The database to restore onto holds data of its own (its own earlier restore of this backup).
    target = pg_settings()
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
        with pytest.raises(ArchiveRefused) as drilled:
            verify(target, archive, passphrase=None)
        assert drilled.value.code == code
        assert _state(target) == before


async def test_an_encrypted_backup_needs_its_passphrase(
    pg_classroom: Classroom, pg_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(backups.PASSPHRASE_ENV, "correct horse")
    archive = await _backup(pg_classroom)
    monkeypatch.delenv(backups.PASSPHRASE_ENV)
    raw = archive.read_bytes()
    assert raw.startswith(b"age-encryption.org/v1\n") and b"db/postgresql" not in raw

    target = pg_settings()
    before = _state(target)
    for passphrase, code in ((None, "backup_passphrase_required"), ("wrong horse", "backup_wrong_passphrase")):
        with pytest.raises(ArchiveRefused) as refused:
            await restore(target, archive, passphrase=passphrase)
        assert refused.value.code == code
        assert _state(target) == before
    await restore(target, archive, passphrase="correct horse")
    source = pg_classroom.server.settings
    assert dbaccess.dump_db(target, exclude=HISTORY) == dbaccess.dump_db(source, exclude=HISTORY)


async def test_the_dashboard_reports_the_databases_size(pg_classroom: Classroom) -> None:
    scraper = pg_classroom.admin.with_token(await pg_classroom.admin.create_token("prometheus"))
    reply = await scraper.get("/metrics")
    assert reply.status == 200, reply
    [line] = [line for line in reply.text.splitlines() if line.startswith("labrunner_db_bytes ")]
    size = dbaccess.query(pg_classroom.server.settings, "SELECT pg_database_size(current_database())")[0][0]
    # The size of this database (it grows by a page or so between the two looks).
    assert size // 2 < float(line.split()[1]) <= size


async def test_an_unreachable_database_is_said_plainly(tmp_path: Path) -> None:
    from appliance.errors import AppError
    from appliance.settings import load_settings

    url = "postgresql://nobody@/nothing?host=/nonexistent"
    settings = load_settings(data_dir=tmp_path, overrides={"database_url": url}, environ={})
    with pytest.raises(AppError) as refused:
        backups.write_backup(settings, passphrase=None, now=clock.now())
    assert refused.value.code == "database_unavailable"
    assert not list(settings.backup_dir.glob("*.tar*"))


async def test_a_failure_inside_the_swap_leaves_everything_as_it_was(
    pg_classroom: Classroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = pg_classroom.server.settings
    archive = await _backup(pg_classroom)
    await pg_classroom.server.make_user("student")  # the live data differs from the backup's
    await pg_classroom.server.close()
    before = _state(settings)
    real = pg_snapshots._set_triggers

    async def fail_at_the_end(conn: Any, schema: str, tables: Any, *, enabled: bool) -> None:
        if enabled and schema == "public":  # the swap's last step, inside its transaction
            raise RuntimeError("the server went away")
        await real(conn, schema, tables, enabled=enabled)

    monkeypatch.setattr(pg_snapshots, "_set_triggers", fail_at_the_end)
    with pytest.raises(RuntimeError):
        await restore(settings, archive, passphrase=None)
    assert _state(settings) == before


async def test_an_upgrade_exports_the_tables_first(pg_settings: Callable[..., Settings]) -> None:
    newest = len(migrations.discover())
    settings = pg_settings(migrated=False)
    migrations.migrate(settings.database_location, settings.backup_dir, target=newest - 1)
    assert not settings.backup_dir.exists()  # an empty database has nothing to keep
    dbaccess.execute(
        settings,
        "INSERT INTO users (username, password_hash, role, created_at) VALUES ('before_upgrade', 'x', 'admin', ?)",
        ("2026-01-01T00:00:00.000000Z",),
    )
    assert [m.version for m in migrations.migrate(settings.database_location, settings.backup_dir)] == [newest]
    [export] = settings.backup_dir.glob(f"pre-migrate-v{newest - 1:04d}-*.pgexport")
    members = _members(export)
    index = json.loads(members.pop("tables.json"))
    assert index["schema_version"] == newest - 1
    users = list(csv.DictReader(io.StringIO(members["users.csv"].decode())))
    assert [u["username"] for u in users] == ["before_upgrade"]
    assert {t["name"] for t in index["tables"]} == {name.removesuffix(".csv") for name in members}


def _cli(data_dir: Path, url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`labrunner --data-dir DATA_DIR ARGS…` on the PostgreSQL database `url` ("": the SQLite file)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABRUNNER_")}
    env.update({"LABRUNNER_DATABASE_URL": url, "LABRUNNER_LAN_ANNOUNCE": "false", "PYTHONIOENCODING": "utf-8"})
    return subprocess.run(
        [sys.executable, "-m", "appliance", "--data-dir", str(data_dir), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        env=env,
        check=False,
    )


def test_backup_verify_and_restore_from_the_command_line(tmp_path: Path, new_database: NewDatabase) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    source_url, target_url = new_database(migrated=False), new_database(migrated=False)
    create = ("users", "create", "--role", "admin", "--username", "boss", "--password-stdin")
    made = _cli(source, source_url, *create, stdin=PASSWORD)
    assert made.returncode == 0, made.stderr
    phrase = "a secret phrase\n"
    backup = _cli(source, source_url, "backup", "--passphrase-stdin", stdin=phrase)
    assert backup.returncode == 0 and "users 1" in backup.stdout, backup
    archive = next((source / "backups").glob("labrunner-backup-*.tar.age"))
    drill = _cli(source, source_url, "backup", "--verify", str(archive), "--passphrase-stdin", stdin=phrase)
    assert drill.returncode == 0 and drill.stdout.startswith("OK: "), drill
    restored = _cli(target, target_url, "restore", str(archive), "--passphrase-stdin", stdin=phrase)
    assert restored.returncode == 0 and "kept in schema replaced_" in restored.stdout, restored
    assert dbaccess.query(target_url, "SELECT username FROM users") == [("boss",)]
    # A SQLite appliance refuses it: the archive holds PostgreSQL's data.
    other = _cli(tmp_path / "sqlite", "", "restore", str(archive), "--passphrase-stdin", stdin=phrase)
    assert other.returncode == 1 and "backup_other_engine" in other.stderr, other
