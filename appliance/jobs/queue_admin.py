"""The queue as the admin sees it: how busy it is, and a second chance for failed jobs."""

from __future__ import annotations

import statistics
from typing import Any

from appliance.db import Database
from appliance.store import queue as queue_store


async def stats(db: Database) -> dict[str, Any]:
    counts = await queue_store.counts_by_status(db)
    latencies = sorted(await queue_store.recent_latencies(db))
    latency: dict[str, float | None] = {"median_s": None, "p95_s": None}
    if latencies:
        latency["median_s"] = round(statistics.median(latencies), 3)
        latency["p95_s"] = round(latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], 3)
    return {"jobs": {s: counts.get(s, 0) for s in ("queued", "running", "done", "failed")}, "latency": latency}


async def requeue_failed(db: Database) -> int:
    return await queue_store.requeue_failed(db)
