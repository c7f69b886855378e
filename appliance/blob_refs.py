"""Blobs are shared by content: one is unlinked only when no row (file, asset, picture, result) names it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from appliance.blobs import BlobStore
from appliance.db import Conn
from appliance.store import files as file_store
from appliance.upload_validation import Prepared


async def discard_unused_blobs(conn: Conn, blobs: BlobStore, digests: Sequence[str]) -> int:
    """Unlink those of `digests` no row uses. Runs inside a write transaction: a row naming one of
    them cannot be committed between the check and the unlink."""
    unused = set(digests) - await file_store.referenced_blobs(conn, digests)
    for digest in unused:
        blobs.delete(digest)
    return len(unused)


def settled(blobs: BlobStore, digests: Sequence[str], before: float) -> list[str]:
    """Those of `digests` written before `before` (epoch seconds). A blob written later may belong
    to a job storing the same bytes right now, its row not committed yet: the orphan purge takes it
    later if it is still unused."""
    old = []
    for digest in set(digests):
        try:
            if blobs.path_for(digest).stat().st_mtime < before:
                old.append(digest)
        except FileNotFoundError:
            continue
    return old


async def ensure_blobs(blobs: BlobStore, items: Sequence[Prepared]) -> None:
    """Right after the write transaction that made rows name these blobs: a purge may have unlinked
    an identical orphan blob after our put found it already there, and before our rows existed.
    Now that rows name them no purge unlinks them, and the writer is not held for a file write;
    the caller answers only after this, so nobody has the new row's id before its blob is back."""
    for item in items:
        if not blobs.exists(item.digest):
            await asyncio.to_thread(blobs.put, item.data)
