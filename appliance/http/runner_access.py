"""What HTTP handlers ask of the runner: wake it for a queued job, warm a user's sandbox. Both are
no-ops before the runner has started."""

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
