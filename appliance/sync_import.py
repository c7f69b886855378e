"""`labrunner import` on the central instance: verify a classroom bundle, then upsert its contents
into the `synced_*` tables in one transaction, keyed by (appliance id, local id).

Refused, with a code and nothing written: a bundle that is malformed, altered (one byte anywhere),
signed by a key no appliance was registered with, naming another appliance than its key's, older
than the last one imported from that appliance (`bundle_replayed`), or starting after a watermark
this instance never reached (`bundle_gap`: changes in between would be missing).

Replays and repeats: (generation, watermark) orders an appliance's bundles: the watermark is its
change counter, the generation goes up when its database is restored (appliance/identity.py). A
bundle below the last imported one is refused. The very bundle imported last
(same SHA-256) is recognised and reported as already imported, writing nothing, so a retried
import (a lost acknowledgement, later an outbox resend) is harmless. A different bundle at the same
watermark describes the same data (another --since, another policy) and is applied: its upserts
write what is already there or what its policy adds. A full bundle (since 0) is the appliance's
whole state: copies it does not hold are removed, which is how a restored appliance's central copy
comes back in step (it must send a full bundle first in a new generation).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from appliance import clock, sync_bundle
from appliance.blobs import BlobStore
from appliance.clock import db_now
from appliance.db import Conn, Database, Row
from appliance.gradebook import MAX_SCORE
from appliance.identity import parse_public_key
from appliance.settings import Settings
from appliance.store import job_runs
from appliance.store import sync as store
from appliance.sync_bundle import Bundle, BundleRefused

# Each member and the thing its records are, in the order they are applied.
_MEMBERS: tuple[tuple[str, str], ...] = (
    ("users.jsonl", "user"),
    ("classes.jsonl", "class"),
    ("problems.jsonl", "problem"),
    ("submissions.jsonl", "submission"),
)

# Each import is recorded in the job history (an admin's record, and the central view's lag: the
# mark of the last bundle and of the one before). Refusals are not: anyone may post a bundle.
JOB_NAME = "sync_import"

_PLURAL = {"user": "users", "class": "classes", "problem": "problems", "submission": "submissions"}


def _id(value: Any) -> int:
    """A local id: a whole number SQLite can store."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value < sync_bundle.INT_LIMIT:
        raise ValueError("not an id")
    return value


def _time(value: Any, *, optional: bool = False) -> None:
    """A time the central view can show (an ISO 8601 text with a UTC form)."""
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise TypeError("a time is not text")
    clock.to_db(clock.parse_iso(value))  # ValueError, OverflowError: no time


def _check_read_fields(entity: str, record: dict[str, Any]) -> None:
    """The fields the central view reads from the record itself (appliance/store/central_view.py):
    a registered appliance, rogue or buggy, must not be able to store what breaks the view of all."""
    if entity == "class":
        if not isinstance(record["members"], list):
            raise TypeError("members is not a list")
        for member in record["members"]:
            _id(member)
    elif entity == "problem":
        _time(record["updated_at"])
        if not isinstance(record["language"], str) or not isinstance(record["classes"], list):
            raise TypeError("language or classes of the wrong type")
        for link in record["classes"]:
            _id(link["class"])
        if not isinstance(record["test_cases"], list) or not isinstance(record["assets"], list):
            raise TypeError("test_cases or assets is not a list")
        for test in record["test_cases"]:
            if not isinstance(test["visibility"], str):
                raise TypeError("a test's visibility is not text")
    elif entity == "submission":
        _time(record["created_at"])
        _time(record.get("finished_at"), optional=True)
        if not isinstance(record["status"], str):
            raise TypeError("status is not text")


