"""The numbered migrations on PostgreSQL: every one applies, the result matches SQLite's schema
(the catalogue-parity test lists every deliberate difference), edited or newer histories and a
non-byte-order collation are refused, and the sync triggers log the same changes as on SQLite."""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from appliance import migrations
from appliance.migrations import MigrationError
from tests.dbaccess import execute
from tests.pg_cluster import PgCluster

_names = iter(range(1_000_000))


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """A new empty database."""
    return pg_cluster.create_database(f"migrations_{os.getpid()}_{next(_names)}")


# --- Applying, refusing.


def test_every_migration_applies_on_an_empty_database_once(pg_url: str, tmp_path: Path) -> None:
    expected = migrations.discover(dialect="postgresql")
    assert [s.migration for s in migrations.status(pg_url)] == expected
    assert all(state.applied_at is None for state in migrations.status(pg_url))
    applied = migrations.migrate(pg_url, tmp_path / "backups")
    assert [m.version for m in applied] == [m.version for m in expected]
    assert migrations.migrate(pg_url, tmp_path / "backups") == []
    # The checksum recorded is that of the text applied (the PostgreSQL form or the translation).
    recorded = execute(pg_url, "SELECT version, name, checksum FROM schema_migrations ORDER BY version")
    assert recorded == [(m.version, m.name, m.checksum) for m in expected]
    assert all(state.applied_at for state in migrations.status(pg_url))
    assert not (tmp_path / "backups").exists()  # no pre-migrate copy on PostgreSQL


def test_migrations_apply_one_by_one_as_an_upgrade_would(pg_url: str, tmp_path: Path) -> None:
    for version in range(1, len(migrations.discover()) + 1):
        assert [m.version for m in migrations.migrate(pg_url, tmp_path, target=version)] == [version]


async def test_migrate_works_from_inside_the_running_event_loop(pg_url: str, tmp_path: Path) -> None:
    # As the server's start-up calls it.
    assert migrations.migrate(pg_url, tmp_path)


def test_two_processes_migrating_at_once_apply_each_migration_once(pg_url: str, tmp_path: Path) -> None:
    results: list[object] = []

    def run() -> None:
        try:
            results.append(migrations.migrate(pg_url, tmp_path))
        except Exception as exc:  # reported below
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(r) if isinstance(r, list) else -1 for r in results) == [0, len(migrations.discover())], results


def test_failed_migration_rolls_back_completely(pg_url: str, tmp_path: Path, schema_copy: Path) -> None:
    last = len(migrations.discover(schema_copy))
    migrations.migrate(pg_url, tmp_path, schema_copy, target=last - 1)
    broken = sorted(schema_copy.glob("*.sql"))[-1]
    broken.write_text("ALTER TABLE users ADD COLUMN note TEXT;\nINSERT INTO no_such_table VALUES (1);\n")
    with pytest.raises(Exception, match="no_such_table"):
        migrations.migrate(pg_url, tmp_path, schema_copy)
    columns = execute(pg_url, "SELECT column_name FROM information_schema.columns WHERE table_name = 'users'")
    assert ("note",) not in columns
    assert execute(pg_url, "SELECT max(version) FROM schema_migrations") == [(last - 1,)]


@pytest.mark.parametrize("edited", ["postgresql/0001_core.sql", "0002_jobs.sql"])
def test_edited_applied_migration_is_refused(pg_url: str, tmp_path: Path, schema_copy: Path, edited: str) -> None:
    """Both a PostgreSQL form and a shared file that is translated are checksummed."""
    migrations.migrate(pg_url, tmp_path, schema_copy)
    path = schema_copy / edited
    path.write_text(path.read_text(encoding="utf-8") + "\n-- a harmless-looking edit\n", encoding="utf-8")
    with pytest.raises(MigrationError, match=r"migration 000\d_\w+\.sql was edited"):
        migrations.migrate(pg_url, tmp_path, schema_copy)
    with pytest.raises(MigrationError, match="edited"):
        migrations.status(pg_url, schema_copy)


