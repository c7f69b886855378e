"""Problem sets over HTTP: the publisher's offer to classrooms (authenticated by the classroom's
signed request, never a session: appliance/problem_sets_offers.py), and on the classroom the
inbox, which teachers list and import chosen problems from (staff only: the inbox summary carries
no test contents, but nothing of it is a student's business), plus its page."""

from __future__ import annotations

from aiohttp import web

from appliance import problem_sets, problem_sets_offers
from appliance.accounts import User
from appliance.app_keys import BLOBS, DB, SETTINGS
from appliance.http.jsonio import body, json_response, path_id
from appliance.http.middleware import current_user
from appliance.http.routing import Routes
from appliance.http.shapes import INTEGER, STRING, TIMESTAMP, array, enum, listing, nullable, obj
from appliance.http.views.ui_pages import page, render
from appliance.validation import F, Schema

routes = Routes()

OFFER = obj(set_id=STRING, name=STRING, version=INTEGER, sha256=STRING, size=INTEGER)
SET_PROBLEM = obj(
    id=INTEGER,
    title=STRING,
    language=STRING,
    visible_tests=INTEGER,
    hidden_tests=INTEGER,
    imported=nullable(obj(problem_id=INTEGER, version=INTEGER)),
)
INBOX_ENTRY = obj(
    id=INTEGER,
    publisher=obj(name=STRING, fingerprint=STRING),
    set_id=STRING,
    name=STRING,
    version=INTEGER,
    received_at=TIMESTAMP,
    problems=array(SET_PROBLEM),
)
IMPORTED = listing(
    "imported", obj(origin_id=INTEGER, problem_id=INTEGER, outcome=enum("created", "updated", "unchanged"))
)
IMPORT = Schema(
    {
        "problems": F("array", min_length=1, max_length=1000, items=F("integer", minimum=1)),
        "classes": F("array", required=False, max_length=100, items=F("integer", minimum=1)),
        "replace": F(
            "boolean",
            required=False,
            description="overwrite your local edits of problems imported before with the publisher's version",
        ),
    }
)
_SIGNED = (
    " Authenticated by the classroom appliance's signed request (X-Labrunner-Key, X-Labrunner-Time,"
    " X-Labrunner-Signature) against the registered appliance keys."
)


@routes.route(
    "GET",
    "/api/sync/problem-sets",
    access="anyone",
    summary="The problem sets this instance publishes, latest version of each." + _SIGNED,
    response=listing("problem_sets", OFFER),
)
async def list_offers(request: web.Request) -> web.Response:
    await problem_sets_offers.authenticate(
        request.app[DB], request.app[SETTINGS], request.method, request.path_qs, request.headers
    )
    return json_response({"problem_sets": await problem_sets_offers.offers(request.app[DB])})


@routes.route(
    "GET",
    "/api/sync/problem-sets/{set_id}",
    access="anyone",
    summary="The latest signed bundle of one published problem set (application/zip)." + _SIGNED,
    response_type="application/zip",
)
async def get_offer(request: web.Request) -> web.Response:
    await problem_sets_offers.authenticate(
        request.app[DB], request.app[SETTINGS], request.method, request.path_qs, request.headers
    )
    data = await problem_sets_offers.latest_bundle(request.app[DB], request.app[BLOBS], request.match_info["set_id"])
    return web.Response(body=data, content_type="application/zip", headers={"Cache-Control": "no-store"})


@routes.route(
    "GET",
    "/api/problem-sets",
    access="staff",
    summary="Received problem sets (the inbox): publisher, version, and each problem's title, language and number"
    " of visible and hidden tests, with the caller's imported copy",
    response=listing("problem_sets", INBOX_ENTRY),
)
async def list_inbox(request: web.Request) -> web.Response:
    return json_response({"problem_sets": await problem_sets.inbox(request.app[DB], current_user(request))})


@routes.route(
    "POST",
    "/api/problem-sets/{id}/import",
    access="staff",
    summary="Import chosen problems of a received set as the caller's own, shown to the caller's chosen classes;"
    " a newer version updates the caller's earlier copy (refused with problem_set_local_edits if the caller"
    " edited it, unless replace)",
    body=IMPORT,
    response=IMPORTED,
)
async def import_problems(request: web.Request) -> web.Response:
    data = await body(request)
    imported = await problem_sets.import_into_problems(
        request.app[DB],
        request.app[BLOBS],
        request.app[SETTINGS],
        current_user(request),
        path_id(request),
        data["problems"],
        data.get("classes", []),
        replace=data.get("replace", False),
    )
    return json_response({"imported": imported})


@routes.route(
    "GET",
    "/teach/problem-sets",
    access="anyone",
    summary="Received problem sets: choose problems and classes, import",
    response_type="text/html",
    in_api=False,
)
@page(role="staff")
async def problem_sets_page(request: web.Request, user: User) -> web.Response:
    return render(request, "teach-problem-sets", "Problem sets", main_class="wide")
