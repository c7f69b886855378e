"""Numbered migrations: applied once, checksummed, snapshotted, refused when the DB is newer."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from appliance import migrations
from appliance.migrations import SCHEMA_DIR, MigrationError
from tests.conftest import REPO_ROOT

ADD_NOTES = "-- a later migration\nALTER TABLE users ADD COLUMN note TEXT;\nCREATE INDEX users_note ON users(note);\n"


@pytest.fixture
def schema_copy(tmp_path: Path) -> Path:
    """A copy of schema/ plus a second migration, so 'head' is beyond version 1."""
    target = tmp_path / "schema"
    shutil.copytree(SCHEMA_DIR, target)
    head = len(migrations.discover(target))
    (target / f"{head + 1:04d}_user_notes.sql").write_text(ADD_NOTES, encoding="utf-8")
    return target


def _insert_user(db: Path, username: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO users (username, password_hash, role, created_at) VALUES (?, 'x', 'student', '2026-01-01')",
            (username,),
        )


def _versions(db: Path) -> list[int]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]


def test_fresh_database_gets_every_migration_and_no_snapshot(tmp_path: Path) -> None:
    db, backups = tmp_path / "db.sqlite3", tmp_path / "backups"
    applied = migrations.migrate(db, backups)
    assert [m.version for m in applied] == [m.version for m in migrations.discover()]
    assert not backups.exists() or not any(backups.iterdir())  # nothing to protect on a new DB
    assert migrations.migrate(db, backups) == []  # each migration once
    assert _versions(db) == [m.version for m in applied]


def test_upgrade_keeps_data_and_snapshots_first(tmp_path: Path, schema_copy: Path) -> None:
    db, backups = tmp_path / "db.sqlite3", tmp_path / "backups"
    assert [m.version for m in migrations.migrate(db, backups, schema_copy, target=1)] == [1]
    _insert_user(db, "kept-alice")
    applied = migrations.migrate(db, backups, schema_copy)
    assert [m.name for m in applied][-1] == "user_notes"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT username, note FROM users").fetchall() == [("kept-alice", None)]
        columns = {row[1] for row in conn.execute("PRAGMA table_info(users)")}
    assert "note" in columns
    assert _versions(db) == list(range(1, len(migrations.discover(schema_copy)) + 1))
    snapshots = sorted(backups.glob("pre-migrate-v0001-*.sqlite3"))
    assert len(snapshots) == 1
    with sqlite3.connect(snapshots[0]) as conn:  # the snapshot is the database as it was before
        assert conn.execute("SELECT username FROM users").fetchall() == [("kept-alice",)]
        assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations")] == [1]


def test_failed_migration_rolls_back_completely(tmp_path: Path, schema_copy: Path) -> None:
    db, backups = tmp_path / "db.sqlite3", tmp_path / "backups"
    last = len(migrations.discover(schema_copy))
    migrations.migrate(db, backups, schema_copy, target=last - 1)
    _insert_user(db, "bob")
    broken = sorted(schema_copy.glob("*.sql"))[-1]
    broken.write_text("ALTER TABLE users ADD COLUMN note TEXT;\nINSERT INTO no_such_table VALUES (1);\n")
    with pytest.raises(sqlite3.OperationalError):
        migrations.migrate(db, backups, schema_copy)
    with sqlite3.connect(db) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(users)")}
        assert conn.execute("SELECT username FROM users").fetchall() == [("bob",)]
    assert "note" not in columns  # the first statement of the failed migration was undone too
    assert _versions(db) == list(range(1, last))


def test_edited_applied_migration_is_refused(tmp_path: Path, schema_copy: Path) -> None:
    db, backups = tmp_path / "db.sqlite3", tmp_path / "backups"
    migrations.migrate(db, backups, schema_copy)
    first = sorted(schema_copy.glob("0001_*.sql"))[0]
    first.write_text(first.read_text(encoding="utf-8") + "\n-- a harmless-looking edit\n", encoding="utf-8")
    with pytest.raises(MigrationError, match="edited"):
        migrations.migrate(db, backups, schema_copy)
    with pytest.raises(MigrationError, match="edited"):
        migrations.status(db, schema_copy)


def test_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    db, backups = tmp_path / "db.sqlite3", tmp_path / "backups"
    migrations.migrate(db, backups)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (999, 'future', 'x', 'now')"
        )
    with pytest.raises(MigrationError, match=r"\[999\].*newer"):
        migrations.migrate(db, backups)


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        ({"0001_a.sql": "SELECT 1;", "0003_c.sql": "SELECT 1;"}, "without gaps"),
        ({"1_bad-name.sql": "SELECT 1;"}, "NNNN_name"),
        ({"0001_a.sql": "CREATE TABLE t (x INTEGER"}, "incomplete"),
    ],
)
def test_malformed_schema_dir_is_refused(tmp_path: Path, files: dict[str, str], fragment: str) -> None:
    schema = tmp_path / "schema"
    schema.mkdir()
    for name, sql in files.items():
        (schema / name).write_text(sql, encoding="utf-8")
    with pytest.raises(MigrationError, match=fragment):
        migrations.migrate(tmp_path / "db.sqlite3", tmp_path / "backups", schema)


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABRUNNER_")}
    return subprocess.run(
        [sys.executable, "-m", "appliance", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env=env,
        check=False,
    )


def test_cli_migrate_and_status(tmp_path: Path) -> None:
    names = [f"{m.version:04d}_{m.name}" for m in migrations.discover()]
    before = _cli(tmp_path, "migrate", "--status")
    assert before.returncode == 0, before.stderr
    assert [line.split(":")[0] for line in before.stdout.splitlines()] == names
    assert all(line.endswith(": pending") for line in before.stdout.splitlines())

    applied = _cli(tmp_path, "migrate")
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines() == [f"applied {name}" for name in names]
    assert _cli(tmp_path, "migrate").stdout.strip() == "database is up to date"

    after = _cli(tmp_path, "migrate", "--status")
    assert after.returncode == 0, after.stderr
    assert all(": applied " in line for line in after.stdout.splitlines())

    with sqlite3.connect(tmp_path / "labrunner.sqlite3") as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', 'x', 'now')")
    refused = _cli(tmp_path, "migrate", "--status")
    assert refused.returncode == 2
    assert "newer" in refused.stderr and "Traceback" not in refused.stderr
