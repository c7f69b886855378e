"""`GET /metrics` for a Prometheus scraper: an admin's API token only."""

from __future__ import annotations

from aiohttp import web

from appliance.app_keys import DASHBOARD, METRICS, RUNNER
from appliance.errors import Forbidden
from appliance.http.middleware import AUTH_VIA
from appliance.http.routing import Routes
from appliance.metrics import CONTENT_TYPE

routes = Routes()


@routes.route(
    "GET",
    "/metrics",
    access="admin",
    summary="Prometheus text, labrunner_* metrics (queue, verdicts, latency, runner, storage, backups);"
    " an admin's Bearer token only: a browser session gets 403 token_required",
    response_type="text/plain",
)
async def metrics(request: web.Request) -> web.Response:
    # A scraper holds a token; a page that an admin's browser opens must not read this across sites
    # or by a script injected elsewhere riding the cookie.
    if request[AUTH_VIA] != "bearer":
        raise Forbidden("token_required", "/metrics takes an admin's API token (Authorization: Bearer), not a session")
    text = await request.app[METRICS].scrape(request.app[DASHBOARD], request.app.get(RUNNER))
    return web.Response(body=text, headers={"Content-Type": CONTENT_TYPE})
