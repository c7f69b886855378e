from __future__ import annotations

from aiohttp import web

from appliance import deadlines, problem_archive, problems
from appliance.app_keys import DB, SETTINGS
from appliance.errors import UnsupportedMedia
from appliance.http.jsonio import body, json_response, path_id, read_body
from appliance.http.middleware import current_user
from appliance.http.routing import Routes
from appliance.http.shapes import (
    ANY,
    BOOLEAN,
    INTEGER,
    NUMBER,
    STRING,
    TIMESTAMP,
    array,
    enum,
    listing,
    nullable,
    obj,
)

# A test case; staff also see its visibility (students only ever get the ones they may see).
TEST_CASE = obj(
    optional={"visibility": STRING, "visible": BOOLEAN, "reveal_at": nullable(TIMESTAMP)},
    id=INTEGER,
    name=STRING,
    stdin=STRING,
    expected_stdout=STRING,
    weight=NUMBER,
)
LATE_POLICY = enum(*deadlines.LATE_POLICIES)
# What a student sees of the due date that applies to them (null: none).
STUDENT_DEADLINE = {"due_at": nullable(TIMESTAMP), "late_policy": nullable(LATE_POLICY), "past_due": BOOLEAN}
PROBLEM = obj(
    optional={
        "classes": array(INTEGER),
        "due_dates": array(obj(class_id=INTEGER, due_at=nullable(TIMESTAMP), late_policy=LATE_POLICY)),
        **STUDENT_DEADLINE,
    },
    id=INTEGER,
    owner_id=INTEGER,
    title=STRING,
    statement=STRING,
    language=STRING,
    time_limit_ms=INTEGER,
    memory_limit_mb=INTEGER,
    comparison=STRING,
    tolerance=NUMBER,
    graphical=ANY,
    hidden_feedback=STRING,
    starter_code=STRING,
    created_at=TIMESTAMP,
    updated_at=TIMESTAMP,
    test_cases=array(TEST_CASE),
    hidden_test_count=INTEGER,
)
PROBLEM_ITEM = obj(
    optional={"classes": array(INTEGER), **STUDENT_DEADLINE},
    id=INTEGER,
    title=STRING,
    language=STRING,
    time_limit_ms=INTEGER,
    memory_limit_mb=INTEGER,
    updated_at=TIMESTAMP,
)

routes = Routes()


@routes.route(
    "GET",
    "/api/problems",
    access="user",
    summary="Problems the caller may see; a student's carry the due date that applies to them",
    response=listing("problems", PROBLEM_ITEM),
)
async def list_problems(request: web.Request) -> web.Response:
    return json_response({"problems": await problems.list_for(request.app[DB], current_user(request))})


@routes.route(
    "POST",
    "/api/problems",
    access="staff",
    summary="Create a problem with its test cases",
    body=problems.create_schema,
    status=201,
    response=PROBLEM,
)
async def create_problem(request: web.Request) -> web.Response:
    data = await body(request)
    user = current_user(request)
    return json_response(await problems.create(request.app[DB], request.app[SETTINGS], user, data), status=201)


@routes.route(
    "GET",
    "/api/problems/{id}",
    access="user",
    summary="One problem; students get visible tests only, and the due date that applies to them (the latest of"
    " their classes', none if one of them has none)",
    response=PROBLEM,
)
async def get_problem(request: web.Request) -> web.Response:
    return json_response(await problems.get_for(request.app[DB], current_user(request), path_id(request)))


@routes.route(
    "PATCH",
    "/api/problems/{id}",
    access="staff",
    summary="Change a problem (test_cases replaces all tests)",
    body=problems.update_schema,
    response=PROBLEM,
)
async def update_problem(request: web.Request) -> web.Response:
    data = await body(request)
    return json_response(await problems.update(request.app[DB], current_user(request), path_id(request), data))


@routes.route("DELETE", "/api/problems/{id}", access="staff", summary="Delete a problem", status=204)
async def delete_problem(request: web.Request) -> web.Response:
    await problems.delete(request.app[DB], current_user(request), path_id(request))
    return web.Response(status=204)


@routes.route("GET", "/api/problems/{id}/test-cases", access="user", summary="Visible test cases only")
async def visible_tests(request: web.Request) -> web.Response:
    tests = await problems.visible_tests(request.app[DB], current_user(request), path_id(request))
    return json_response({"test_cases": tests})


@routes.route("GET", "/api/problems/{id}/test-cases/all", access="staff", summary="All test cases (teachers, admins)")
async def all_tests(request: web.Request) -> web.Response:
    tests = await problems.all_tests(request.app[DB], current_user(request), path_id(request))
    return json_response({"test_cases": tests})


@routes.route(
    "GET",
    "/api/problems/{id}/export",
    access="staff",
    summary="The problem as a zip archive (problem.json, statement.md, tests/)",
    response_type="application/zip",
)
async def export_problem(request: web.Request) -> web.Response:
    problem = await problems.get_for(request.app[DB], current_user(request), path_id(request))
    return web.Response(
        body=problem_archive.pack(problem),
        content_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="problem-{problem["id"]}.zip"'},
    )


@routes.route(
    "POST",
    "/api/problems/import",
    access="staff",
    summary="Create a problem from an exported zip archive (application/zip; application/octet-stream accepted)",
    status=201,
    request_type="application/zip",
    response=PROBLEM,
)
async def import_problem(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if request.content_type not in ("application/zip", "application/octet-stream"):
        raise UnsupportedMedia("unsupported_media_type", "send the archive as application/zip")
    payload = problem_archive.unpack(await read_body(request, settings.max_import_bytes), settings)
    data = problems.create_schema(settings).parse(payload)
    user = current_user(request)
    return json_response(await problems.create(request.app[DB], settings, user, data), status=201)
