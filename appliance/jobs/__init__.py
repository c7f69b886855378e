"""Runs and submissions, by concern: queueing them under caps and budgets (`queueing`), their
results as each reader may see them (`results`), submission lists (`listing`), rejudges
(`rejudges`), stopping a run (`stopping`), the admin's view of the queue (`queue_admin`), the
dashboard's abort and requeue buttons (`queue_controls`) and the
expiry of stored full outputs (`output_expiry`). What the HTTP views and the other domain modules
call is re-exported here."""

from __future__ import annotations

from appliance.jobs.listing import list_submissions
from appliance.jobs.output_expiry import purge_expired_outputs
from appliance.jobs.queue_admin import requeue_failed, stats
from appliance.jobs.queue_controls import abort_job, requeue_job
from appliance.jobs.queueing import Queued, run, submit
from appliance.jobs.rejudges import publish_rejudge, rejudge, rejudge_results
from appliance.jobs.results import (
    FINAL,
    full_output,
    job_status,
    picture,
    readable_job,
    run_json,
    student_verdict,
    submission_json,
)
from appliance.jobs.stopping import stop_run

__all__ = [
    "FINAL",
    "Queued",
    "abort_job",
    "full_output",
    "job_status",
    "list_submissions",
    "picture",
    "publish_rejudge",
    "purge_expired_outputs",
    "readable_job",
    "rejudge",
    "rejudge_results",
    "requeue_failed",
    "requeue_job",
    "run",
    "run_json",
    "stats",
    "stop_run",
    "student_verdict",
    "submission_json",
    "submit",
]
