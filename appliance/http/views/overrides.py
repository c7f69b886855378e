"""Quota overrides over HTTP: a class's and a student's limits, and the admin's list of them all."""

from __future__ import annotations

from aiohttp import web

from appliance import limit_overrides
from appliance.app_keys import DB, SETTINGS
from appliance.http.jsonio import body, json_response, path_id
from appliance.http.middleware import current_user
from appliance.http.routing import Routes
from appliance.http.shapes import INTEGER, STRING, TIMESTAMP, array, enum, nullable, obj
from appliance.limit_overrides import MAX_VALUE, NAMES
from appliance.validation import F, Schema

routes = Routes()

OVERRIDE = obj(value=INTEGER, until=nullable(TIMESTAMP), set_at=TIMESTAMP)
LIMIT = obj(name=enum(*NAMES), help=STRING, default=INTEGER, override=nullable(OVERRIDE))
CLASS_LIMITS = obj(class_id=INTEGER, limits=array(LIMIT))
USER_LIMIT = obj(**LIMIT["properties"], effective=INTEGER, source=enum("setting", "class", "user"))
USER_LIMITS = obj(user_id=INTEGER, limits=array(USER_LIMIT))
LISTED = obj(
    id=INTEGER,
    user_id=nullable(INTEGER),
    username=nullable(STRING),
    class_id=nullable(INTEGER),
    class_name=nullable(STRING),
    name=enum(*NAMES),
    value=INTEGER,
    until=nullable(TIMESTAMP),
    set_at=TIMESTAMP,
    set_by=nullable(INTEGER),
)

PUT_LIMITS = Schema(
    {
        "limits": F(
            "object",
            properties={
                name: F(
                    "integer",
                    required=False,
                    nullable=True,
                    minimum=0,
                    maximum=MAX_VALUE,
                    description="the limit (0: no limit); null removes the override",
                )
                for name in NAMES
            },
        ),
        "until": F(
            "string",
            required=False,
            nullable=True,
            max_length=40,
            description="when the values set here stop applying (ISO 8601); absent or null: until removed",
        ),
    }
)


@routes.route(
    "GET",
    "/api/classes/{id}/limits",
    access="staff",
    summary="A class's limits: each setting's default and the class's override (its teacher, admins)",
    response=CLASS_LIMITS,
)
async def class_limits(request: web.Request) -> web.Response:
    found = await limit_overrides.for_class(
        request.app[DB], request.app[SETTINGS], current_user(request), path_id(request)
    )
    return json_response(found)


@routes.route(
    "PUT",
    "/api/classes/{id}/limits",
    access="staff",
    summary="Override limits for a class's students ({limits: {name: value|0 for none|null to remove}, until?});"
    " a student's own override comes first, else the most generous of their classes'",
    body=PUT_LIMITS,
    response=CLASS_LIMITS,
)
async def put_class_limits(request: web.Request) -> web.Response:
    data = await body(request)
    found = await limit_overrides.set_for_class(
        request.app[DB], request.app[SETTINGS], current_user(request), path_id(request), data
    )
    return json_response(found)


@routes.route(
    "GET",
    "/api/users/{id}/limits",
    access="user",
    summary="A student's limits in force and where each comes from (the student, their teacher, admins)",
    response=USER_LIMITS,
)
async def user_limits(request: web.Request) -> web.Response:
    found = await limit_overrides.for_user(
        request.app[DB], request.app[SETTINGS], current_user(request), path_id(request)
    )
    return json_response(found)


@routes.route(
    "PUT",
    "/api/users/{id}/limits",
    access="staff",
    summary="Override one student's limits (their teacher, admins), as for a class",
    body=PUT_LIMITS,
    response=USER_LIMITS,
)
async def put_user_limits(request: web.Request) -> web.Response:
    data = await body(request)
    found = await limit_overrides.set_for_user(
        request.app[DB], request.app[SETTINGS], current_user(request), path_id(request), data
    )
    return json_response(found)


@routes.route(
    "GET",
    "/api/admin/overrides",
    access="admin",
    summary="Every quota override in force, of every class and student",
    response=obj(overrides=array(LISTED)),
)
async def all_overrides(request: web.Request) -> web.Response:
    return json_response({"overrides": await limit_overrides.all_overrides(request.app[DB])})
