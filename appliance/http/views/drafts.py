from __future__ import annotations

from aiohttp import web

from appliance import drafts
from appliance.app_keys import DB
from appliance.http.jsonio import body, json_response, path_id
from appliance.http.middleware import current_user
from appliance.http.routing import Routes

routes = Routes()


@routes.route(
    "GET", "/api/problems/{id}/draft", access="user", summary="The caller's saved draft for a problem, or null"
)
async def get_problem_draft(request: web.Request) -> web.Response:
    draft = await drafts.get(request.app[DB], current_user(request), path_id(request))
    return json_response({"draft": draft})


@routes.route(
    "PUT",
    "/api/problems/{id}/draft",
    access="user",
    summary="Save the caller's draft for a problem (409 draft_conflict: stale base_revision, different text)",
    body=drafts.draft_schema,
)
async def put_problem_draft(request: web.Request) -> web.Response:
    data = await body(request)
    draft = await drafts.save(request.app[DB], current_user(request), path_id(request), data)
    return json_response({"draft": draft})


@routes.route("GET", "/api/drafts/scratch", access="user", summary="The caller's scratchpad draft, or null")
async def get_scratch_draft(request: web.Request) -> web.Response:
    return json_response({"draft": await drafts.get(request.app[DB], current_user(request), None)})


@routes.route(
    "PUT",
    "/api/drafts/scratch",
    access="user",
    summary="Save the caller's scratchpad draft (409 draft_conflict: stale base_revision, different text)",
    body=drafts.draft_schema,
)
async def put_scratch_draft(request: web.Request) -> web.Response:
    data = await body(request)
    return json_response({"draft": await drafts.save(request.app[DB], current_user(request), None, data)})
