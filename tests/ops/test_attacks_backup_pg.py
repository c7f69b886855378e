# The fixtures of test_backup_restore_pg are imported to be reused: their names come back as arguments.
# ruff: noqa: F811
"""Attacks on backup, restore and the drill of a PostgreSQL store (red team, session 7).

The attacker hands the admin a crafted archive (unencrypted, or encrypted with a passphrase the
attacker chose): every member hash in it is right, because the attacker writes the manifest too.
A crafted archive must be refused with a clear code before anything changes: the live rows, the
blobs, the data folder and the database's schemas (no staging schema left behind). Also: a student
erased must not come back through a restore, and a restore must not run beside a server.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import subprocess
import tarfile
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pyrage
import pytest

from appliance import backups, clock, pg_backup
from appliance.backup_archive import DB_MEMBER, PG_INDEX, ArchiveRefused, ArchiveWriter
from appliance.errors import AppError
from appliance.restore import restore, verify
from appliance.settings import Settings
from appliance.store import pg_snapshots
from tests import dbaccess
from tests.conftest import LiveServer
from tests.ops.conftest import Classroom, blob_files
from tests.ops.test_backup_restore_pg import (  # noqa: F401 (fixtures)
    HISTORY,
    NewDatabase,
    _members,
    _schemas,
    _state,
    new_database,
    pg_classroom,
    pg_settings,
)

Members = dict[str, bytes]
Edit = Callable[[Members, dict[str, Any]], None]
# A crafted database part: refused as damaged (it does not load) or corrupt (not what it says).
CRAFTED = ("backup_db_damaged", "backup_corrupt")
ALICE_CREATED = "2026-01-01T00:00:00.000000Z"


def _base(pg_settings: Callable[..., Settings]) -> tuple[Settings, Path]:
    """An appliance with one student, its backup, and then a newcomer (live differs from the backup)."""
    settings = pg_settings()
    dbaccess.execute(
        settings,
        "INSERT INTO users (username, password_hash, role, created_at) VALUES ('alice', 'HASHALICE', 'student', ?)",
        (ALICE_CREATED,),
    )
    archive = backups.write_backup(settings, passphrase=None, now=clock.now()).archive
    dbaccess.execute(
        settings,
        "INSERT INTO users (username, password_hash, role, created_at) VALUES ('newcomer', 'x', 'student', ?)",
        (ALICE_CREATED,),
    )
    return settings, archive


def _rewrite(archive: Path, edit: Edit) -> None:
    """Rewrite `archive` after `edit(members, manifest)`, with a manifest whose hashes are all right."""
    members = _members(archive)
    manifest = json.loads(members.pop("manifest.json"))
    members.pop("manifest.json.sha256")
    manifest.pop("members")
    edit(members, manifest)
    folder = archive.parent / (archive.name + "-members")
    with archive.open("wb") as out:
        writer = ArchiveWriter(out)
        for name, data in members.items():
            path = folder / f"m{len(writer.members)}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            writer.add_file(name, path)
        writer.finish(manifest)


def _index(members: Members) -> dict[str, Any]:
    return json.loads(members[PG_INDEX])


def _put_index(members: Members, index: dict[str, Any]) -> None:
    members[PG_INDEX] = json.dumps(index).encode()


def _csv(table: str) -> str:
    return f"db/postgresql/{table}.csv"


def _set_fields(members: Members, table: str, match: str, **values: str) -> None:
    """Set fields of the first row of `table` containing `match` (a row without quoted commas)."""
    lines = members[_csv(table)].decode().split("\n")
    header = lines[0].split(",")
    for number, line in enumerate(lines[1:], 1):
        if match in line:
            fields = line.split(",")
            for column, value in values.items():
                fields[header.index(column)] = value
            lines[number] = ",".join(fields)
            break
    else:
        raise AssertionError(f"no row of {table} holds {match!r}")
    members[_csv(table)] = "\n".join(lines).encode()


def _replace_text(members: Members, table: str, old: bytes, new: bytes) -> None:
    assert old in members[_csv(table)]
    members[_csv(table)] = members[_csv(table)].replace(old, new, 1)


async def _assert_refused(settings: Settings, archive: Path, codes: tuple[str, ...] = CRAFTED) -> str:
    """The restore and the drill both refuse `archive` with one of `codes`; nothing changed."""
    before = _state(settings)
    with pytest.raises(ArchiveRefused) as refused:
        await restore(settings, archive, passphrase=None)
    assert refused.value.code in codes, refused.value.message
    assert _state(settings) == before
    with pytest.raises(ArchiveRefused) as drilled:
        verify(settings, archive, passphrase=None)
    assert drilled.value.code in codes, drilled.value.message
    assert _state(settings) == before
    return refused.value.code


# --- crafted tables.json -------------------------------------------------------------------------


def _rename_table(new: str) -> Edit:
    def edit(members: Members, manifest: dict[str, Any]) -> None:
        index = _index(members)
        for table in index["tables"]:
            if table["name"] == "users":
                table["name"] = new
        _put_index(members, index)
        manifest["tables"][new] = manifest["tables"].pop("users")

    return edit


def _extra_table(name: str) -> Edit:
    def edit(members: Members, manifest: dict[str, Any]) -> None:
        index = _index(members)
        index["tables"].append({"name": name, "columns": ["id"], "rows": 1})
        _put_index(members, index)
        manifest["tables"][name] = 1

    return edit


def _missing_table(members: Members, manifest: dict[str, Any]) -> None:
    index = _index(members)
    index["tables"] = [t for t in index["tables"] if t["name"] != "drafts"]
    _put_index(members, index)
    del manifest["tables"]["drafts"]
    del members[_csv("drafts")]


def _columns_of_users(change: Callable[[list[str]], list[str]]) -> Edit:
    """The users table's columns changed alike in the index and in the CSV header."""

    def edit(members: Members, manifest: dict[str, Any]) -> None:
        index = _index(members)
        [users] = [t for t in index["tables"] if t["name"] == "users"]
        old = list(users["columns"])
        users["columns"] = change(old)
        _put_index(members, index)
        lines = members[_csv("users")].decode().split("\n")
        lines[0] = ",".join(users["columns"])
        members[_csv("users")] = "\n".join(lines).encode()

    return edit


