"""The expiry of stored full outputs, and of the blobs no row uses any more."""

from __future__ import annotations

import time

from appliance import blob_refs, file_expiry
from appliance.blobs import BlobStore
from appliance.db import Database
from appliance.store import jobs as job_store


async def purge_expired_outputs(
    db: Database, blobs: BlobStore, expiry_days: float, *, now: float | None = None, grace_s: float | None = None
) -> dict[str, int]:
    """Results of jobs finished more than `expiry_days` ago forget their full outputs (their cut
    text stays), in bounded batches; then the blobs no row uses any more are deleted. Blobs are
    shared by content: one a file, asset, picture or newer result still names stays. So does one
    written within `grace_s` (a running job may have just stored the same bytes, its row not yet
    committed): the orphan purge takes it later if it is still unused."""
    now = time.time() if now is None else now
    grace_s = file_expiry.ORPHAN_GRACE_S if grace_s is None else grace_s
    cutoff = now - expiry_days * 86400
    tests = removed = 0
    for _ in range(file_expiry.PURGE_MAX_BATCHES):
        async with db.transaction() as conn:
            count, digests = await job_store.expire_full_outputs(conn, cutoff, file_expiry.PURGE_BATCH)
            settled = blob_refs.settled(blobs, digests, now - grace_s)
            removed += await blob_refs.discard_unused_blobs(conn, blobs, settled)
        tests += count
        if count < file_expiry.PURGE_BATCH:
            break
    return {"tests": tests, "blobs": removed}