def test_database_from_a_newer_version_is_refused(pg_url: str, tmp_path: Path) -> None:
    migrations.migrate(pg_url, tmp_path)
    execute(pg_url, "INSERT INTO schema_migrations VALUES (999, 'future', 'x', 'now')")
    with pytest.raises(MigrationError, match=r"\[999\].*newer"):
        migrations.migrate(pg_url, tmp_path)
    with pytest.raises(MigrationError, match=r"\[999\].*newer"):
        migrations.status(pg_url)


def test_database_without_byte_order_collation_is_refused(pg_cluster: PgCluster, tmp_path: Path) -> None:
    name = f"utf8_collation_{os.getpid()}"
    with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' TEMPLATE template0")
    url = pg_cluster.url(name)
    fix = re.escape(f"CREATE DATABASE {name} LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
    with pytest.raises(MigrationError, match=rf"collation 'C.UTF-8'.*byte order.*ISO times.*{fix}"):
        migrations.migrate(url, tmp_path)
    with pytest.raises(MigrationError, match="collation"):
        migrations.status(url)
    assert execute(url, "SELECT to_regclass('schema_migrations')") == [(None,)]  # nothing was written


# --- The sync triggers, on both engines.

# Every kind of change the 0020 triggers watch or deliberately ignore, in SQL both engines accept.
CHANGES = [
    "INSERT INTO users (username, password_hash, role, created_at) VALUES ('ms-lee', 'x', 'teacher', 't')",
    "INSERT INTO users (username, password_hash, role, created_at) VALUES ('kid', 'x', 'student', 't')",
    "UPDATE users SET birthdate = '2012-01-01' WHERE id = 2",  # not a synced column: no change
    "UPDATE users SET role = 'admin' WHERE id = 1",
    "INSERT INTO classes (name, owner_id, join_code, created_at) VALUES ('7B', 1, 'ABCD', 't')",
    "INSERT INTO class_members (class_id, user_id, added_at) VALUES (1, 2, 't')",
    "UPDATE classes SET join_code = 'EFGH'",  # not a synced column: no change
    "INSERT INTO problems (owner_id, title, statement, language, time_limit_ms, memory_limit_mb, comparison,"
    " created_at, updated_at) VALUES (1, 'Sum', 's', 'python', 1000, 64, 'exact', 't', 't')",
    "INSERT INTO test_cases (problem_id, position, name, stdin, expected_stdout, visibility)"
    " VALUES (1, 1, 'a', '', '', 'visible')",
    "INSERT INTO jobs (kind, user_id, language, code, code_hash, priority, status, created_at)"
    " VALUES ('run', 2, 'python', '', 'h', 1, 'queued', 't')",  # a run: no change
    "INSERT INTO jobs (kind, user_id, problem_id, language, code, code_hash, priority, status, created_at)"
    " VALUES ('submission', 2, 1, 'python', '', 'h', 1, 'queued', 't')",
    "UPDATE jobs SET lease_owner = 'w1'",  # a lease: no change
    "UPDATE jobs SET status = 'done', verdict = 'accepted'",  # the submission changes, the run does not
    "DELETE FROM class_members",
    "DELETE FROM users WHERE id = 2",  # cascades to the submission
]


# Per statement: the counter after it, and what it logged. Within one statement the order of the
# logged rows may differ: SQLite runs a cascade's triggers before the parent row's, PostgreSQL after
# (its AFTER triggers queue to the statement's end); one transaction commits them all the same.
_AFTER_EACH = (
    "SELECT (SELECT seq FROM sync_counter),"
    " (SELECT string_agg(entity || ' ' || local_id, ',') FROM (SELECT entity, local_id FROM sync_changes"
    "  WHERE seq > {last} ORDER BY entity, local_id) AS logged)"
)


def _sqlite_log(tmp_path: Path) -> list[tuple[Any, ...]]:
    db = tmp_path / "db.sqlite3"
    migrations.migrate(db, tmp_path / "backups")
    log: list[tuple[Any, ...]] = [(0, None)]
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        # SQLite's group_concat is string_agg.
        conn.create_aggregate("string_agg", 2, _StringAgg)
        for statement in CHANGES:
            conn.execute(statement)
            log.append(conn.execute(_AFTER_EACH.format(last=log[-1][0])).fetchone())
    conn.close()
    return log


class _StringAgg:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def step(self, value: str, separator: str) -> None:
        self.parts.append(value)
        self.separator = separator

    def finalize(self) -> str | None:
        return self.separator.join(self.parts) if self.parts else None


def test_sync_triggers_log_the_same_changes_as_on_sqlite(pg_url: str, tmp_path: Path) -> None:
    expected = _sqlite_log(tmp_path)
    migrations.migrate(pg_url, tmp_path)
    log: list[tuple[Any, ...]] = [(0, None)]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for statement in CHANGES:
            conn.execute(statement)
            row = conn.execute(_AFTER_EACH.format(last=log[-1][0])).fetchone()
            assert row is not None
            log.append(row)
    assert log == expected
    # Spelt out for a few: an insert bumps the counter and logs its thing; a change to a column no
    # bundle carries logs nothing; deleting a user logs its cascaded submission too.
    assert log[1] == (1, "user 1") and log[3] == (2, None) and log[-1][1] == "submission 2,user 2"


def test_usernames_are_unique_ignoring_ascii_case_as_on_sqlite(pg_url: str, tmp_path: Path) -> None:
    migrations.migrate(pg_url, tmp_path)
    insert = "INSERT INTO users (username, password_hash, role, created_at) VALUES (%s, 'x', 'student', 't')"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(insert, ("Ada",))
        conn.execute(insert, ("Émile",))
        conn.execute(insert, ("émile",))  # not ASCII: a different name, as with SQLite's NOCASE
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(insert, ("ADA",))
        assert conn.execute("SELECT id FROM users WHERE username = 'aDa'").fetchall() == [(1,)]


# --- Catalogue parity: what SQLite and PostgreSQL hold after every migration.


@dataclass
class Catalogue:
    # table -> [(column, type, not null, default, automatic id)], in column order
    columns: dict[str, list[tuple[str, str, bool, str | None, bool]]] = field(default_factory=dict)
    # (table, "primary key" | "unique", columns)
    keys: set[tuple[str, str, tuple[str, ...]]] = field(default_factory=set)
    # (table, columns, referenced table, referenced columns, on delete)
    foreign_keys: set[tuple[str, tuple[str, ...], str, tuple[str, ...], str]] = field(default_factory=set)
    # index -> (table, columns, unique, partial predicate)
    indexes: dict[str, tuple[str, tuple[str, ...], bool, str | None]] = field(default_factory=dict)
    checks: dict[str, int] = field(default_factory=dict)
    # trigger -> (table, event, UPDATE OF columns, WHEN condition, logged entity, its id column)
    triggers: dict[str, tuple[str, str, str | None, str | None, str, str]] = field(default_factory=dict)


# Declared types, by what they hold; a type missing here fails the comparison (PostgreSQL's
# 4-byte `real` or `integer` would be a translation gone wrong).
SQLITE_TYPES = {"INTEGER": "integer", "TEXT": "text", "REAL": "real"}
POSTGRESQL_TYPES = {"bigint": "integer", "text": "text", "citext": "text", "double precision": "real"}


def _expr(text: str | None) -> str | None:
    """An expression without casts, brackets, spaces and case: comparable across the engines."""
    if text is None:
        return None
    return re.sub(r"::[a-z ]+|[()\s]", "", text).lower()


_SQLITE_TRIGGER = re.compile(
    r"CREATE TRIGGER \w+ AFTER (?P<event>INSERT|UPDATE|DELETE)(?: OF (?P<cols>[\w, ]+?))? ON \w+\s+"
    r"(?:WHEN (?P<when>.+?)\s+)?BEGIN.*?VALUES \('(?P<entity>\w+)', (?:NEW|OLD)\.(?P<key>\w+),",
    re.DOTALL,
)
_PG_TRIGGER = re.compile(
    r"AFTER (?P<event>INSERT|UPDATE|DELETE)(?: OF (?P<cols>[\w, ]+?))? ON \S+ FOR EACH ROW"
    r"(?: WHEN (?P<when>.+?))? EXECUTE FUNCTION sync_touch\('(?P<entity>\w+)', '(?P<key>\w+)'\)"
)


def _trigger(match: re.Match[str] | None, table: str) -> tuple[str, str, str | None, str | None, str, str]:
    assert match is not None
    cols = match["cols"] and ",".join(c.strip() for c in match["cols"].split(","))
    return (table, match["event"], cols, _expr(match["when"]), match["entity"], match["key"])


def sqlite_catalogue(db: Path) -> Catalogue:
    cat = Catalogue()
    with sqlite3.connect(db) as conn:
        tables = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        for table, sql in tables:
            info = conn.execute(f"SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('{table}')")
            rows = info.fetchall()
            pk = [r[0] for r in sorted((r for r in rows if r[4]), key=lambda r: r[4])]
            rowid_alias = len(pk) == 1 and any(r[0] == pk[0] and r[1].upper() == "INTEGER" for r in rows)
            cat.columns[table] = [
                (name, SQLITE_TYPES[kind], bool(notnull) or name in pk, _expr(default), rowid_alias and name == pk[0])
                for name, kind, notnull, default, _ in rows
            ]
            cat.keys.add((table, "primary key", tuple(pk)))
            for index, origin in conn.execute(f"SELECT name, origin FROM pragma_index_list('{table}')"):
                if origin == "u":
                    columns = conn.execute(f"SELECT name FROM pragma_index_info('{index}') ORDER BY seqno").fetchall()
                    cat.keys.add((table, "unique", tuple(c[0] for c in columns)))
            fks: dict[int, list[tuple[Any, ...]]] = {}
            for row in conn.execute(
                f'SELECT id, seq, "table", "from", "to", on_delete FROM pragma_foreign_key_list(\'{table}\')'
            ):
                fks.setdefault(row[0], []).append(row)
            for parts in fks.values():
                parts.sort(key=lambda r: r[1])
                cat.foreign_keys.add(
                    (table, tuple(p[3] for p in parts), parts[0][2], tuple(p[4] for p in parts), parts[0][5].lower())
                )
            code = re.sub(r"--[^\n]*", "", sql)
            cat.checks[table] = len(re.findall(r"\bCHECK\s*\(", code, re.IGNORECASE))
        for name, table, sql in conn.execute(
            "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        ).fetchall():
            columns = conn.execute(f"SELECT name FROM pragma_index_info('{name}') ORDER BY seqno").fetchall()
            where = re.search(r"\bWHERE\b(.*)$", sql, re.DOTALL | re.IGNORECASE)
            unique = sql.upper().startswith("CREATE UNIQUE")
            cat.indexes[name] = (table, tuple(c[0] for c in columns), unique, _expr(where and where[1]))
        for name, table, sql in conn.execute("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'"):
            cat.triggers[name] = _trigger(_SQLITE_TRIGGER.search(sql), table)
    conn.close()
    return cat


def pg_catalogue(url: str) -> Catalogue:
    cat = Catalogue()
    with psycopg.connect(url) as conn:
        columns = conn.execute(
            "SELECT c.relname, a.attname, format_type(a.atttypid, NULL), a.attnotnull,"
            " pg_get_expr(d.adbin, d.adrelid), a.attidentity <> ''"
            " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
            " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace"
            " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY c.relname, a.attnum"
        ).fetchall()
        for table, name, kind, notnull, default, identity in columns:
            cat.columns.setdefault(table, []).append((name, POSTGRESQL_TYPES[kind], notnull, _expr(default), identity))
        constraints = conn.execute(
            "SELECT cl.relname, co.contype, co.conname,"
            " ARRAY(SELECT attname FROM unnest(co.conkey) WITH ORDINALITY k(n, i)"
            "       JOIN pg_attribute ON attrelid = co.conrelid AND attnum = k.n ORDER BY k.i),"
            " rc.relname,"
            " ARRAY(SELECT attname FROM unnest(co.confkey) WITH ORDINALITY k(n, i)"
            "       JOIN pg_attribute ON attrelid = co.confrelid AND attnum = k.n ORDER BY k.i),"
            " co.confdeltype"
            " FROM pg_constraint co JOIN pg_class cl ON cl.oid = co.conrelid"
            " LEFT JOIN pg_class rc ON rc.oid = co.confrelid"
            " WHERE cl.relnamespace = current_schema()::regnamespace"
        ).fetchall()
        on_delete = {"a": "no action", "r": "restrict", "c": "cascade", "n": "set null", "d": "set default"}
        for table, kind, _, cols, ref_table, ref_cols, deltype in constraints:
            if kind == "p":
                cat.keys.add((table, "primary key", tuple(cols)))
            elif kind == "u":
                cat.keys.add((table, "unique", tuple(cols)))
            elif kind == "f":
                cat.foreign_keys.add((table, tuple(cols), ref_table, tuple(ref_cols), on_delete[deltype]))
            elif kind == "c":
                cat.checks[table] = cat.checks.get(table, 0) + 1
        for table in cat.columns:
            cat.checks.setdefault(table, 0)
        indexes = conn.execute(
            "SELECT ic.relname, tc.relname, i.indisunique, pg_get_expr(i.indpred, i.indrelid),"
            " ARRAY(SELECT attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, o)"
            "       JOIN pg_attribute ON attrelid = i.indrelid AND attnum = k.n ORDER BY k.o)"
            " FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class tc ON tc.oid = i.indrelid"
            " WHERE tc.relnamespace = current_schema()::regnamespace"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint co WHERE co.conindid = i.indexrelid)"
        ).fetchall()
        for name, table, unique, predicate, cols in indexes:
            cat.indexes[name] = (table, tuple(cols), unique, _expr(predicate))
        triggers = conn.execute(
            "SELECT t.tgname, c.relname, pg_get_triggerdef(t.oid) FROM pg_trigger t"
            " JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal"
        ).fetchall()
        for name, table, definition in triggers:
            cat.triggers[name] = _trigger(_PG_TRIGGER.search(definition), table)
    return cat


# What differs on purpose, and why. Everything else must be equal.
# The time columns of 0002/0003/0007 hold ISO text: SQLite keeps text in a REAL column, PostgreSQL's
# 0010 makes them TEXT, and gives the two with a DEFAULT 0 the stored form of epoch 0.
TIME_COLUMNS_MADE_TEXT = {
    "jobs": ["not_before", "lease_expires", "created_at", "started_at", "finished_at"],
    "files": ["created_at", "expires_at", "deleted_at"],
    "problems": ["tests_changed_at"],
}
EPOCH_DEFAULT = {("jobs", "not_before"), ("problems", "tests_changed_at")}
# SQLite makes every single-column INTEGER PRIMARY KEY an automatic id (the rowid); on PostgreSQL
# only the `id` columns are identities: these keys are always given.
NOT_AUTOMATIC_ON_POSTGRESQL = {
    ("sync_counter", "id"),
    ("problem_origins", "problem_id"),
    ("schema_migrations", "version"),
}
# sessions.rowid: SQLite's hidden rowid made a column (store/exams.py orders sessions by it).
ONLY_ON_POSTGRESQL = {("sessions", "rowid")}


def _as_on_sqlite(pg: Catalogue) -> Catalogue:
    """The PostgreSQL catalogue with the deliberate differences undone."""
    for table, columns in pg.columns.items():
        undone = []
        for name, kind, notnull, default, auto in columns:
            if (table, name) in ONLY_ON_POSTGRESQL:
                continue
            if name in TIME_COLUMNS_MADE_TEXT.get(table, []):
                assert kind == "text", (table, name)
                kind = "real"
            if (table, name) in EPOCH_DEFAULT:
                assert default == "'1970-01-01t00:00:00.000000z'", (table, name, default)
                default = "0"
            if (table, name) in NOT_AUTOMATIC_ON_POSTGRESQL:
                assert not auto, (table, name)
                auto = True
            undone.append((name, kind, notnull, default, auto))
        pg.columns[table] = undone
    return pg


def test_postgresql_schema_matches_sqlite(pg_url: str, tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite3"
    migrations.migrate(db, tmp_path / "backups")
    migrations.migrate(pg_url, tmp_path / "backups")
    lite, pg = sqlite_catalogue(db), _as_on_sqlite(pg_catalogue(pg_url))
    assert len(lite.columns) > 40 and len(lite.triggers) == 23 and lite.indexes and lite.foreign_keys
    assert sorted(pg.columns) == sorted(lite.columns)
    for table in lite.columns:
        assert pg.columns[table] == lite.columns[table], table
    assert pg.keys == lite.keys
    assert pg.foreign_keys == lite.foreign_keys
    assert pg.indexes == lite.indexes
    assert pg.checks == lite.checks
    assert pg.triggers == lite.triggers
