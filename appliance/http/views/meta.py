from __future__ import annotations

from aiohttp import web

from appliance import job_history, legal
from appliance.app_keys import DB, SETTINGS
from appliance.health import health
from appliance.http.jsonio import body, json_response
from appliance.http.middleware import USER, current_user
from appliance.http.openapi import build_openapi
from appliance.http.routing import DECLARED, Routes
from appliance.validation import F, Schema

routes = Routes()

PUBLISH = Schema(
    {
        "version": F("string", min_length=1, max_length=64),
        "markdown": F("string", min_length=1, max_length=200_000),
    }
)


@routes.route(
    "GET",
    "/healthz",
    access="anyone",
    summary="Liveness: database, runner and sandbox image (503 with the same report when one is not ok);"
    " admins also see the last backup (when, outcome, archive or error)",
    status=(200, 503),
)
async def healthz(request: web.Request) -> web.Response:
    report = await health(request.app)
    user = request.get(USER)
    if user is not None and user.role == "admin":
        report["backup"] = await job_history.last_backup(request.app[DB])
    return json_response(report, status=200 if report["status"] == "ok" else 503)


@routes.route("GET", "/api/openapi.json", access="anyone", summary="This API's OpenAPI document")
async def openapi(request: web.Request) -> web.Response:
    return json_response(build_openapi(request.app[SETTINGS], request.app[DECLARED]))


@routes.route("GET", "/api/legal/{kind}", access="anyone", summary="Current terms or privacy text: {version, markdown}")
async def get_legal(request: web.Request) -> web.Response:
    return json_response(await legal.current(request.app[DB], request.match_info["kind"]))


@routes.route(
    "PUT",
    "/api/legal/{kind}",
    access="admin",
    summary="Publish a new version of the terms or privacy text",
    body=PUBLISH,
    status=201,
)
async def put_legal(request: web.Request) -> web.Response:
    data = await body(request)
    user = current_user(request)
    doc = await legal.publish(
        request.app[DB], request.match_info["kind"], data["version"].strip(), data["markdown"], user.id
    )
    return json_response(doc, status=201)
