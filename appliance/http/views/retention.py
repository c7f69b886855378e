from __future__ import annotations

from aiohttp import web

from appliance import retention
from appliance.app_keys import DB
from appliance.errors import Invalid
from appliance.http.jsonio import json_response
from appliance.http.routing import Routes
from appliance.http.shapes import INTEGER, STRING, TIMESTAMP, array, enum, nullable, obj

routes = Routes()

PURGE = obj(
    id=INTEGER,
    run_at=TIMESTAMP,
    policy=enum("minor", "adult", "everyone"),
    what=STRING,
    rows=INTEGER,
    blobs=INTEGER,
    older_than=nullable(TIMESTAMP),
    finished_at=TIMESTAMP,
)


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", str(retention.AUDIT_MAX_ROWS))
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6) or not 1 <= int(raw) <= retention.AUDIT_MAX_ROWS:
        raise Invalid(
            "invalid_limit", f"limit must be a whole number from 1 to {retention.AUDIT_MAX_ROWS}", field="limit"
        )
    return int(raw)


@routes.route(
    "GET",
    "/api/admin/purges",
    access="admin",
    summary="What the retention purges removed, newest first: per run, policy and kind of data (?limit=)",
    response=obj(purges=array(PURGE)),
)
async def purges(request: web.Request) -> web.Response:
    return json_response({"purges": await retention.audit_log(request.app[DB], _limit(request))})
