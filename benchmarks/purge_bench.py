"""Retention purge benchmark (issue 10): how long the purge holds the single writer at a time.

Fills a real data folder (SQLite file and blob store) with 100,000 rows past the retention policy
— minors' runs, minors' submissions whose content goes, minors' drafts and expired sessions; each
job with two test results, one in twenty with a full output in the blob store — beside 20,000 rows
the policy keeps, then runs the purge as the appliance does. Prints, per batch size, the longest
and median time one write transaction of the purge held the writer (target: at most 100 ms), the
longest a small write made meanwhile waited for it, and the total time.

    .venv/bin/python benchmarks/purge_bench.py [--batch-rows 100,200,500]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from appliance import migrations, retention  # noqa: E402
from appliance.blobs import BlobStore  # noqa: E402
from appliance.clock import to_db  # noqa: E402
from appliance.db import Database, SqliteDatabase  # noqa: E402
from appliance.settings import load_settings  # noqa: E402

AT = datetime.now(UTC)
RUNS, SUBMISSIONS, DRAFTS, SESSIONS = 80_000, 10_000, 5_000, 5_000
KEPT_JOBS = 20_000
TARGET_MS = 100.0


class TimedDatabase(SqliteDatabase):
    """The appliance's database, timing every write transaction from taking the lock to commit."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.holds: list[float] = []
        # The kind of data the purge is at (set around each step), and the longest hold in each.
        self.label = "audit and orphan blobs"
        self.longest: dict[str, float] = {}

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        # Timed from inside the write lock (BEGIN taken) to after COMMIT: how long the writer is held.
        async with super().transaction() as conn:
            start = time.perf_counter()
            yield conn
        hold = time.perf_counter() - start
        self.holds.append(hold)
        self.longest[self.label] = max(hold, self.longest.get(self.label, 0.0))


def ago(days: float) -> str:
    return to_db(AT - timedelta(days=days))