def _reordered(columns: list[str]) -> list[str]:
    return [columns[1], columns[0], *columns[2:]]


def _renamed(columns: list[str]) -> list[str]:
    return ["pw" if c == "password_hash" else c for c in columns]


def _extra_column(columns: list[str]) -> list[str]:
    return [*columns, "is_superuser"]


def _index_field(**values: Any) -> Edit:
    def edit(members: Members, manifest: dict[str, Any]) -> None:
        _put_index(members, {**_index(members), **values})

    return edit


def _huge_row_count(members: Members, manifest: dict[str, Any]) -> None:
    index = _index(members)
    for table in index["tables"]:
        if table["name"] == "users":
            table["rows"] = 10**30
    _put_index(members, index)
    manifest["tables"]["users"] = 10**30


def _schema_version(version: Any) -> Edit:
    def edit(members: Members, manifest: dict[str, Any]) -> None:
        _put_index(members, {**_index(members), "schema_version": version})
        manifest["schema_version"] = version

    return edit


INDEX_ATTACKS: dict[str, Edit] = {
    "a table name with a quote and a statement": _rename_table('users"; DROP TABLE users; --'),
    "a table name with a dot": _rename_table("public.users"),
    "a table name that climbs out of the folder": _rename_table("../../users"),
    "an extra table": _extra_table("evil"),
    "an extra table named like a path": _extra_table("../../x"),
    "a missing table": _missing_table,
    "the columns reordered": _columns_of_users(_reordered),
    "a column renamed": _columns_of_users(_renamed),
    "an extra column": _columns_of_users(_extra_column),
    "a huge row count": _huge_row_count,
    "an older schema version than the tables'": _schema_version(5),
    "tables not a list": _index_field(tables={"users": 1}),
    "a table entry not an object": _index_field(tables=["users"]),
    "a row count that is not a number": _index_field(
        tables=[{"name": "users", "columns": ["id"], "rows": "many"}],
    ),
    "no blob list": _index_field(blobs=None),
    "no schema version": _index_field(schema_version=None),
}


