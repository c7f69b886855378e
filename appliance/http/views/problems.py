from __future__ import annotations

from aiohttp import web

from appliance import problem_archive, problems
from appliance.app_keys import DB, SETTINGS
from appliance.errors import UnsupportedMedia
from appliance.http.jsonio import body, json_response, path_id, read_body
from appliance.http.middleware import current_user
from appliance.http.routing import Routes

routes = Routes()


@routes.route("GET", "/api/problems", access="user", summary="Problems the caller may see")
async def list_problems(request: web.Request) -> web.Response:
    return json_response({"problems": await problems.list_for(request.app[DB], current_user(request))})


@routes.route(
    "POST",
    "/api/problems",
    access="staff",
    summary="Create a problem with its test cases",
    body=problems.create_schema,
)
async def create_problem(request: web.Request) -> web.Response:
    data = await body(request)
    user = current_user(request)
    return json_response(await problems.create(request.app[DB], request.app[SETTINGS], user, data), status=201)


@routes.route("GET", "/api/problems/{id}", access="user", summary="One problem; students get visible tests only")
async def get_problem(request: web.Request) -> web.Response:
    return json_response(await problems.get_for(request.app[DB], current_user(request), path_id(request)))


@routes.route(
    "PATCH",
    "/api/problems/{id}",
    access="staff",
    summary="Change a problem (test_cases replaces all tests)",
    body=problems.update_schema,
)
async def update_problem(request: web.Request) -> web.Response:
    data = await body(request)
    return json_response(await problems.update(request.app[DB], current_user(request), path_id(request), data))


@routes.route("DELETE", "/api/problems/{id}", access="staff", summary="Delete a problem")
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
    content_type="application/zip",
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
    summary="Create a problem from an exported zip archive",
    content_type="application/zip",
)
async def import_problem(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if request.content_type not in ("application/zip", "application/octet-stream"):
        raise UnsupportedMedia("unsupported_media_type", "send the archive as application/zip")
    payload = problem_archive.unpack(await read_body(request, settings.max_import_bytes), settings)
    data = problems.create_schema(settings).parse(payload)
    user = current_user(request)
    return json_response(await problems.create(request.app[DB], settings, user, data), status=201)
