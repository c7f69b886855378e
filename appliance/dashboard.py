"""The live dashboard's picture of the appliance, cut to what the caller may see.

An admin sees everything: the queue, throughput and latency, runner health, storage, the last
backup and retention purge, the error log's tail and the switches. A teacher sees only the queue,
throughput and latency of the jobs they may read (their own and their problems'), and nothing
about the runner, storage, accounts or switches: the scope is applied in the queries
(`appliance.store.dashboard`), never by filtering a wider answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance import job_history, retention
from appliance.accounts import User
from appliance.clock import api_epoch, epoch
from appliance.db import Database, Row
from appliance.errors import Unavailable
from appliance.logs import ErrorTail
from appliance.runner_service import RunnerService
from appliance.service_modes import ServiceModes
from appliance.settings import Settings
from appliance.store import dashboard as store
from runner.queue import PRIORITY_REJUDGE, PRIORITY_STAFF, PRIORITY_STUDENT

PRIORITY_NAMES = {PRIORITY_STAFF: "staff", PRIORITY_STUDENT: "student", PRIORITY_REJUDGE: "rejudge"}
WINDOWS_MIN = (5, 60)
FAILED_LISTED = 20


def teacher_scope(user: User) -> int | None:
    """None for an admin (every job); a teacher's id (their jobs and their problems' jobs)."""
    return None if user.role == "admin" else user.id


def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    if not sorted_values:
        return None
    return round(sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))], 3)


def _tree_bytes(root: Path) -> int:
    total = 0
    for folder, _, names in os.walk(root):
        for name in names:
            with contextlib.suppress(OSError):  # a blob purged meanwhile
                total += os.stat(os.path.join(folder, name)).st_size
    return total


def measure_storage(settings: Settings, db_bytes: int | None = None) -> dict[str, int]:
    """`db_bytes`: the database's size when it is not a file in the data folder (PostgreSQL)."""
    db_files = [settings.db_path, Path(f"{settings.db_path}-wal"), Path(f"{settings.db_path}-shm")]
    return {
        "db_bytes": sum(p.stat().st_size for p in db_files if p.exists()) if db_bytes is None else db_bytes,
        "blob_bytes": _tree_bytes(settings.blob_dir),
        "disk_free_bytes": shutil.disk_usage(settings.data_dir).free,
    }


def _job(row: Row, now: float) -> dict[str, Any]:
    started = api_epoch(row["started_at"]) if row["status"] == "running" else None
    created = epoch(row["created_at"])
    return {
        "id": row["id"],
        "kind": row["kind"],
        "status": row["status"],
        "priority": PRIORITY_NAMES.get(row["priority"], str(row["priority"])),
        "user_id": row["user_id"],
        "username": row["username"],
        "problem_id": row["problem_id"],
        "problem_title": row["problem_title"],
        "language": row["language"],
        "infra_attempts": row["infra_attempts"],
        "created_at": created,
        "waited_s": round((started or now) - created, 1),
        "elapsed_s": None if started is None else round(now - started, 1),
    }