def seed(data_dir: Path) -> None:
    settings = load_settings(data_dir=data_dir, environ={})
    migrations.migrate(settings.db_path, settings.backup_dir)
    blobs = BlobStore(settings.blob_dir)
    conn = sqlite3.connect(settings.db_path, isolation_level=None)
    conn.execute("BEGIN")
    minors = [
        conn.execute(
            "INSERT INTO users (username, password_hash, role, birthdate, created_at)"
            " VALUES (?, 'x', 'student', '2015-01-01', ?)",
            (f"minor{i}", ago(1000)),
        ).lastrowid
        for i in range(300)
    ]
    adults = [
        conn.execute(
            "INSERT INTO users (username, password_hash, role, birthdate, created_at)"
            " VALUES (?, 'x', 'teacher', NULL, ?)",
            (f"teacher{i}", ago(1000)),
        ).lastrowid
        for i in range(30)
    ]
    problem = conn.execute(
        "INSERT INTO problems (owner_id, title, statement, language, time_limit_ms, memory_limit_mb, comparison,"
        " created_at, updated_at) VALUES (?, 'p', 's', 'python', 1000, 64, 'exact', ?, ?)",
        (adults[0], ago(1000), ago(1000)),
    ).lastrowid
    jobs = (
        [(minors[i % len(minors)], "run", None, 40) for i in range(RUNS)]
        + [(minors[i % len(minors)], "submission", problem, 100) for i in range(SUBMISSIONS)]
        + [(adults[i % len(adults)], "run", None, 10) for i in range(KEPT_JOBS)]
    )
    for n, (user, kind, problem_id, days) in enumerate(jobs):
        job_id = conn.execute(
            "INSERT INTO jobs (kind, user_id, problem_id, language, code, code_hash, stdin, priority, status,"
            " verdict, score, created_at, finished_at) VALUES (?, ?, ?, 'python', ?, 'h', '', 1, 'done',"
            " 'accepted', 100, ?, ?)",
            (kind, user, problem_id, f"print({n})", ago(days), ago(days)),
        ).lastrowid
        output = None
        if n % 20 == 0:
            output = blobs.put(f"full output {n}".encode())
            # As old as its job: written long before the purge, not a blob a running job just stored.
            os.utime(blobs.path_for(output), (0, 0))
        conn.executemany(
            "INSERT INTO job_tests (job_id, position, name, verdict, time_ms, stdout, stderr, stdout_blob)"
            " VALUES (?, ?, 't', 'accepted', 5, ?, '', ?)",
            [(job_id, 1, f"output {n}", output), (job_id, 2, f"output {n}", None)],
        )
    conn.executemany(
        "INSERT INTO drafts (user_id, problem_id, language, code, revision, updated_at)"
        " VALUES (?, NULL, 'python', 'x', 1, ?)",
        [(minors[i % len(minors)], ago(40)) for i in range(len(minors))],
    )
    # One scratchpad per user: the rest of the drafts are problem drafts of further problems.
    extra = [
        conn.execute(
            "INSERT INTO problems (owner_id, title, statement, language, time_limit_ms, memory_limit_mb,"
            " comparison, created_at, updated_at) VALUES (?, 'p', 's', 'python', 1000, 64, 'exact', ?, ?)",
            (adults[0], ago(1000), ago(1000)),
        ).lastrowid
        for _ in range(DRAFTS // len(minors) + 1)
    ]
    problem_drafts = [(minor, p) for p in extra for minor in minors][: DRAFTS - len(minors)]
    conn.executemany(
        "INSERT INTO drafts (user_id, problem_id, language, code, revision, updated_at)"
        " VALUES (?, ?, 'python', 'x', 1, ?)",
        [(minor, p, ago(40)) for minor, p in problem_drafts],
    )
    conn.executemany(
        "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
        [(f"s{i}", adults[i % len(adults)], ago(20), ago(5)) for i in range(SESSIONS)],
    )
    conn.execute("COMMIT")
    conn.close()


async def measure(data_dir: Path, batch_rows: int) -> dict[str, float]:
    settings = load_settings(data_dir=data_dir, environ={}, overrides={"retention_batch_rows": batch_rows})
    db = TimedDatabase(settings.db_path)
    await db.open()
    waits: list[float] = []
    stop = asyncio.Event()

    async def class_writing() -> None:
        """A small write every 10 ms, as a class saving drafts would: how long does each wait?"""
        while not stop.is_set():
            start = time.perf_counter()
            async with SqliteDatabase.transaction(db) as conn:
                await conn.execute("UPDATE users SET disabled = 0 WHERE id = 1")
            waits.append(time.perf_counter() - start)
            await asyncio.sleep(0.01)

    purge_step = retention._purge_step

    async def labelled(db_: Database, blobs: BlobStore, step: retention.Step, *args: Any) -> tuple[int, int]:
        db.label = f"{step.policy} {step.what}"
        try:
            return await purge_step(db_, blobs, step, *args)
        finally:
            db.label = "audit and orphan blobs"

    retention._purge_step = labelled  # type: ignore[assignment]
    writer = asyncio.create_task(class_writing())
    start = time.perf_counter()
    report = await retention.purge(db, BlobStore(settings.blob_dir), settings, at=AT)
    total = time.perf_counter() - start
    stop.set()
    await writer
    await db.close()
    retention._purge_step = purge_step  # type: ignore[assignment]
    for label, hold in sorted(db.longest.items(), key=lambda item: -item[1]):
        print(f"    batch {batch_rows}: longest hold in {label}: {hold * 1000:.1f} ms")
    purged = sum(r["rows"] for r in report if r["what"] in ("runs", "submission_content", "drafts", "sessions"))
    return {
        "rows": purged,
        "blobs": sum(r["blobs"] for r in report),
        "batches": len(db.holds),
        "longest_ms": max(db.holds) * 1000,
        "median_ms": statistics.median(db.holds) * 1000,
        "wait_ms": max(waits) * 1000 if waits else 0.0,
        "total_s": total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-rows", default="100,200,500", help="batch sizes to try (comma-separated)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.batch_rows.split(",")]
    with tempfile.TemporaryDirectory(prefix="purge-bench-") as tmp:
        seeded = Path(tmp) / "seeded"
        started = time.perf_counter()
        seed(seeded)
        print(
            f"seeded {RUNS + SUBMISSIONS + DRAFTS + SESSIONS:,} purgeable rows and {KEPT_JOBS:,} kept jobs"
            f" in {time.perf_counter() - started:.1f} s"
        )
        print()
        print(
            "| batch rows | rows purged | blobs | transactions | longest hold | median hold |"
            " longest wait of a class write | total |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for size in sizes:
            data_dir = Path(tmp) / f"batch{size}"
            shutil.copytree(seeded, data_dir)
            m = asyncio.run(measure(data_dir, size))
            verdict = "ok" if m["longest_ms"] <= TARGET_MS else f"over {TARGET_MS:.0f} ms"
            print(
                f"| {size} | {m['rows']:,.0f} | {m['blobs']:,.0f} | {m['batches']:,.0f}"
                f" | {m['longest_ms']:.1f} ms ({verdict}) | {m['median_ms']:.1f} ms | {m['wait_ms']:.1f} ms"
                f" | {m['total_s']:.1f} s |"
            )
            shutil.rmtree(data_dir)


if __name__ == "__main__":
    main()
