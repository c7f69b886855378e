"""What HTTP handlers ask of the runner: wake it for a queued job, warm a user's sandbox, stop a
job in its sandbox. Each is a no-op before the runner has started."""

from __future__ import annotations

from aiohttp import web

from appliance.app_keys import RUNNER


def wake_runner(request: web.Request) -> None:
    """A job was queued: a worker takes it now instead of at its next poll."""
    runner = request.app.get(RUNNER)
    if runner is not None:
        runner.notify()


def warm_sandbox(request: web.Request, user_id: int) -> None:
    """The user is about (logged in, opened a page): start their sandbox before they run code."""
    runner = request.app.get(RUNNER)
    if runner is not None:
        runner.prewarm(user_id)


def stop_job(request: web.Request, job_id: int) -> bool:
    """Stop a job in its sandbox now; False when none of the runner's sandboxes runs it."""
    runner = request.app.get(RUNNER)
    return runner is not None and runner.stop_job(job_id)