def _columns(entity: str, record: dict[str, Any]) -> dict[str, Any]:
    _check_read_fields(entity, record)
    if entity == "user":
        return {"role": str(record["role"]), "name": str(record["name"])}
    if entity == "class":
        return {"name": str(record["name"]), "owner_local_id": _id(record["owner"])}
    if entity == "problem":
        return {"title": str(record["title"])}
    score = record["score"]
    # The central view averages scores: one past the scale (1e308) would overflow the mean.
    if score is not None and (
        not isinstance(score, int | float) or isinstance(score, bool) or not 0 <= score <= MAX_SCORE
    ):
        raise ValueError("not a score")
    return {
        "user_local_id": _id(record["user"]),
        "problem_local_id": _id(record["problem"]),
        "verdict": None if record["verdict"] is None else str(record["verdict"]),
        "score": None if score is None else float(score),
    }


@dataclass
class Imported:
    appliance: str
    generation: int
    watermark: int
    already: bool = False
    # entity -> {"new": n, "updated": n, "same": n, "deleted": n}
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


def _check_sequence(bundle: Bundle, registered: Row) -> bool:
    """True when this is the bundle imported last (nothing to do); refuses an older or gapped one."""
    if registered["last_watermark"] is None:
        last = None
    else:
        last = (int(registered["last_generation"]), int(registered["last_watermark"]))
    if last is not None and bundle.sha256 == registered["last_bundle_sha256"]:
        return True
    name = registered["name"]
    if last is not None and (bundle.generation, bundle.watermark) < last:
        raise BundleRefused(
            "bundle_replayed",
            f"this bundle from {name} (generation {bundle.generation}, watermark {bundle.watermark}) is older than"
            f" the last one imported from it (generation {last[0]}, watermark {last[1]}); nothing was imported",
        )
    if bundle.since == 0:
        return False
    if last is None or bundle.generation != last[0]:
        # A new generation: the appliance's database was restored, its counter counts anew.
        raise BundleRefused(
            "bundle_gap",
            f"this bundle holds only changes after watermark {bundle.since}, but nothing of {name}'s"
            f" {'data' if last is None else 'restored data'} was imported here yet; export again with --since 0;"
            " nothing was imported",
        )
    if bundle.since > last[1]:
        raise BundleRefused(
            "bundle_gap",
            f"this bundle holds changes after watermark {bundle.since}, but the last imported from {name} ended at"
            f" {last[1]}; export again with --since {last[1]}; nothing was imported",
        )
    return False


async def _registered(conn: Conn, bundle: Bundle) -> Row:
    """The registration of the bundle's signer, checked against the appliance it names."""
    registered = await store.appliance_by_key(conn, bundle.public_key)
    if registered is None:
        raise BundleRefused(
            "bundle_unknown_key",
            "this bundle is signed by a key no appliance was registered with here; if you trust the appliance,"
            " register its key with `labrunner appliances add NAME PUBLIC-KEY`; nothing was imported",
        )
    pinned_key = await store.key_of_appliance(conn, bundle.appliance_id)
    if registered["appliance_id"] not in (None, bundle.appliance_id) or pinned_key not in (None, bundle.public_key):
        raise BundleRefused(
            "bundle_appliance_mismatch",
            f"this bundle names appliance {bundle.appliance_id[:8]}, but the key it is signed with belongs to another"
            " (or that appliance has another key registered); nothing was imported",
        )
    return registered


def _records(bundle: Bundle) -> dict[str, list[dict[str, Any]]]:
    return {member: bundle.records(member) for member, _ in _MEMBERS}


def _put_assets(blobs: BlobStore, bundle: Bundle) -> None:
    for name, data in bundle.members.items():
        if name.startswith(sync_bundle.ASSET_PREFIX):
            blobs.put(data)


