"""Classroom tools built for the web UI: roster import, password resets, gradebooks, progress, checks."""

from __future__ import annotations

from aiohttp import web

from appliance import checks, gradebook, roster
from appliance.app_keys import ACCOUNTS, DB, SETTINGS
from appliance.errors import Invalid, UnsupportedMedia
from appliance.http.jsonio import body, json_response, path_id, read_body
from appliance.http.middleware import current_user
from appliance.http.routing import Routes
from appliance.http.runner_access import wake_runner
from appliance.http.shapes import QUEUED
from appliance.http.views.jobs import submission_schema
from appliance.validation import F, Schema

routes = Routes()

RESET = Schema(
    {
        "password": F(
            "string",
            required=False,
            nullable=True,
            max_length=256,
            description="the new password; omit or null to generate one",
        )
    }
)
CSV_TYPES = ("text/csv", "application/csv", "text/plain", "application/vnd.ms-excel")


@routes.route(
    "POST",
    "/api/classes/{id}/roster/import",
    access="staff",
    summary="Create and enroll students from a CSV file (username, password?, birthdate?)",
    status=201,
    request_type="text/csv",
)
async def import_roster(request: web.Request) -> web.Response:
    if request.content_type not in CSV_TYPES:
        raise UnsupportedMedia("unsupported_media_type", "send the roster as text/csv")
    data = await read_body(request)
    result = await roster.import_csv(
        request.app[DB], request.app[ACCOUNTS], request.app[SETTINGS], current_user(request), path_id(request), data
    )
    return json_response(result, status=201)


@routes.route(
    "POST",
    "/api/users/{id}/reset-password",
    access="staff",
    summary="Set a new password for a student of your classes (generated when none is given)",
    body=RESET,
)
async def reset_password(request: web.Request) -> web.Response:
    data = await body(request)
    result = await roster.reset_password(
        request.app[DB], request.app[ACCOUNTS], current_user(request), path_id(request), data.get("password")
    )
    return json_response(result)


@routes.route(
    "GET", "/api/classes/{id}/gradebook", access="staff", summary="Best score per student and problem of a class"
)
async def class_gradebook(request: web.Request) -> web.Response:
    return json_response(await gradebook.class_gradebook(request.app[DB], current_user(request), path_id(request)))


@routes.route(
    "GET",
    "/api/classes/{id}/gradebook.csv",
    access="staff",
    summary="Gradebook CSV: ?layout=long (a row per student and problem, default) or wide (a column per problem)",
    response_type="text/csv",
)
async def class_gradebook_csv(request: web.Request) -> web.Response:
    layout = request.query.get("layout", "long")
    if layout not in ("long", "wide"):
        raise Invalid("invalid_layout", "layout must be 'long' or 'wide'", field="layout")
    book = await gradebook.class_gradebook(request.app[DB], current_user(request), path_id(request))
    data = gradebook.long_csv(book) if layout == "long" else gradebook.wide_csv(book)
    return web.Response(
        body=data,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="gradebook-class-{book["class"]["id"]}-{layout}.csv"'},
    )


@routes.route("GET", "/api/me/progress", access="user", summary="The caller's attempts and best score per problem")
async def my_progress(request: web.Request) -> web.Response:
    return json_response({"progress": await gradebook.progress(request.app[DB], current_user(request))})


@routes.route(
    "POST",
    "/api/problems/{id}/check",
    access="staff",
    summary="Check a reference solution against all tests (a teacher's submission, never deduplicated) → 202",
    body=submission_schema,
    status=202,
    response=QUEUED,
)
async def check_solution(request: web.Request) -> web.Response:
    data = await body(request)
    queued = await checks.check_solution(
        request.app[DB], request.app[SETTINGS], current_user(request), path_id(request), data["language"], data["code"]
    )
    wake_runner(request)
    return json_response(queued.to_json(), status=202)
