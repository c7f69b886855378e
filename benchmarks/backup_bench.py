"""Backup benchmark: the longest write stall while a backup of a large live database is taken, and
the backup's throughput.

Fills a database of about `--mb` MiB (real schema plus a filler table of random rows), opens it as
the server does (one writer connection, WAL) and keeps committing small writes in a loop, as a
class's submissions would. It measures every write's latency for a while before the backup (the
baseline) and during `backups.backup_now` (a `VACUUM INTO` copy, integrity check, row counts and
the archive, off the event loop). Prints the longest stall of each, the backup's duration, and
its throughput (database bytes / second).

    .venv/bin/python benchmarks/backup_bench.py [--mb 500] [--baseline-s 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from appliance import backups, migrations  # noqa: E402
from appliance.db import Database, open_database  # noqa: E402
from appliance.settings import load_settings  # noqa: E402

ROW_BYTES = 4096


def fill(db_path: Path, mb: int) -> None:
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE bench_rows (id INTEGER PRIMARY KEY, at REAL, payload BLOB)")
    rows = (mb << 20) // ROW_BYTES
    batch = 10_000
    for start in range(0, rows, batch):
        count = min(batch, rows - start)
        conn.execute("BEGIN")
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
            " INSERT INTO bench_rows (at, payload) SELECT 0, randomblob(?) FROM n",
            (count, ROW_BYTES),
        )
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


async def writes(db: Database, stop: asyncio.Event, latencies: list[tuple[float, float]]) -> None:
    """Small committed writes, one after another, each timed (start, seconds)."""
    while not stop.is_set():
        began = time.perf_counter()
        await db.execute("INSERT INTO bench_rows (at, payload) VALUES (?, randomblob(200))", (began,))
        latencies.append((began, time.perf_counter() - began))
        await asyncio.sleep(0.005)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=500, help="size of the database to back up (MiB)")
    parser.add_argument("--baseline-s", type=float, default=3.0, help="seconds of writes measured before the backup")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="labrunner-backup-bench-") as folder:
        settings = load_settings(data_dir=Path(folder), environ={})
        migrations.migrate(settings.db_path, settings.backup_dir)
        filled = time.perf_counter()
        fill(settings.db_path, args.mb)
        size = settings.db_path.stat().st_size
        print(f"database: {size / 2**20:.0f} MiB, filled in {time.perf_counter() - filled:.1f} s", flush=True)
        db = open_database(settings.database_location)
        await db.open()
        stop, latencies = asyncio.Event(), []
        writer = asyncio.create_task(writes(db, stop, latencies))
        await asyncio.sleep(args.baseline_s)
        began = time.perf_counter()
        result = await backups.backup_now(settings, passphrase="")  # "": unencrypted, whatever the environment says
        ended = time.perf_counter()
        await asyncio.sleep(0.5)
        stop.set()
        await writer
        await db.close()
    before = [seconds for at, seconds in latencies if at < began]
    during = [seconds for at, seconds in latencies if began <= at <= ended]
    duration = ended - began
    print(f"writes before the backup: {len(before)}, longest {max(before) * 1000:.1f} ms")
    print(f"writes during the backup: {len(during)}, longest stall {max(during) * 1000:.1f} ms")
    mib = 2**20
    print(f"backup: {duration:.1f} s, archive {result.size / mib:.0f} MiB, {size / mib / duration:.0f} MiB/s")


if __name__ == "__main__":
    asyncio.run(main())
