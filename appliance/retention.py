"""Retention purges: once a day (at `retention_purge_time`, local), remove what the policies no
longer keep, and record what went in the audit log admins read.

- minors (younger than `adult_age` on the day of the purge, so a student who turns 18 moves to the
  adult policy that day): runs, the code, input, files, outputs and pictures of submissions, uploads
  and drafts after `retention_minor_days`; the submissions themselves (verdicts and scores, the
  gradebook) after `retention_minor_grades_days`;
- adults: outputs and pictures after `retention_adult_output_days`;
- everyone: expired sessions, tokens dead for `retention_token_days`, and blobs nothing refers to.

A file some kept submission uses stays, and a blob stays while any row names it. Like Home
Assistant's recorder purge, each kind of data goes in batches of `retention_batch_rows` rows, one
write transaction each, yielding to other writers between them: candidates are found on a reader
connection, so the writer is held only to check and remove one batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from appliance import file_expiry
from appliance.blob_refs import discard_unused_blobs, settled
from appliance.blobs import BlobStore
from appliance.clock import api_iso, from_db, now, to_db
from appliance.db import Conn, Database
from appliance.settings import Settings
from appliance.store import retention as store

# The most audit rows one request reads.
AUDIT_MAX_ROWS = 1000

Due = Callable[[Database, store.Cut, Any, int], Awaitable[Sequence[Any]]]
Purge = Callable[[Conn, store.Cut, Sequence[Any]], Awaitable[store.Taken]]


@dataclass(frozen=True)
class Step:
    """One kind of data one policy purges: what `due` finds, `purge` removes, batch by batch."""

    policy: str
    what: str
    # Rows older than this many days go; 0: the policy is off; None: not an age rule.
    days: int | None
    due: Due
    purge: Purge
    first_key: int | str = 0


def _jobs(rule: str, purge: Callable[..., Awaitable[store.Taken]]) -> tuple[Due, Purge]:
    async def due(db: Database, cut: store.Cut, after: Any, limit: int) -> Sequence[Any]:
        return await store.jobs_due(db, rule, cut, after, limit)

    async def take(conn: Conn, cut: store.Cut, keys: Sequence[Any]) -> store.Taken:
        return await purge(conn, rule, cut, keys)

    return due, take


def _rows(kind: store.Purgeable) -> tuple[Due, Purge]:
    return kind.due_after, kind.delete


def steps(settings: Settings) -> list[Step]:
    """In order: whole submissions before their content, and a submission lets go of its files
    before the files are looked at."""
    minor, grades = settings.retention_minor_days, settings.retention_minor_grades_days
    return [
        Step("minor", "submissions", grades, *_jobs(store.MINOR_SUBMISSIONS, store.delete_jobs)),
        Step("minor", "runs", minor, *_jobs(store.MINOR_RUNS, store.delete_jobs)),
        Step("minor", "submission_content", minor, *_jobs(store.MINOR_CONTENT, store.strip_content)),
        Step("minor", "files", minor, *_rows(store.MINOR_FILES), ""),
        Step("minor", "drafts", minor, *_rows(store.MINOR_DRAFTS)),
        Step(
            "adult",
            "outputs",
            settings.retention_adult_output_days,
            *_jobs(store.ADULT_OUTPUTS, store.strip_outputs),
        ),
        Step("everyone", "tokens", settings.retention_token_days, *_rows(store.DEAD_TOKENS)),
        Step("everyone", "sessions", None, *_rows(store.EXPIRED_SESSIONS), ""),
    ]


def adult_born_by(today: date, adult_age: int) -> str:
    """The latest birthdate of someone `adult_age` or older on `today`, as stored (ISO) and compared
    as text. Built as text, not as a date: on 29 February the year `adult_age` back may have none,
    and someone born on 29 February comes of age on 1 March of a common year, as `clock.age_on` says."""
    return f"{today.year - adult_age:04d}-{today.month:02d}-{today.day:02d}"


async def _purge_step(
    db: Database, blobs: BlobStore, step: Step, cut: store.Cut, batch: int, settled_before: float
) -> tuple[int, int]:
    rows = removed = 0
    after = step.first_key
    while keys := await step.due(db, cut, after, batch):
        async with db.transaction() as conn:
            count, digests = await step.purge(conn, cut, keys)
            removed += await discard_unused_blobs(conn, blobs, settled(blobs, digests, settled_before))
        rows += count
        after = keys[-1]
        # Writers queued on the lock go first (asyncio's lock is fair), then the next batch.
        await asyncio.sleep(0)
    return rows, removed


async def purge(
    db: Database, blobs: BlobStore, settings: Settings, *, at: datetime | None = None
) -> list[dict[str, Any]]:
    """One purge run as of `at` (now by default; tests pass a fake clock); returns its audit rows."""
    at = now() if at is None else at
    run_at = to_db(at)
    born_by = adult_born_by(at.date(), settings.adult_age)
    # A blob written this lately may be a running job's, its row not committed yet.
    settled_before = at.timestamp() - file_expiry.ORPHAN_GRACE_S
    done: list[dict[str, Any]] = []
    for step in steps(settings):
        if step.days == 0:
            continue
        older_than = None if step.days is None else to_db(at - timedelta(days=step.days))
        cut = {"now": run_at, "before": older_than, "adult_born_by": born_by}
        rows, removed = await _purge_step(db, blobs, step, cut, settings.retention_batch_rows, settled_before)
        done.append(await _record(db, run_at, step.policy, step.what, rows, removed, older_than))
    orphans = await file_expiry.purge_orphan_blobs(db, blobs)
    done.append(await _record(db, run_at, "everyone", "blobs", 0, orphans, None))
    return done


async def _record(
    db: Database, run_at: str, policy: str, what: str, rows: int, removed: int, older_than: str | None
) -> dict[str, Any]:
    values = {
        "run_at": run_at,
        "policy": policy,
        "what": what,
        "rows": rows,
        "blobs": removed,
        "older_than": older_than,
        "finished_at": to_db(now()),
    }
    async with db.transaction() as conn:
        await store.record(conn, values)
    return values


def last_scheduled(at: datetime, purge_time: str) -> datetime:
    """The latest moment at or before `at` when the daily purge was set to run (local time of `at`)."""
    local = at.astimezone()
    hours, minutes = map(int, purge_time.split(":"))
    today = datetime.combine(local.date(), time(hours, minutes), local.tzinfo)
    return today if today <= local else today - timedelta(days=1)


async def is_due(db: Database, settings: Settings, at: datetime | None = None) -> bool:
    """No run since the purge time last passed: today's, or one the machine was off for."""
    at = now() if at is None else at
    last = await store.last_run_at(db)
    return last is None or from_db(last) < last_scheduled(at, settings.retention_purge_time)


async def purge_if_due(db: Database, blobs: BlobStore, settings: Settings) -> list[dict[str, Any]]:
    return await purge(db, blobs, settings) if await is_due(db, settings) else []


async def audit_log(db: Database, limit: int) -> list[dict[str, Any]]:
    return [
        {
            "id": row["id"],
            "run_at": api_iso(row["run_at"]),
            "policy": row["policy"],
            "what": row["what"],
            "rows": row["rows"],
            "blobs": row["blobs"],
            "older_than": api_iso(row["older_than"]),
            "finished_at": api_iso(row["finished_at"]),
        }
        for row in await store.recent(db, limit)
    ]
