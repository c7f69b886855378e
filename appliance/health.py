"""What /healthz reports: the database, the runner and the sandbox image."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from appliance.app_keys import DB, RUNNER


async def health(app: web.Application) -> dict[str, Any]:
    db_state = "ok"
    try:
        await app[DB].fetchval("SELECT 1")
    except Exception as exc:  # any failure here is what the health check exists to report
        db_state = f"error: {exc}"
    runner = app.get(RUNNER)
    runner_state, image_state = ("not_started", "unknown") if runner is None else await runner.health()
    healthy = db_state == "ok" and runner_state == "ok" and image_state == "ok"
    return {
        "status": "ok" if healthy else "degraded",
        "db": db_state,
        "runner": runner_state,
        "image": image_state,
    }
