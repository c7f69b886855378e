"""Stopping a run: its owner's Stop button in the input-box mode (a live run stops over its own
socket). A queued run ends at once without running; a running one is stopped in its sandbox by
the runner, whose worker then ends it. Either way its verdict is `stopped`, and a run that had
already finished is left as it was."""

from __future__ import annotations

from collections.abc import Callable

from appliance.accounts import User
from appliance.db import Database
from appliance.errors import Conflict, NotFound
from appliance.jobs.results import readable_job
from appliance.store import jobs as job_store


async def stop_run(db: Database, user: User, job_id: int, stop_running: Callable[[int], bool]) -> None:
    """stop_running(job_id): the runner's stop, False when the job is not in a sandbox there."""
    job = await readable_job(db, user, job_id, "run")
    if job["user_id"] != user.id:
        raise NotFound("not_found", "no such run")  # an admin reads runs; only their owner stops one
    if await job_store.stop_queued_run(db, job_id):
        return
    # Claimed meanwhile, or running: the worker ends it once its sandbox is gone.
    if not stop_running(job_id):
        raise Conflict("run_finished", "this run has already finished (or is just finishing): nothing to stop")