@pytest.mark.parametrize("attack", INDEX_ATTACKS)
async def test_a_crafted_export_index_is_refused(pg_settings: Callable[..., Settings], attack: str) -> None:
    settings, archive = _base(pg_settings)
    _rewrite(archive, INDEX_ATTACKS[attack])
    await _assert_refused(settings, archive)


async def test_a_member_path_that_climbs_out_is_refused(pg_settings: Callable[..., Settings]) -> None:
    settings, archive = _base(pg_settings)

    def edit(members: Members, manifest: dict[str, Any]) -> None:
        members["db/postgresql/../../x.csv"] = b"id\n1\n"

    _rewrite(archive, edit)
    await _assert_refused(settings, archive, ("backup_corrupt",))
    assert not (settings.data_dir / "x.csv").exists()


async def test_a_lie_in_the_migrations_table_is_refused_as_the_archives_fault(
    pg_settings: Callable[..., Settings],
) -> None:
    """An archive of tables at version N-1 whose schema_migrations rows claim N too: the staging
    migration skips N; the archive is what is wrong, not the live tables."""
    from appliance import migrations

    newest = len(migrations.discover())
    old = pg_settings(migrated=False)
    migrations.migrate(old.database_location, old.backup_dir, target=newest - 1)
    made = backups.write_backup(old, passphrase=None, now=clock.now()).archive
    [latest] = [m for m in migrations.discover(dialect="postgresql") if m.version == newest]

    def edit(members: Members, manifest: dict[str, Any]) -> None:
        row = f"{newest},{latest.name},{latest.checksum},2026-01-01T00:00:00Z\n".encode()
        members[_csv("schema_migrations")] += row
        index = _index(members)
        for table in index["tables"]:
            if table["name"] == "schema_migrations":
                table["rows"] += 1
        _put_index(members, index)
        manifest["tables"]["schema_migrations"] += 1

    _rewrite(made, edit)
    target = pg_settings()
    before = _state(target)
    with pytest.raises(AppError) as refused:
        await restore(target, made, passphrase=None, as_new_machine=True)
    assert refused.value.code in CRAFTED, (refused.value.code, refused.value.message)
    assert _state(target) == before


# --- crafted CSV ---------------------------------------------------------------------------------


def _csv_attack(change: Callable[[Members], None]) -> Edit:
    def edit(members: Members, manifest: dict[str, Any]) -> None:
        change(members)

    return edit


def _duplicate_alice(members: Members, manifest: dict[str, Any]) -> None:
    """A second row of alice's, as ALICE with another id (usernames are unique without case)."""
    lines = members[_csv("users")].decode().split("\n")
    header = lines[0].split(",")
    [alice] = [line.split(",") for line in lines if ",alice," in line]
    alice[header.index("id")], alice[header.index("username")] = "77", "ALICE"
    members[_csv("users")] += (",".join(alice) + "\n").encode()
    index = _index(members)
    for table in index["tables"]:
        if table["name"] == "users":
            table["rows"] += 1
    _put_index(members, index)
    manifest["tables"]["users"] += 1


CSV_ATTACKS: dict[str, Edit] = {
    "a role the check constraint refuses": _csv_attack(lambda m: _set_fields(m, "users", "alice", role="superuser")),
    "a row naming a missing parent": _csv_attack(lambda m: _set_fields(m, "users", "alice", created_by="999999")),
    "an extra field in a row": _csv_attack(lambda m: _replace_text(m, "users", b"HASHALICE", b"HASHALICE,extra")),
    "an embedded NUL": _csv_attack(lambda m: _replace_text(m, "users", b"HASHALICE", b"HASH\x00ALICE")),
    "malformed quoting": _csv_attack(lambda m: _replace_text(m, "users", b"HASHALICE", b'"HASHALICE')),
    "a header that is not the columns": _csv_attack(lambda m: _replace_text(m, "users", b"password_hash", b"pw")),
    "text in an integer column": _csv_attack(lambda m: _set_fields(m, "users", "alice", id="one")),
    "invalid UTF-8": _csv_attack(lambda m: _replace_text(m, "users", b"HASHALICE", b"HASH\xffALICE")),
    "a username differing only in case": _duplicate_alice,
}


