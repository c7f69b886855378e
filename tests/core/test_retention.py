"""Retention purges against a real database and blob store, with a fake clock: exactly the rows and
blobs past policy go, minors and adults apart, by each user's age on the day of the purge."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from appliance import migrations, retention
from appliance.blobs import BlobStore
from appliance.clock import age_on, to_db
from appliance.db import open_database
from appliance.settings import Settings
from appliance.store import jobs as job_store
from tests import dbaccess
from tests.conftest import SYNC_CHANGE_LOG, dump_db

# The fake clock: the purge runs as of this moment.
AT = datetime(2030, 6, 15, 12, 0, tzinfo=UTC)
MINOR = "2015-01-01"
ADULT = "1990-01-01"
# Turns 18 on the day of the purge: the adult policy applies to them that day.
EIGHTEEN_TODAY = "2012-06-15"
# Turns 18 the day after: still a minor.
EIGHTEEN_TOMORROW = "2012-06-16"
PURGE_BOOKKEEPING = ("retention_purges", *SYNC_CHANGE_LOG)


def ago(days: float) -> str:
    return to_db(AT - timedelta(days=days))


@dataclass
class Appliance:
    """A migrated data folder filled row by row, as the appliance would have stored it."""

    settings: Settings
    blobs: BlobStore
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _column_names: dict[str, list[str]] = field(default_factory=dict)

    def blob(self, label: str) -> str:
        return self.blobs.put(f"{label} {next(self._names)}".encode())

    def insert(self, table: str, **values: Any) -> Any:
        """Insert one row; its `id` (None for a table without one)."""
        names = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        returning = " RETURNING id" if "id" in self._columns(table) else ""
        sql = f"INSERT INTO {table} ({names}) VALUES ({marks}){returning}"
        rows = dbaccess.execute(self.settings, sql, tuple(values.values()))
        return rows[0][0] if returning else None

    def _columns(self, table: str) -> list[str]:
        if table not in self._column_names:
            self._column_names[table] = dbaccess.columns(self.settings, table)
        return self._column_names[table]

    def user(self, birthdate: str | None, role: str = "student") -> int:
        name = f"{role}{next(self._names)}"
        return self.insert(
            "users", username=name, password_hash="x", role=role, birthdate=birthdate, created_at=ago(1000)
        )

    def job(
        self,
        user_id: int,
        kind: str,
        days: float,
        *,
        problem_id: int | None = None,
        status: str = "done",
        rejudge_of: int | None = None,
        output_blob: str | None = None,
        image_blob: str | None = None,
        files: tuple[tuple[str | None, str], ...] = (),
    ) -> int:
        job_id = self.insert(
            "jobs",
            kind=kind,
            user_id=user_id,
            problem_id=problem_id,
            rejudge_of=rejudge_of,
            language="python",
            code=f"print({days})",
            code_hash=f"hash{days}",
            stdin="some input",
            priority=1,
            status=status,
            verdict="accepted" if status == "done" else None,
            score=100.0 if status == "done" else None,
            compile_output="compiled",
            created_at=ago(days),
            finished_at=ago(days - 0.001) if status == "done" else None,
        )
        # What a submission's test was judged against (a run has no test data).
        test_blobs = {} if kind == "run" else {"stdin_blob": self.blob("stdin"), "expected_blob": self.blob("expected")}
        self.insert(
            "job_tests",
            job_id=job_id,
            position=1,
            name="t1",
            verdict="accepted",
            time_ms=5,
            stdout="printed",
            stderr="warned",
            stdout_blob=output_blob,
            stderr_blob=None,
            full_output_bytes=100 if output_blob else 0,
            **test_blobs,
        )
        if image_blob:
            self.insert(
                "job_images",
                job_id=job_id,
                position=1,
                idx=1,
                kind="still",
                media_type="image/png",
                label="frame",
                width=1,
                height=1,
                blob=image_blob,
            )
        for position, (file_id, digest) in enumerate(files, start=1):
            self.insert(
                "job_files", job_id=job_id, position=position, file_id=file_id, name="data.txt", size=3, blob=digest
            )
        return job_id

    def file(self, owner: int, days: float) -> tuple[str, str]:
        file_id, digest = f"file{next(self._names)}", self.blob("upload")
        self.insert(
            "files",
            id=file_id,
            owner_id=owner,
            name="data.txt",
            kind="text",
            media_type="text/plain",
            size=3,
            blob=digest,
            created_at=ago(days),
            expires_at=to_db(AT + timedelta(days=1000)),
        )
        return file_id, digest


@contextmanager
def filled(settings: Settings) -> Iterator[Appliance]:
    migrations.migrate(settings.database_location, settings.backup_dir)
    yield Appliance(settings, BlobStore(settings.blob_dir))


async def run_purge(appliance: Appliance, at: datetime = AT) -> list[dict[str, Any]]:
    db = open_database(appliance.settings.database_location)
    await db.open()
    try:
        return await retention.purge(db, appliance.blobs, appliance.settings, at=at)
    finally:
        await db.close()


class Expect:
    """The dump as it should be after the purge, made from the dump before it by naming each change."""

    def __init__(self, settings: Settings, before: dict[str, list[tuple[Any, ...]]]) -> None:
        self.settings = settings
        self.tables = {table: [list(row) for row in rows] for table, rows in before.items()}

    def _rows(self, table: str, where: Callable[[dict[str, Any]], bool]) -> list[list[Any]]:
        names = dbaccess.columns(self.settings, table)
        return [row for row in self.tables[table] if where(dict(zip(names, row, strict=True)))]

    def delete(self, table: str, where: Callable[[dict[str, Any]], bool], *, some: bool = True) -> None:
        doomed = {id(row) for row in self._rows(table, where)}
        assert doomed or not some, f"the test's data has no such {table} row"
        self.tables[table] = [row for row in self.tables[table] if id(row) not in doomed]

    def update(self, table: str, where: Callable[[dict[str, Any]], bool], **values: Any) -> None:
        names = dbaccess.columns(self.settings, table)
        found = self._rows(table, where)
        assert found, f"the test's data has no such {table} row"
        for row in found:
            for name, value in values.items():
                row[names.index(name)] = value

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        return {table: sorted((tuple(row) for row in rows), key=repr) for table, rows in self.tables.items()}


def job_in(*ids: int) -> Callable[[dict[str, Any]], bool]:
    return lambda row: row.get("job_id", row.get("id")) in ids


STRIPPED_TESTS = {"stdout": "", "stderr": "", "stdout_blob": None, "stderr_blob": None, "full_output_bytes": 0}


# Every policy, and how many rows and blobs the test's data has past it.
EXPECTED_AUDIT = {
    ("minor", "submissions"): (1, 5),
    ("minor", "runs"): (2, 2),
    ("minor", "submission_content"): (1, 2),
    ("minor", "files"): (1, 1),
    ("minor", "drafts"): (1, 0),
    ("adult", "outputs"): (3, 4),
    ("everyone", "tokens"): (2, 0),
    ("everyone", "sessions"): (1, 0),
    ("everyone", "blobs"): (0, 1),
}


# One row per batch, too: a batch ending between the rows one rule takes must not lose any.
@pytest.mark.parametrize("batch_rows", [1, 200])
async def test_exactly_the_rows_and_blobs_past_policy_go(
    settings_factory: Callable[..., Settings], batch_rows: int
) -> None:
    with filled(settings_factory(retention_batch_rows=batch_rows)) as a:
        await check_purge(a)


async def check_purge(a: Appliance) -> None:
    minor, adult, teacher = a.user(MINOR), a.user(ADULT), a.user(None, role="teacher")
    turned_18, turns_18_tomorrow = a.user(EIGHTEEN_TODAY), a.user(EIGHTEEN_TOMORROW)
    problem = a.insert(
        "problems",
        owner_id=teacher,
        title="p",
        statement="s",
        language="python",
        time_limit_ms=1000,
        memory_limit_mb=64,
        comparison="exact",
        created_at=ago(1000),
        updated_at=ago(1000),
    )
    shared = a.blob("an asset that a minor's program also printed")
    a.insert(
        "problem_assets",
        problem_id=problem,
        name="a.png",
        kind="png",
        media_type="image/png",
        size=1,
        blob=shared,
        created_at=ago(1000),
    )
    # A minor's files: one only a submission past policy used, one a kept submission uses, a new one.
    old_file, old_file_blob = a.file(minor, 100)
    kept_file, kept_file_blob = a.file(minor, 60)
    new_file, new_file_blob = a.file(minor, 10)

    # The minor's jobs.
    minor_old_run = a.job(
        minor, "run", 40, output_blob=shared, image_blob=a.blob("picture"), files=((new_file, new_file_blob),)
    )
    minor_new_run = a.job(minor, "run", 10, output_blob=a.blob("output"))
    minor_stuck_run = a.job(minor, "run", 40, status="queued")
    minor_sub = a.job(
        minor,
        "submission",
        100,
        problem_id=problem,
        output_blob=a.blob("output"),
        image_blob=a.blob("picture"),
        files=((old_file, old_file_blob),),
    )
    minor_ancient = a.job(minor, "submission", 400, problem_id=problem, output_blob=a.blob("output"))
    ancient_rejudge = a.job(minor, "rejudge", 10, problem_id=problem, rejudge_of=minor_ancient)
    a.insert(
        "submission_comments", job_id=minor_ancient, author_id=teacher, body="b", created_at=ago(1), updated_at=ago(1)
    )
    a.insert(
        "submission_comments", job_id=minor_sub, author_id=teacher, body="kept", created_at=ago(1), updated_at=ago(1)
    )
    minor_new_sub = a.job(minor, "submission", 5, problem_id=problem, files=((kept_file, kept_file_blob),))
    a.insert("drafts", user_id=minor, problem_id=problem, language="python", code="x", revision=1, updated_at=ago(40))
    a.insert("drafts", user_id=minor, problem_id=None, language="python", code="y", revision=1, updated_at=ago(3))

    # The adults: old outputs go, the code and verdicts stay; younger ones are untouched.
    adult_old_run = a.job(adult, "run", 200, output_blob=a.blob("output"), image_blob=a.blob("picture"))
    adult_old_sub = a.job(adult, "submission", 400, problem_id=problem, output_blob=a.blob("output"))
    a.job(adult, "run", 40, output_blob=a.blob("output"), image_blob=a.blob("picture"))
    a.insert("drafts", user_id=adult, problem_id=None, language="python", code="z", revision=1, updated_at=ago(400))
    a.file(adult, 100)
    # Staff made without a birthdate are adults.
    a.job(teacher, "run", 40, output_blob=a.blob("output"))
    teacher_old_run = a.job(teacher, "run", 200, output_blob=a.blob("output"))
    # The birthday rule: the same 40-day-old run, kept for the one who is 18 today.
    a.job(turned_18, "run", 40, output_blob=a.blob("output"))
    minor_until_tomorrow = a.job(turns_18_tomorrow, "run", 40, output_blob=a.blob("output"))

    # Sessions and tokens.
    a.insert("sessions", id_hash="expired", user_id=adult, created_at=ago(20), expires_at=ago(6))
    a.insert("sessions", id_hash="live", user_id=adult, created_at=ago(1), expires_at=ago(-13))
    for name, expires, revoked in [
        ("expired long ago", ago(40), None),
        ("expired lately", ago(10), None),
        ("revoked long ago", ago(-100), ago(40)),
        ("live", ago(-100), None),
    ]:
        a.insert(
            "api_tokens",
            user_id=adult,
            name=name,
            token_hash=name,
            created_at=ago(200),
            expires_at=expires,
            revoked_at=revoked,
        )

    # Blobs no row names: an old one goes, one just written (a job's row not committed yet) stays.
    orphan = a.blob("orphan")
    os.utime(a.blobs.path_for(orphan), (0, 0))
    just_written = a.blob("just written")

    # The purge's own log, and sync's change log (schema 0020: its triggers record every deleted
    # submission so a central copy drops it too; tests/sync checks that) change with every purge.
    before = dump_db(a.settings, exclude=PURGE_BOOKKEEPING)
    blobs_before = set(a.blobs.digests())
    report = await run_purge(a)
    after = dump_db(a.settings, exclude=PURGE_BOOKKEEPING)

    expect = Expect(a.settings, before)
    for table in ("jobs", "job_tests", "job_files", "job_images"):
        expect.delete(table, job_in(minor_old_run, minor_ancient, ancient_rejudge, minor_until_tomorrow), some=False)
    expect.delete("submission_comments", job_in(minor_ancient))
    expect.update("jobs", job_in(minor_sub), code="", code_hash="", stdin="", compile_output=None, purged="content")
    stripped = (adult_old_run, adult_old_sub, teacher_old_run)
    expect.update("jobs", job_in(*stripped), compile_output=None, purged="outputs")
    expect.update("job_tests", job_in(minor_sub, *stripped), **STRIPPED_TESTS)
    expect.delete("job_images", job_in(minor_sub, adult_old_run))
    expect.delete("job_files", job_in(minor_sub))
    expect.delete("files", lambda row: row["id"] == old_file)
    expect.delete("drafts", lambda row: row["user_id"] == minor and row["updated_at"] == ago(40))
    expect.delete("sessions", lambda row: row["id_hash"] == "expired")
    expect.delete("api_tokens", lambda row: row["name"] in ("expired long ago", "revoked long ago"))
    assert after == expect.dump()

    # On disk: exactly the blobs some row still names, and the one written too lately to judge.
    assert set(a.blobs.digests()) == referenced_blobs(a.settings) | {just_written}
    assert {orphan, old_file_blob} <= blobs_before - set(a.blobs.digests())
    assert {shared, kept_file_blob, new_file_blob} <= set(a.blobs.digests())
    assert {minor_new_run, minor_stuck_run, minor_new_sub} <= {
        row[0] for row in dbaccess.query(a.settings, "SELECT id FROM jobs")
    }

    # The audit log: what went under which policy, how many, and older than when.
    assert {(r["policy"], r["what"]): (r["rows"], r["blobs"]) for r in report} == EXPECTED_AUDIT
    logged = dbaccess.query(a.settings, "SELECT run_at, policy, what, rows, blobs, older_than FROM retention_purges")
    assert {(row[1], row[2]): (row[3], row[4]) for row in logged} == EXPECTED_AUDIT
    assert {row[0] for row in logged} == {to_db(AT)}
    older_than = {(row[1], row[2]): row[5] for row in logged}
    assert older_than[("minor", "runs")] == ago(30) and older_than[("minor", "submissions")] == ago(365)
    assert older_than[("adult", "outputs")] == ago(180) and older_than[("everyone", "blobs")] is None

    # A rejudge leaves alone the submissions whose code is gone: their verdicts stay as judged.
    db = open_database(a.settings.database_location)
    await db.open()
    try:
        rejudged = {row["id"] for row in await job_store.submissions_of_problem(db, problem)}
    finally:
        await db.close()
    assert rejudged == {minor_new_sub, adult_old_sub}

    # A second run finds nothing more.
    again = await run_purge(a, AT + timedelta(hours=1))
    assert all(r["rows"] == 0 and r["blobs"] == 0 for r in again), again
    assert dump_db(a.settings, exclude=PURGE_BOOKKEEPING) == after


def referenced_blobs(settings: Settings) -> set[str]:
    """Every digest a `blob` or `*_blob` column of any table names."""
    found: set[str] = set()
    for table in dbaccess.tables(settings):
        for column in dbaccess.columns(settings, table):
            if column == "blob" or column.endswith("_blob"):
                found |= {
                    row for (row,) in dbaccess.query(settings, f'SELECT "{column}" FROM "{table}"') if row is not None
                }
    return found


def test_the_adult_cutoff_agrees_with_age_on_every_day_of_a_leap_cycle() -> None:
    """Someone is an adult that day exactly when `clock.age_on` says so (29 February included)."""
    for offset in range(4 * 366):
        today = date(2029, 1, 1) + timedelta(days=offset)
        cutoff = retention.adult_born_by(today, 18)
        # Every birthdate from a few days before the 18th birthday's month to a month after it.
        near = date(today.year - 18, today.month, 1)
        for birthdate in (near + timedelta(days=days) for days in range(-3, 33)):
            assert (birthdate.isoformat() <= cutoff) == (age_on(birthdate, today) >= 18), (today, birthdate)


async def test_a_purge_is_due_once_its_local_time_has_passed_since_the_last_run(
    settings_factory: Callable[..., Settings],
) -> None:
    with filled(settings_factory(retention_purge_time="03:00")) as a:
        db = open_database(a.settings.database_location)
        await db.open()
        try:
            local = datetime(2030, 6, 15, 2, 0).astimezone()  # 02:00 local: before today's purge time
            assert await retention.is_due(db, a.settings, local)  # never ran
            await retention.purge(db, a.blobs, a.settings, at=local)
            assert not await retention.is_due(db, a.settings, local + timedelta(minutes=59))
            assert await retention.is_due(db, a.settings, local + timedelta(hours=1))
            await retention.purge(db, a.blobs, a.settings, at=local + timedelta(hours=1, minutes=5))
            # Off over the next three purge times: due once it is back, and one run catches up.
            back = local + timedelta(days=3, hours=8)
            assert not await retention.is_due(db, a.settings, local + timedelta(hours=23))
            assert await retention.is_due(db, a.settings, back)
            await retention.purge(db, a.blobs, a.settings, at=back)
            assert not await retention.is_due(db, a.settings, back + timedelta(hours=12))
        finally:
            await db.close()