def _throughput(rows: Sequence[Row], now: float) -> dict[str, Any]:
    """Jobs per minute and p50/p95 latency over the last 5 and 60 minutes, and per minute of the last hour."""
    finished = [(epoch(r["finished_at"]), float(r["latency_s"])) for r in rows]
    windows = {}
    for minutes in WINDOWS_MIN:
        latencies = sorted(lat for at, lat in finished if at >= now - minutes * 60)
        windows[str(minutes)] = {
            "jobs": len(latencies),
            "jobs_per_min": round(len(latencies) / minutes, 2),
            "p50_s": percentile(latencies, 0.5),
            "p95_s": percentile(latencies, 0.95),
        }
    start = (int(now) // 60 - 59) * 60
    buckets: list[list[float]] = [[] for _ in range(60)]
    for at, lat in finished:
        index = int(at - start) // 60
        if 0 <= index < 60:
            buckets[index].append(lat)
    series = {
        "t": [start + 60 * i for i in range(60)],
        "jobs": [len(b) for b in buckets],
        "p50_s": [percentile(sorted(b), 0.5) for b in buckets],
        "p95_s": [percentile(sorted(b), 0.95) for b in buckets],
    }
    return {"windows": windows, "per_minute": series}


def queue_summary(counts: Sequence[Row], now: float) -> dict[str, Any]:
    by_status = {"queued": 0, "running": 0}
    by_priority: dict[str, int] = {name: 0 for name in PRIORITY_NAMES.values()}
    oldest: float | None = None
    for row in counts:
        by_status[row["status"]] += row["jobs"]
        if row["status"] == "queued":
            name = PRIORITY_NAMES.get(row["priority"], str(row["priority"]))
            by_priority[name] = by_priority.get(name, 0) + row["jobs"]
            created = epoch(row["oldest"])
            oldest = created if oldest is None else min(oldest, created)
    return {
        "by_status": by_status,
        "queued_by_priority": by_priority,
        "oldest_wait_s": None if oldest is None else round(now - oldest, 1),
    }


def runner_health(runner: RunnerService | None) -> dict[str, Any]:
    return {"state": "not_started"} if runner is None else runner.describe()


@dataclass
class Dashboard:
    """One per app: builds snapshots, counts open streams, remembers the last storage measurement."""

    db: Database
    settings: Settings
    modes: ServiceModes
    errors: ErrorTail
    streams: int = 0
    # The server is shutting down: open streams end now rather than hold the shutdown up.
    closing: bool = False
    _per_user: dict[int, int] = field(default_factory=dict)
    _storage: dict[str, int] | None = None
    _storage_at: float = 0.0

    @contextlib.contextmanager
    def stream_slot(self, user: User) -> Iterator[None]:
        """Hold one of the bounded stream slots (of all, and of this user's) while a stream is open."""
        settings = self.settings
        mine = self._per_user.get(user.id, 0)
        if self.streams >= settings.dashboard_streams_max or mine >= settings.dashboard_streams_per_user:
            limit = (
                f"{settings.dashboard_streams_max} live staff pages are open already"
                if self.streams >= settings.dashboard_streams_max
                else f"you have {mine} live staff pages open already"
            )
            raise Unavailable(
                "too_many_streams",
                f"{limit}; close one or try again soon",
                retry_after=max(1, round(settings.dashboard_interval_s * 4)),
            )
        self.streams += 1
        self._per_user[user.id] = mine + 1
        try:
            yield
        finally:
            self.streams -= 1
            self._per_user[user.id] -= 1
            if not self._per_user[user.id]:
                del self._per_user[user.id]

    async def storage(self, runner: RunnerService | None = None) -> dict[str, int]:
        """Sizes and free disk, measured again past `dashboard_storage_refresh_s`; the runner's
        image is asked about as seldom (it is a call to the engine)."""
        if self._storage is None or time.monotonic() - self._storage_at >= self.settings.dashboard_storage_refresh_s:
            self._storage_at = time.monotonic()
            db_bytes = await store.database_bytes(self.db) if self.db.dialect == "postgresql" else None
            self._storage = await asyncio.to_thread(measure_storage, self.settings, db_bytes)
            if runner is not None:
                await runner.health()
        return self._storage

    async def snapshot(self, user: User, runner: RunnerService | None) -> dict[str, Any]:
        now = time.time()
        scope = teacher_scope(user)
        counts = await store.queue_counts(self.db, scope)
        active = await store.active_jobs(self.db, scope, self.settings.dashboard_jobs_max)
        failed = await store.recent_failed(self.db, scope, FAILED_LISTED)
        finished = await store.finished_since(self.db, scope, now - max(WINDOWS_MIN) * 60)
        picture: dict[str, Any] = {
            "at": now,
            "scope": "all" if scope is None else "own_classes",
            "queue": queue_summary(counts, now),
            "jobs": [_job(row, now) for row in active],
            "failed": [_job(row, now) for row in failed],
            "throughput": _throughput(finished, now),
        }
        if scope is None:
            storage = await self.storage(runner)
            picture["runner"] = runner_health(runner)
            picture["storage"] = {
                **storage,
                "last_backup": await job_history.last_backup(self.db),
                "last_retention": next(iter(await retention.audit_log(self.db, 1)), None),
            }
            picture["errors"] = self.errors.lines()
            picture["controls"] = self.modes.modes.to_json()
            picture["streams"] = {"open": self.streams, "max": self.settings.dashboard_streams_max}
        return picture