@pytest.mark.parametrize("attack", CSV_ATTACKS)
async def test_crafted_rows_are_refused(pg_settings: Callable[..., Settings], attack: str) -> None:
    settings, archive = _base(pg_settings)
    _rewrite(archive, CSV_ATTACKS[attack])
    await _assert_refused(settings, archive)


async def test_rows_larger_than_the_manifest_says_are_refused(pg_settings: Callable[..., Settings]) -> None:
    settings, archive = _base(pg_settings)
    members = _members(archive)
    manifest = json.loads(members["manifest.json"])
    # Longer rows under the manifest's hash and size of the real ones (the manifest is untouched).
    members[_csv("users")] += b"9,bob,x,student,,,2026-01-01T00:00:00.000000Z,0,\n" * 10000
    with archive.open("wb") as out:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    assert manifest["members"][_csv("users")]["size"] < len(members[_csv("users")])
    await _assert_refused(settings, archive, ("backup_corrupt",))


def _raw_member(raw: bytes, member: tarfile.TarInfo) -> bytes:
    """A member's header and data blocks as they stand in the tar (a sparse member stores only
    its map's data; its `size` is the size it unpacks to)."""
    stored = sum(length for _, length in member.sparse) if member.sparse is not None else member.size
    return raw[member.offset : member.offset_data + -(-stored // 512) * 512]


def _file_member(name: str, data: bytes) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info.tobuf(tarfile.PAX_FORMAT) + data + bytes(-len(data) % 512)


def _add_sparse_bomb(archive: Path, work: Path, size: int) -> None:
    """Add to `archive` a GNU sparse blob member of a few blocks that unpacks to `size` zero bytes,
    listed in a manifest whose hashes are all right."""
    digest = hashlib.sha256(bytes(size)).hexdigest()
    name = f"blobs/{digest[:2]}/{digest[2:]}"
    hole = work / "hole"
    with hole.open("wb") as out:
        out.truncate(size)
    sparse = work / "sparse.tar"
    command = ["tar", "--format=gnu", "--sparse", "-cf", str(sparse), "-C", str(work), f"--transform=s,^hole$,{name},"]
    subprocess.run([*command, "hole"], check=True)
    assert sparse.stat().st_size < 64 << 10
    raw, sparse_raw = archive.read_bytes(), sparse.read_bytes()
    body = b""
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        for member in tar.getmembers():
            if not member.name.startswith("manifest.json"):
                body += _raw_member(raw, member)
    with tarfile.open(sparse) as tar:
        [member] = tar.getmembers()
        assert member.issparse()
        body += _raw_member(sparse_raw, member)
    manifest["members"][name] = {"sha256": digest, "size": size}
    manifest["blobs"] += 1
    text = json.dumps(manifest, indent=1, sort_keys=True).encode()
    body += _file_member("manifest.json", text)
    body += _file_member("manifest.json.sha256", hashlib.sha256(text).hexdigest().encode())
    archive.write_bytes(body + bytes(1024))
    assert archive.stat().st_size < 1 << 20


async def test_a_sparse_member_that_unpacks_far_larger_than_the_archive_is_refused(
    pg_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """A tar bomb: a GNU sparse member of a few blocks that unpacks to 32 MiB of zeros (it could
    as well say 1 TiB and fill the data disk). The writer never makes sparse members; the reader
    must not expand one (the same reader unpacks SQLite archives)."""
    settings, archive = _base(pg_settings)
    _add_sparse_bomb(archive, tmp_path, 32 << 20)
    await _assert_refused(settings, archive, ("backup_corrupt",))


async def test_an_encrypted_archive_with_an_absurd_work_factor_is_refused_at_once(
    pg_settings: Callable[..., Settings],
) -> None:
    """age with a passphrase the attacker chose: the scrypt work factor is in the attacker's header."""
    settings, archive = _base(pg_settings)
    sealed = pyrage.passphrase.encrypt(archive.read_bytes(), "told to the admin")
    lines = sealed.split(b"\n", 2)
    stanza = lines[1].split(b" ")
    assert stanza[1] == b"scrypt"
    stanza[-1] = b"40"
    encrypted = archive.with_name(archive.name + ".age")
    encrypted.write_bytes(b"\n".join([lines[0], b" ".join(stanza), lines[2]]))
    before = _state(settings)
    with pytest.raises(ArchiveRefused) as refused:
        await restore(settings, encrypted, passphrase="told to the admin")
    assert refused.value.code in ("backup_corrupt", "backup_wrong_passphrase")
    assert _state(settings) == before


# --- engine mismatches ---------------------------------------------------------------------------


def _claims_sqlite(members: Members, manifest: dict[str, Any]) -> None:
    manifest["database"] = "sqlite"


def _postgresql_with_a_sqlite_file(members: Members, manifest: dict[str, Any]) -> None:
    members[DB_MEMBER] = b"SQLite format 3\x00" + bytes(4080)


def _both(members: Members, manifest: dict[str, Any]) -> None:
    _claims_sqlite(members, manifest)
    _postgresql_with_a_sqlite_file(members, manifest)


def _engine_name(name: str) -> Edit:
    def edit(members: Members, manifest: dict[str, Any]) -> None:
        manifest["database"] = name

    return edit


ENGINE_ATTACKS: dict[str, Edit] = {
    "says sqlite, holds postgresql": _claims_sqlite,
    "says postgresql, holds a sqlite file too": _postgresql_with_a_sqlite_file,
    "says sqlite, holds both": _both,
    "names the engine in capitals": _engine_name("PostgreSQL"),
    "names no engine": _engine_name(""),
}


@pytest.mark.parametrize("attack", ENGINE_ATTACKS)
async def test_an_archive_lying_about_its_engine_is_refused(pg_settings: Callable[..., Settings], attack: str) -> None:
    settings, archive = _base(pg_settings)
    _rewrite(archive, ENGINE_ATTACKS[attack])
    await _assert_refused(settings, archive, ("backup_corrupt", "backup_other_engine"))


# --- identities ----------------------------------------------------------------------------------


async def test_an_id_at_the_top_of_its_range_is_refused_not_a_crash(pg_settings: Callable[..., Settings]) -> None:
    """Every hash right, every constraint kept: but the identity counter cannot be set past the id."""
    settings, archive = _base(pg_settings)
    top = str(2**63 - 1)
    _rewrite(archive, _csv_attack(lambda m: _set_fields(m, "users", "alice", id=top)))
    await _assert_refused(settings, archive)


async def test_restored_ids_never_collide_with_new_rows(pg_settings: Callable[..., Settings]) -> None:
    """Ids far past the counter in the archive: the counters follow them after the restore."""
    settings, archive = _base(pg_settings)
    _rewrite(archive, _csv_attack(lambda m: _set_fields(m, "users", "alice", id="500000")))
    await restore(settings, archive, passphrase=None)
    [(new_id,)] = dbaccess.execute(
        settings,
        "INSERT INTO users (username, password_hash, role, created_at) VALUES ('later', 'x', 'student', ?)"
        " RETURNING id",
        (ALICE_CREATED,),
    )
    assert new_id == 500001


async def test_an_admin_row_in_a_crafted_archive_is_the_archives_content(pg_settings: Callable[..., Settings]) -> None:
    """Noted, not refused: an archive is trusted content once its hashes match (a stolen or forged
    unencrypted archive can carry any admin). Only a shell user can restore (no HTTP route does)."""
    settings, archive = _base(pg_settings)
    _rewrite(archive, _csv_attack(lambda m: _set_fields(m, "users", "alice", role="admin")))
    await restore(settings, archive, passphrase=None)
    assert dbaccess.query(settings, "SELECT role FROM users WHERE username = 'alice'") == [("admin",)]


# --- the data lock, leftovers and the replaced rows -------------------------------------------------


async def test_a_restore_is_refused_while_a_server_runs_on_the_data_folder(
    new_database: NewDatabase, server_factory: Callable[..., Awaitable[LiveServer]]
) -> None:
    # new_database first: it is dropped after the server stopped (else the server's pool hangs).
    server = await server_factory(backup_time="", database_url=new_database(), app_options={})
    archive = backups.write_backup(server.settings, passphrase=None, now=clock.now()).archive
    before = dbaccess.dump_db(server.settings)
    with pytest.raises(AppError) as refused:
        await restore(server.settings, archive, passphrase=None)
    assert refused.value.code == "server_running"
    assert dbaccess.dump_db(server.settings) == before


async def test_a_restore_is_refused_while_a_server_runs_on_the_same_database(
    new_database: NewDatabase,
    server_factory: Callable[..., Awaitable[LiveServer]],
    settings_factory: Callable[..., Settings],
) -> None:
    """PostgreSQL: the database is shared, the data folder is not. A restore from another data
    folder (`labrunner --data-dir /tmp/x restore …` with the service's database_url) would swap
    the rows under the running server."""
    server = await server_factory(backup_time="", database_url=new_database(), app_options={})
    await server.make_user("student")
    archive = backups.write_backup(server.settings, passphrase=None, now=clock.now()).archive
    await server.make_user("student")
    before = dbaccess.dump_db(server.settings)
    elsewhere = settings_factory(database_url=server.settings.database_url)
    with pytest.raises(AppError) as refused:
        await restore(elsewhere, archive, passphrase=None, as_new_machine=True)
    assert refused.value.code == "server_running"
    assert dbaccess.dump_db(server.settings) == before


async def test_a_staging_schema_left_by_a_crash_does_not_outlive_the_next_restore(
    pg_settings: Callable[..., Settings],
) -> None:
    """A restore killed while staging leaves `labrunner_staging_<random>` with the archive's rows
    (an erased student's among them, perhaps); the next restore must not leave it lying there."""
    settings, archive = _base(pg_settings)
    left = pg_backup.STAGING_PREFIX + "0123456789ab"
    dbaccess.execute(settings, f'CREATE SCHEMA "{left}"')
    dbaccess.execute(settings, f'CREATE TABLE "{left}".users AS TABLE public.users')
    await restore(settings, archive, passphrase=None)
    assert [s for s in _schemas(settings) if s.startswith(pg_backup.STAGING_PREFIX)] == []


async def test_a_crash_inside_the_staging_leaves_no_schema_for_the_next_restore(
    pg_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same, with a real crash: the process dies (Crash stands in: no cleanup code may assume
    it runs) after the rows loaded, before the staging schema was dropped."""
    settings, archive = _base(pg_settings)

    async def dies(conn: Any, schema: str) -> None:
        raise Crash

    monkeypatch.setattr(pg_snapshots, "drop_schema", dies)
    monkeypatch.setattr(pg_snapshots, "row_counts", _raises_after_load(pg_snapshots.row_counts))
    with pytest.raises(Crash):
        await restore(settings, archive, passphrase=None)
    assert any(s.startswith(pg_backup.STAGING_PREFIX) for s in _schemas(settings))
    monkeypatch.undo()
    await restore(settings, archive, passphrase=None)
    assert [s for s in _schemas(settings) if s.startswith(pg_backup.STAGING_PREFIX)] == []


class Crash(BaseException):
    """The process dying (not KeyboardInterrupt, which would stop the test run)."""


def _raises_after_load(real: Callable[..., Awaitable[dict[str, int]]]) -> Callable[..., Awaitable[dict[str, int]]]:
    async def counts(conn: Any, schema: str) -> dict[str, int]:
        if schema.startswith(pg_backup.STAGING_PREFIX):
            raise Crash
        return await real(conn, schema)

    return counts


async def test_the_replaced_rows_stay_out_of_the_app_and_of_later_backups(pg_settings: Callable[..., Settings]) -> None:
    settings, archive = _base(pg_settings)
    result = await restore(settings, archive, passphrase=None)
    assert result.replaced_schema is not None
    kept = dbaccess.query(settings, f'SELECT username FROM "{result.replaced_schema}".users')
    assert ("newcomer",) in kept
    # The application's own schema does not see them (its search path never names the schema).
    assert dbaccess.query(settings, "SELECT count(*) FROM users WHERE username = 'newcomer'") == [(0,)]
    later = backups.write_backup(settings, passphrase=None, now=clock.now())
    members = _members(later.archive)
    assert b"newcomer" not in b"".join(members.values())
    assert set(later.tables) == {
        name
        for (name,) in dbaccess.query(settings, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    }


# --- erasures --------------------------------------------------------------------------------------


def _student_blobs(settings: Settings, user_id: int) -> set[str]:
    return {row[0] for row in dbaccess.query(settings, "SELECT blob FROM files WHERE owner_id = ?", (user_id,))}


async def _erase(classroom: Classroom) -> None:
    student = classroom.student
    erased = await classroom.teacher.post(
        f"/api/users/{student.user_id}/erase", json={"confirm_username": student.username}
    )
    assert erased.status == 200, erased


async def test_a_student_erased_after_the_backup_does_not_come_back_nor_their_files(
    pg_classroom: Classroom,
) -> None:
    settings = pg_classroom.server.settings
    student = pg_classroom.student
    theirs = _student_blobs(settings, student.user_id)
    assert theirs
    reply = await pg_classroom.admin.post("/api/admin/backups")
    assert reply.status == 201, reply
    archive = settings.backup_dir / reply.json["archive"]
    await _erase(pg_classroom)
    await pg_classroom.server.close()
    result = await restore(settings, archive, passphrase=None)
    assert result.erased_again == [student.user_id]
    assert student.username not in repr(dbaccess.dump_db(settings))
    assert not theirs & set(blob_files(settings.blob_dir))
    assert result.replaced is None or not theirs & set(blob_files(result.replaced / "blobs"))


async def test_a_backup_racing_an_erasure_restores_without_the_student(
    pg_classroom: Classroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export's snapshot is taken, then the erasure commits (and unlinks the student's blobs),
    then the export ends: the copy names files that are gone, so the backup takes it again. The
    archive passes its own drill, and restored, the student stays erased, their files gone."""
    settings = pg_classroom.server.settings
    student = pg_classroom.student
    theirs = _student_blobs(settings, student.user_id)
    in_snapshot, release = threading.Event(), threading.Event()
    real = pg_snapshots.referenced_blobs

    async def paused(conn: Any, schema: str) -> set[str]:
        if not in_snapshot.is_set():
            in_snapshot.set()
            assert release.wait(60)
        return await real(conn, schema)

    monkeypatch.setattr(pg_snapshots, "referenced_blobs", paused)
    backup = asyncio.ensure_future(pg_classroom.admin.post("/api/admin/backups"))
    assert await asyncio.to_thread(in_snapshot.wait, 60)
    erasing = asyncio.ensure_future(_erase(pg_classroom))
    # The erasure's transaction commits; its VACUUM FULL then waits for the export's locks.
    for _ in range(600):
        if dbaccess.query(settings, "SELECT count(*) FROM erasures WHERE user_id = ?", (student.user_id,)) == [(1,)]:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the erasure never committed")
    release.set()
    reply = await backup
    await erasing
    assert reply.status == 201, reply
    monkeypatch.setattr(pg_snapshots, "referenced_blobs", real)
    archive = settings.backup_dir / reply.json["archive"]
    # The first copy named files the erasure then removed: the backup took the copy again, after it.
    assert student.username.encode() not in b"".join(_members(archive).values())
    await pg_classroom.server.close()
    # The backup was reported made (201): its drill must pass too.
    drill = await asyncio.to_thread(verify, settings, archive, passphrase=None)
    assert drill["archive"] == archive.name
    await restore(settings, archive, passphrase=None)
    assert student.username not in repr(dbaccess.dump_db(settings, exclude=HISTORY))
    assert not theirs & set(blob_files(settings.blob_dir))
