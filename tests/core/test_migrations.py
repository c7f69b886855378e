"""Numbered migrations: applied once, checksummed, snapshotted, refused when the DB is newer."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from appliance import migrations
from appliance.migrations import SCHEMA_DIR, MigrationError
from tests.runner.appliance_process import run_cli


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
        ({"0001_a.sql": "CREATE TABLE t (x INTEGER"}, "incomplete SQL"),
        # A wheel or binary built without the schema package: refused, not an empty database.
        ({}, "no migrations in .*installation of Labrunner is incomplete"),
    ],
)
def test_malformed_schema_dir_is_refused(tmp_path: Path, files: dict[str, str], fragment: str) -> None:
    schema = tmp_path / "schema"
    schema.mkdir()
    for name, sql in files.items():
        (schema / name).write_text(sql, encoding="utf-8")
    with pytest.raises(MigrationError, match=fragment):
        migrations.migrate(tmp_path / "db.sqlite3", tmp_path / "backups", schema)


def test_sqlite_runs_the_shared_files_as_written() -> None:
    """The PostgreSQL forms beside them change nothing on SQLite: same texts, same checksums."""
    files = sorted(SCHEMA_DIR.glob("*.sql"))
    assert (SCHEMA_DIR / migrations.POSTGRESQL_DIR).is_dir()
    assert [m.sql for m in migrations.discover()] == [path.read_text(encoding="utf-8") for path in files]


def test_postgresql_uses_its_own_forms_and_translates_the_rest() -> None:
    shared = {m.version: m for m in migrations.discover()}
    on_pg = {m.version: m for m in migrations.discover(dialect="postgresql")}
    assert [(m.version, m.name) for m in on_pg.values()] == [(m.version, m.name) for m in shared.values()]
    forms = {p.name for p in (SCHEMA_DIR / migrations.POSTGRESQL_DIR).glob("*.sql")}
    assert forms == {"0001_core.sql", "0008_tokens.sql", "0010_timestamps.sql", "0020_sync.sql"}
    assert on_pg[1].sql == (SCHEMA_DIR / migrations.POSTGRESQL_DIR / "0001_core.sql").read_text(encoding="utf-8")
    jobs = on_pg[2].sql
    assert "    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\n" in jobs
    assert "    user_id BIGINT NOT NULL REFERENCES users(id)" in jobs and "score DOUBLE PRECISION," in jobs
    assert "epoch seconds (REAL)" in jobs  # comments stay as written
    origins = on_pg[21].sql
    assert "problem_id BIGINT PRIMARY KEY REFERENCES problems(id)" in origins  # only `id` becomes an identity
    assert on_pg[2].checksum != shared[2].checksum


@pytest.mark.parametrize(
    ("sql", "translated"),
    [
        ("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, x REAL);", None),
        ("-- INTEGER and REAL in a comment\nCREATE TABLE t (s TEXT DEFAULT 'REAL INTEGER');", "same"),
    ],
)
def test_translation_touches_code_only(sql: str, translated: str | None) -> None:
    from appliance.schema_translation import to_postgresql

    expected = (
        "CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, n BIGINT, x DOUBLE PRECISION);"
        if translated is None
        else sql
    )
    assert to_postgresql(sql) == expected


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("CREATE TABLE t (name TEXT COLLATE NOCASE);", "COLLATE NOCASE"),
        ("CREATE TRIGGER t AFTER INSERT ON users BEGIN SELECT 1; END;", "trigger"),
        ("UPDATE users SET created_at = strftime('%s', 'now');", "SQLite function"),
        ("INSERT OR IGNORE INTO users (id) VALUES (1);", "INSERT OR"),
    ],
)
def test_sqlite_only_shared_migration_needs_a_postgresql_form(tmp_path: Path, sql: str, fragment: str) -> None:
    schema = tmp_path / "schema"
    schema.mkdir()
    (schema / "0001_a.sql").write_text(sql, encoding="utf-8")
    assert migrations.discover(schema)  # fine on SQLite
    with pytest.raises(MigrationError, match=rf"0001_a\.sql: .*{fragment}.*write its PostgreSQL form as postgresql/"):
        migrations.discover(schema, "postgresql")
    (schema / "postgresql").mkdir()
    (schema / "postgresql" / "0001_a.sql").write_text("SELECT 1;", encoding="utf-8")
    assert [m.sql for m in migrations.discover(schema, "postgresql")] == ["SELECT 1;"]


def test_postgresql_form_without_its_shared_migration_is_refused(tmp_path: Path) -> None:
    schema = tmp_path / "schema"
    (schema / "postgresql").mkdir(parents=True)
    (schema / "0001_a.sql").write_text("SELECT 1;", encoding="utf-8")
    (schema / "postgresql" / "0001_b.sql").write_text("SELECT 1;", encoding="utf-8")
    assert [m.name for m in migrations.discover(schema)] == ["a"]
    with pytest.raises(MigrationError, match=r"postgresql/0001_b\.sql: .*same number and name"):
        migrations.discover(schema, "postgresql")


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("--data-dir", str(data_dir), *args)


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


# Every timestamp column, which migration 0010 turns into the one stored form (appliance.clock).
TIME_COLUMNS = {
    "users": ["created_at"],
    "sessions": ["created_at", "expires_at"],
    "api_tokens": ["created_at", "revoked_at", "expires_at", "last_used_at"],
    "legal_documents": ["created_at"],
    "legal_acceptances": ["accepted_at"],
    "classes": ["created_at"],
    "class_members": ["added_at"],
    "problems": ["created_at", "updated_at", "tests_changed_at"],
    "test_cases": ["reveal_at"],
    "jobs": ["not_before", "lease_expires", "created_at", "started_at", "finished_at"],
    "files": ["created_at", "expires_at", "deleted_at"],
    "problem_assets": ["created_at"],
    "drafts": ["updated_at"],
}


def _old_iso(seconds: float) -> str:
    """Whole-second ISO text, as migrations 0001-0009 stored most times."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rows_in_old_forms(conn: sqlite3.Connection, now: float) -> dict[str, float]:
    """Rows as 0009 stored them: ISO text in most tables, epoch REAL in jobs and files, both in
    problems. Returns the epoch times written to jobs, by name."""
    day = 86400.0
    conn.executescript(
        "INSERT INTO users (id, username, password_hash, role, created_at) VALUES"
        " (1, 'ms-lee', 'x', 'teacher', '2026-03-01T09:30:05Z'), (2, 'kid', 'x', 'student', '2026-03-01T09:31:00Z');"
        "INSERT INTO legal_documents (kind, version, markdown, created_at)"
        " VALUES ('terms', '1', 't', '2026-03-01T09:00:00Z');"
        "INSERT INTO legal_acceptances VALUES (2, 'terms', '1', '2026-03-01T09:31:00Z');"
        "INSERT INTO classes VALUES (1, '7B', 1, 'ABCD2345', '2026-03-01T09:32:00Z');"
        "INSERT INTO class_members (class_id, user_id, added_at) VALUES (1, 2, '2026-03-01T09:33:00Z');"
    )
    conn.executemany(
        "INSERT INTO sessions VALUES (?, 2, ?, ?)",
        [("live", _old_iso(now - 60), _old_iso(now + 3600)), ("dead", _old_iso(now - 7200), _old_iso(now - 10))],
    )
    conn.executemany(
        "INSERT INTO api_tokens (user_id, name, token_hash, created_at, expires_at, last_used_at)"
        " VALUES (1, ?, ?, ?, ?, ?)",
        [
            ("live", "live-hash", _old_iso(now - day), _old_iso(now + day), _old_iso(now - 100)),
            ("dead", "dead-hash", _old_iso(now - 2 * day), _old_iso(now - 5), None),
        ],
    )
    # tests_changed_at keeps its REAL default 0: the table mixes both forms.
    conn.execute(
        "INSERT INTO problems (id, owner_id, title, statement, language, time_limit_ms, memory_limit_mb, comparison,"
        " created_at, updated_at) VALUES (1, 1, 'Sum', 's', 'python', 1000, 64, 'exact', ?, ?)",
        (_old_iso(now - 7200), _old_iso(now - 3600)),
    )
    conn.executemany(
        "INSERT INTO test_cases (problem_id, position, name, stdin, expected_stdout, visibility, reveal_at)"
        " VALUES (1, ?, ?, '', '', ?, ?)",
        [
            (1, "visible", "visible", None),
            (2, "revealed", "reveal_later", _old_iso(now - 60)),
            (3, "not yet", "reveal_later", _old_iso(now + 3600)),
            (4, "hidden", "hidden", None),
        ],
    )
    times = {
        "recent": now - 20.25,
        "recent_done": now - 19.5,
        "month_old": now - 40 * day,
        "month_old_done": now - 40 * day + 1.75,
        "lost": now - 70.125,
        "lost_started": now - 65.5,
        "lost_lease": now - 5.5,
        "live_lease": now + 600.0,
        "queued": now - 1.0625,
    }
    job = (
        "INSERT INTO jobs (id, kind, user_id, problem_id, language, code, code_hash, priority, status, created_at,"
        " started_at, finished_at, lease_owner, lease_expires)"
        " VALUES (?, ?, 2, ?, 'python', '', ?, 1, ?, ?, ?, ?, ?, ?)"
    )
    conn.executemany(
        job,
        [
            (1, "submission", 1, "h", "done", times["recent"], times["recent"], times["recent_done"], None, None),
            (2, "submission", 1, "old", "done", times["month_old"], None, times["month_old_done"], None, None),
            (
                3,
                "submission",
                1,
                "lost",
                "running",
                times["lost"],
                times["lost_started"],
                None,
                "w1",
                times["lost_lease"],
            ),
            (4, "run", None, "run", "running", times["queued"], times["queued"], None, "w2", times["live_lease"]),
            (5, "run", None, "queued", "queued", times["queued"], None, None, None, None),
        ],
    )
    conn.execute(
        "INSERT INTO job_tests (job_id, position, name, verdict, time_ms, stdout, stderr, stdout_blob)"
        " VALUES (2, 1, 't', 'accepted', 5, 'cut', '', 'old-output')"
    )
    conn.executemany(
        "INSERT INTO files (id, owner_id, name, kind, media_type, size, blob, created_at, expires_at, deleted_at)"
        " VALUES (?, 2, ?, 'text', 'text/plain', 1, ?, ?, ?, ?)",
        [
            ("expired", "a.txt", "blob-expired", now - 2 * day, now - 1, None),
            ("alive", "b.txt", "blob-alive", now - day, now + day, None),
            ("deleted", "c.txt", "blob-deleted", now - day, now + day, now - 100),
        ],
    )
    conn.execute(
        "INSERT INTO problem_assets (problem_id, name, kind, media_type, size, blob, created_at)"
        " VALUES (1, 'pic.png', 'image', 'image/png', 1, 'asset', '2026-03-01T09:40:00Z')"
    )
    conn.execute(
        "INSERT INTO drafts (user_id, problem_id, language, code, revision, updated_at)"
        " VALUES (2, 1, 'python', '', 1, '2026-03-01T09:50:00Z')"
    )
    return times


