from __future__ import annotations

from aiohttp import web

from appliance import classes
from appliance.app_keys import DB, USER_RATES
from appliance.http.jsonio import body, json_response, path_id
from appliance.http.middleware import current_user
from appliance.http.routing import Routes
from appliance.http.shapes import INTEGER, STRING, TIMESTAMP, array, listing, obj
from appliance.validation import F, Schema

# A class; its teacher (and admins) also get the join code, and the roster where one class is shown.
MEMBER = obj(id=INTEGER, username=STRING, added_at=TIMESTAMP)
CLASS = obj(
    optional={"join_code": STRING, "members": array(MEMBER)},
    id=INTEGER,
    name=STRING,
    owner_id=INTEGER,
    created_at=TIMESTAMP,
)

routes = Routes()

CREATE = Schema({"name": F("string", min_length=1, max_length=200)})
JOIN = Schema({"code": F("string", min_length=1, max_length=32)})
MEMBERS = Schema({"usernames": F("array", max_length=500, items=F("string", max_length=64))})


@routes.route(
    "GET",
    "/api/classes",
    access="user",
    summary="Classes: owned (teachers), all (admins), joined (students)",
    response=listing("classes", CLASS),
)
async def list_classes(request: web.Request) -> web.Response:
    return json_response({"classes": await classes.list_for(request.app[DB], current_user(request))})


@routes.route(
    "POST",
    "/api/classes",
    access="staff",
    summary="Create a class with a join code",
    body=CREATE,
    status=201,
    response=CLASS,
)
async def create_class(request: web.Request) -> web.Response:
    data = await body(request)
    return json_response(await classes.create(request.app[DB], current_user(request), data["name"]), status=201)


@routes.route(
    "GET", "/api/classes/{id}", access="user", summary="One class (with roster for its teacher)", response=CLASS
)
async def get_class(request: web.Request) -> web.Response:
    return json_response(await classes.get_for(request.app[DB], current_user(request), path_id(request)))


@routes.route(
    "POST",
    "/api/classes/join",
    access="user",
    summary="Join a class by its code (students); too many wrong codes from one account → 429"
    " too_many_join_attempts with Retry-After",
    body=JOIN,
    response=CLASS,
)
async def join_class(request: web.Request) -> web.Response:
    data = await body(request)
    rates = request.app[USER_RATES]
    return json_response(await classes.join(request.app[DB], rates, current_user(request), data["code"]))


@routes.route(
    "POST", "/api/classes/{id}/members", access="staff", summary="Add students to a class", body=MEMBERS, response=CLASS
)
async def add_members(request: web.Request) -> web.Response:
    data = await body(request)
    return json_response(
        await classes.add_members(request.app[DB], current_user(request), path_id(request), data["usernames"])
    )