async def _apply(conn: Conn, bundle: Bundle, records: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for member, entity in _MEMBERS:
        tally = {"new": 0, "updated": 0, "same": 0, "deleted": 0}
        kept: list[int] = []
        for record in records[member]:
            try:
                local_id = _id(record["id"])
                if record.get("deleted") is True:
                    tally["deleted"] += int(await store.delete(conn, entity, bundle.appliance_id, local_id))
                    continue
                columns = _columns(entity, record)
                assets = [(str(a["name"]), str(a["sha256"])) for a in record["assets"]] if entity == "problem" else []
            except (KeyError, TypeError, ValueError, OverflowError):
                raise BundleRefused(
                    "bundle_malformed", f"a record in {member} lacks a field or has one of the wrong type"
                ) from None
            if any(sync_bundle.ASSET_PREFIX + blob not in bundle.members for _, blob in assets):
                raise BundleRefused("bundle_malformed", f"problem {local_id} names an asset the bundle does not hold")
            outcome = await store.upsert(
                conn, entity, bundle.appliance_id, local_id, columns, sync_bundle.canonical_json(record).decode()
            )
            tally[outcome] += 1
            if entity == "problem" and outcome != "same":
                await store.replace_assets(conn, bundle.appliance_id, local_id, assets)
            kept.append(local_id)
        if bundle.since == 0:
            # A full bundle is the appliance's whole state: what it no longer holds goes here too
            # (after a restore there, the deletions its lost change log recorded never come).
            tally["deleted"] += await store.delete_others(conn, entity, bundle.appliance_id, kept)
        counts[entity] = tally
    return counts


async def import_bundle(
    db: Database,
    blobs: BlobStore,
    settings: Settings,
    raw: bytes,
    *,
    trigger: str = "cli",
    signer: str | None = None,
) -> Imported:
    """Import `raw`; `signer`, the key a network push named before its body was read, must be the
    one the bundle's manifest names. Reading, verifying, parsing and storing the bundle's bytes (up
    to sync_bundle_max_bytes) run in worker threads: on the event loop they would hold up every
    other request for seconds."""
    bundle = await asyncio.to_thread(sync_bundle.read, raw, settings.sync_bundle_max_bytes)
    if bundle.kind != "classroom":
        raise BundleRefused(
            "bundle_unsupported_kind",
            f"this is a {bundle.kind} bundle; only classroom bundles are imported into the central view;"
            " nothing was imported",
        )
    if signer is not None and bundle.public_key != signer:
        raise BundleRefused(
            "bundle_key_mismatch",
            "the bundle is signed with another key than the push named in its header; nothing was imported",
        )
    async with db.snapshot() as conn:
        registered = await _registered(conn, bundle)
    await asyncio.to_thread(sync_bundle.verify, bundle, parse_public_key(registered["public_key"]))
    # Checked before any blob is written, so a refused bundle leaves no file behind either.
    if _check_sequence(bundle, registered):
        return Imported(registered["name"], bundle.generation, bundle.watermark, already=True)
    records = await asyncio.to_thread(_records, bundle)
    await asyncio.to_thread(_put_assets, blobs, bundle)
    async with db.transaction() as conn:
        # Again under the writer: another import of this appliance may have committed meanwhile.
        registered = await _registered(conn, bundle)
        if _check_sequence(bundle, registered):
            return Imported(registered["name"], bundle.generation, bundle.watermark, already=True)
        # First: it pins the appliance id the synced rows refer to.
        mark = (bundle.generation, bundle.watermark)
        await store.record_import(conn, registered["id"], bundle.appliance_id, mark, bundle.sha256, db_now())
        counts = await _apply(conn, bundle, records)
    detail = {
        "registration": registered["id"],
        "appliance": registered["name"],
        "generation": bundle.generation,
        "since": bundle.since,
        "watermark": bundle.watermark,
        "counts": counts,
    }
    await job_runs.record_done(db, JOB_NAME, trigger, detail)
    return Imported(registered["name"], bundle.generation, bundle.watermark, counts=counts)


def describe(result: Imported) -> str:
    if result.already:
        return f"already imported: this bundle from {result.appliance} (watermark {result.watermark}); nothing changed"
    parts = [
        f"{_PLURAL[entity]} {t['new']} new, {t['updated']} updated, {t['deleted']} removed"
        for entity, t in result.counts.items()
    ]
    return f"imported from {result.appliance} up to watermark {result.watermark}: " + "; ".join(parts)