async def test_timestamps_are_converted_to_one_form_and_time_queries_still_hold(tmp_path: Path) -> None:
    from appliance.clock import DB_EPOCH, api_epoch, api_iso, epoch
    from appliance.db import SqliteDatabase
    from appliance.store import files as file_store
    from appliance.store import jobs as job_store
    from appliance.store import problems as problem_store
    from appliance.store import sessions as session_store
    from appliance.store.queue import SqliteJobStore, recent_latencies

    db_path, backups = tmp_path / "db.sqlite3", tmp_path / "backups"
    migrations.migrate(db_path, backups, target=9)
    now = time.time()
    with sqlite3.connect(db_path) as conn:
        times = _rows_in_old_forms(conn, now)
    conn.close()
    assert [m.name for m in migrations.migrate(db_path, backups, target=10)] == ["timestamps"]
    migrations.migrate(db_path, backups)  # the later ones too: the queries below are today's

    stored_form = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
    with sqlite3.connect(db_path) as conn:
        for table, columns in TIME_COLUMNS.items():
            for column in columns:
                values = conn.execute(f"SELECT typeof({column}), {column} FROM {table}").fetchall()
                assert values, (table, column)
                for kind, value in values:
                    assert kind == "null" or (kind == "text" and stored_form.fullmatch(value)), (table, column, value)
        assert conn.execute("SELECT created_at FROM users WHERE id = 1").fetchone() == ("2026-03-01T09:30:05.000000Z",)
        assert conn.execute("SELECT tests_changed_at FROM problems").fetchone() == (DB_EPOCH,)
        assert {row[0] for row in conn.execute("SELECT not_before FROM jobs")} == {DB_EPOCH}
        jobs = {
            row[0]: row[1:]
            for row in conn.execute("SELECT id, created_at, started_at, finished_at, lease_expires FROM jobs")
        }
        files = {row[0]: row[1:] for row in conn.execute("SELECT id, created_at, expires_at FROM files")}
        reveal = conn.execute("SELECT reveal_at FROM test_cases WHERE position = 2").fetchone()[0]
    conn.close()
    # Epoch seconds keep their sub-second part (to the microsecond); ISO text keeps its second.
    assert abs(epoch(jobs[1][0]) - times["recent"]) < 1e-5 and abs(epoch(jobs[2][2]) - times["month_old_done"]) < 1e-5
    assert abs(epoch(jobs[3][3]) - times["lost_lease"]) < 1e-5 and abs(epoch(files["alive"][1]) - (now + 86400)) < 1e-5
    assert api_iso(reveal) == _old_iso(now - 60)
    assert abs(api_epoch(jobs[3][0]) - times["lost"]) < 1e-5  # type: ignore[operator]

    db = SqliteDatabase(db_path)
    await db.open()
    try:
        # Session and token expiry.
        assert await session_store.user_for_session(db, "live") is not None
        assert await session_store.user_for_session(db, "dead") is None
        assert await session_store.user_for_token(db, "live-hash") is not None
        assert await session_store.user_for_token(db, "dead-hash") is None
        assert await session_store.purge_expired_sessions(db) == 1
        # Reveal dates: the past one shows, the future one does not.
        assert [t["name"] for t in await problem_store.student_tests(db, 1)] == ["visible", "revealed"]
        assert await problem_store.hidden_test_count(db, 1) == 2
        async with db.transaction() as conn:
            # The dedup window (the job is 20 s old, made after the problem last changed).
            duplicate = dict(user_id=2, problem_id=1, kind="submission", code_hash="h", language="python")
            assert await job_store.pending_duplicate(conn, **duplicate, since=time.time() - 30) == 1
            assert await job_store.pending_duplicate(conn, **duplicate, since=time.time() - 10) is None
            # Submission budgets count the submissions since a moment, with their times.
            recent = await job_store.recent_submissions(conn, 2, 1, time.time() - 3600)
            assert [round(t - now, 3) for t in recent] == [-70.125, -20.25]
            # Expiry purges: expired and deleted files; full outputs of month-old results.
            assert sorted(await file_store.delete_expired(conn, time.time(), 100)) == ["blob-deleted", "blob-expired"]
            assert await job_store.expire_full_outputs(conn, time.time() - 30 * 86400, 100) == (1, ["old-output"])
        # The queue: a migrated "no backoff" lets a job be claimed; an expired lease is requeued.
        store = SqliteJobStore(db, 1000, 64)
        claimed = await store.claim("w3", 60)
        assert claimed is not None and claimed.id == 5
        assert await store.requeue_expired(3) == [3]
        assert sorted(round(x, 3) for x in await recent_latencies(db)) == [0.75, 1.75]
    finally:
        await db.close()
