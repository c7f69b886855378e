"""Admin: take a backup now, and the job history (backups, restores, scheduled purges)."""

from __future__ import annotations

from aiohttp import web

from appliance import backups, job_history
from appliance.app_keys import DB, SETTINGS
from appliance.errors import Invalid
from appliance.http.jsonio import body, json_response
from appliance.http.routing import JsonSchema, Routes

routes = Routes()

HISTORY_MAX = 500
_COUNTS: JsonSchema = {"type": "object", "additionalProperties": {"type": "integer"}}
BACKUP: JsonSchema = {
    "type": "object",
    "required": ["archive", "bytes", "tables", "blobs", "schema_version", "encrypted", "rotated_out"],
    "properties": {
        "archive": {"type": "string"},
        "bytes": {"type": "integer"},
        "tables": _COUNTS,
        "blobs": {"type": "integer"},
        "schema_version": {"type": "integer"},
        "encrypted": {"type": "boolean"},
        "rotated_out": {"type": "array", "items": {"type": "string"}},
    },
}
RUN: JsonSchema = {
    "type": "object",
    "required": ["id", "job", "trigger", "started_at", "finished_at", "outcome", "bytes", "detail"],
    "properties": {
        "id": {"type": "integer"},
        "job": {"type": "string"},
        "trigger": {"type": "string", "enum": ["schedule", "catch_up", "admin", "cli"]},
        "started_at": {"type": "string"},
        "finished_at": {"type": "string", "nullable": True},
        "outcome": {"type": "string", "enum": ["running", "ok", "failed"]},
        "bytes": {"type": "integer", "nullable": True},
        "detail": {"type": "object"},
    },
}
HISTORY: JsonSchema = {
    "type": "object",
    "required": ["runs"],
    "properties": {"runs": {"type": "array", "items": RUN}},
}


@routes.route(
    "POST",
    "/api/admin/backups",
    access="admin",
    summary="Take a backup now (encrypted when a passphrase is configured); answers when it is written",
    status=201,
    response=BACKUP,
)
async def create_backup(request: web.Request) -> web.Response:
    await body(request)
    result = await backups.take_backup(request.app[DB], request.app[SETTINGS], trigger="admin")
    return json_response({**result.detail(), "bytes": result.size}, status=201)


@routes.route(
    "GET",
    "/api/admin/jobs/history",
    access="admin",
    summary="Runs of backups, restores and scheduled purges, newest first; ?job=NAME&limit=N",
    response=HISTORY,
)
async def jobs_history(request: web.Request) -> web.Response:
    raw = request.query.get("limit", "100")
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= HISTORY_MAX:
        raise Invalid("invalid_limit", f"limit must be a whole number from 1 to {HISTORY_MAX}", field="limit")
    runs = await job_history.history(request.app[DB], job=request.query.get("job"), limit=int(raw))
    return json_response({"runs": runs})
