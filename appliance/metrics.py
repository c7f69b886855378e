"""`GET /metrics`: the appliance's figures in Prometheus text, all named `labrunner_*`.

Each app has its own registry (not prometheus_client's global one), so several apps in one
process (tests) never share or collide. The figures are read from the database when a scrape
comes, then handed to the registry's one collector: the queue and the job history live in SQLite,
so there is nothing to count in memory that a restart would lose.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from appliance import job_history
from appliance.clock import parse_iso
from appliance.dashboard import Dashboard, queue_summary, runner_health
from appliance.runner_service import RunnerService
from appliance.store import dashboard as store

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Seconds from queueing to result: a hello-world run takes well under one, a class burst tens.
LATENCY_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
RUNNER_STATES = ("ok", "paused", "not_started")


class _Figures(Collector):
    def __init__(self) -> None:
        self.figures: dict[str, Any] = {}

    def collect(self) -> Iterator[Metric]:
        f = self.figures
        if not f:
            return
        depth = GaugeMetricFamily("labrunner_queue_jobs", "Jobs waiting or running, by status", labels=["status"])
        for status, count in f["queue"]["by_status"].items():
            depth.add_metric([status], count)
        yield depth
        waiting = GaugeMetricFamily(
            "labrunner_queue_waiting_jobs", "Jobs waiting in the queue, by priority class", labels=["priority"]
        )
        for priority, count in f["queue"]["queued_by_priority"].items():
            waiting.add_metric([priority], count)
        yield waiting
        oldest = f["queue"]["oldest_wait_s"]
        yield GaugeMetricFamily(
            "labrunner_queue_oldest_wait_seconds", "How long the oldest waiting job has waited", value=oldest or 0.0
        )
        yield GaugeMetricFamily(
            "labrunner_queue_paused", "1 while the admin has paused the queue", value=int(f["queue_paused"])
        )
        yield GaugeMetricFamily(
            "labrunner_maintenance", "1 while maintenance mode refuses students' new jobs", value=int(f["maintenance"])
        )
        finished = CounterMetricFamily(
            "labrunner_jobs_finished", "Jobs finished, by verdict (infra_error: given up)", labels=["verdict"]
        )
        for verdict, count in f["verdicts"]:
            finished.add_metric([verdict], count)
        yield finished
        buckets, count, total = f["latency"]
        yield HistogramMetricFamily(
            "labrunner_job_latency_seconds",
            "Seconds from queueing a job to its result",
            buckets=[*((str(b), c) for b, c in zip(LATENCY_BUCKETS, buckets, strict=True)), ("+Inf", count)],
            sum_value=total,
        )
        runner = f["runner"]
        state = GaugeMetricFamily(
            "labrunner_runner_state", "The runner's state (1 for the current one)", labels=["state"]
        )
        for name in RUNNER_STATES:
            state.add_metric([name], int(runner.get("state") == name))
        yield state
        warm = runner.get("warm_sandboxes") or {}
        yield GaugeMetricFamily(
            "labrunner_warm_sandboxes", "Idle warm sandboxes waiting for their user", value=warm.get("idle", 0)
        )
        yield GaugeMetricFamily(
            "labrunner_pooled_sandboxes", "Started sandboxes waiting for a first user", value=warm.get("pooled", 0)
        )
        yield CounterMetricFamily(
            "labrunner_infra_retries", "Infrastructure failures since start", value=runner.get("infra_retries", 0)
        )
        yield CounterMetricFamily(
            "labrunner_executor_recycles", "Executor replacements since start", value=runner.get("executor_recycles", 0)
        )
        storage = f["storage"]
        yield GaugeMetricFamily("labrunner_db_bytes", "Size of the database files", value=storage["db_bytes"])
        yield GaugeMetricFamily("labrunner_blob_bytes", "Size of the blob store", value=storage["blob_bytes"])
        yield GaugeMetricFamily(
            "labrunner_disk_free_bytes", "Free space on the data dir's disk", value=storage["disk_free_bytes"]
        )
        backup = f["last_backup"]
        yield GaugeMetricFamily(
            "labrunner_last_backup_timestamp_seconds",
            "When the last backup finished (0: never)",
            value=parse_iso(backup["finished_at"]).timestamp() if backup and backup["finished_at"] else 0,
        )
        yield GaugeMetricFamily(
            "labrunner_last_backup_success",
            "1 if the last backup succeeded",
            value=int(bool(backup) and backup["outcome"] == "ok"),
        )
        yield GaugeMetricFamily("labrunner_dashboard_streams", "Dashboard streams open now", value=f["streams"])


class Metrics:
    """This app's registry and its collector."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._figures = _Figures()
        self.registry.register(self._figures)

    async def scrape(self, dashboard: Dashboard, runner: RunnerService | None) -> bytes:
        db = dashboard.db
        counts = await store.queue_counts(db, None)
        storage = await dashboard.storage(runner)
        self._figures.figures = {
            "queue": queue_summary(counts, time.time()),
            "queue_paused": dashboard.modes.modes.queue_paused,
            "maintenance": bool(dashboard.modes.modes.maintenance),
            "verdicts": [(row["verdict"], row["jobs"]) for row in await store.verdict_counts(db)],
            "latency": await store.latency_buckets(db, LATENCY_BUCKETS),
            "runner": runner_health(runner),
            "storage": storage,
            "last_backup": await job_history.last_backup(db),
            "streams": dashboard.streams,
        }
        return generate_latest(self.registry)
