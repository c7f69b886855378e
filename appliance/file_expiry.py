"""Expiry and purges: expired and deleted uploads, and blobs nothing uses any more, removed in
bounded batches so a purge never holds the single writer for long."""

from __future__ import annotations

import asyncio
import time

from appliance.blob_refs import discard_unused_blobs
from appliance.blobs import BlobStore
from appliance.db import Database
from appliance.store import files as file_store

# A purge deletes at most this many rows (and unlinks their blobs) per transaction, so it never
# holds the single writer for long; each run stops after MAX_BATCHES and the next run goes on.
PURGE_BATCH = 500
PURGE_MAX_BATCHES = 100
# A blob on disk that no row names yet may be in the middle of being stored (written before its row
# commits: an upload, a job's full output). Only blobs older than this count as orphans.
ORPHAN_GRACE_S = 3600.0


async def purge_expired_files(db: Database, blobs: BlobStore, now: float | None = None) -> dict[str, int]:
    """Delete expired (and owner-deleted) files no submission keeps, then their unused blobs."""
    now = time.time() if now is None else now
    files = removed = 0
    for _ in range(PURGE_MAX_BATCHES):
        async with db.transaction() as conn:
            digests = await file_store.delete_expired(conn, now, PURGE_BATCH)
            removed += await discard_unused_blobs(conn, blobs, digests)
        files += len(digests)
        if len(digests) < PURGE_BATCH:
            break
    return {"files": files, "blobs": removed}


def _old_blobs(blobs: BlobStore, cutoff: float) -> list[str]:
    old = []
    for digest in blobs.digests():
        try:
            if blobs.path_for(digest).stat().st_mtime < cutoff:
                old.append(digest)
        except (FileNotFoundError, ValueError):
            continue  # deleted meanwhile, or a stray file that is not a blob
    return old


async def purge_orphan_blobs(db: Database, blobs: BlobStore, grace_s: float = ORPHAN_GRACE_S) -> int:
    """Unlink blobs no row uses any more (left by deleted problems, jobs, users), in batches."""
    candidates = await asyncio.to_thread(_old_blobs, blobs, time.time() - grace_s)
    removed = 0
    for start in range(0, min(len(candidates), PURGE_BATCH * PURGE_MAX_BATCHES), PURGE_BATCH):
        async with db.transaction() as conn:
            removed += await discard_unused_blobs(conn, blobs, candidates[start : start + PURGE_BATCH])
    return removed
