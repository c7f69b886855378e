"""The central view, for admins of a central instance: the classroom appliances that push here,
their last sync and lag, and one appliance's classes, problems and scores per class and problem.
No synced record is ever handed over whole (appliance/store/central_view.py)."""

from __future__ import annotations

from aiohttp import web

from appliance import central_view
from appliance.accounts import User
from appliance.app_keys import DB
from appliance.http.jsonio import json_response, path_id
from appliance.http.routing import Routes
from appliance.http.shapes import INTEGER, NUMBER, STRING, TIMESTAMP, array, nullable, obj
from appliance.http.views.ui_pages import not_found, page, render

routes = Routes()

BUNDLE = obj(generation=INTEGER, since=INTEGER, watermark=INTEGER, changes=nullable(INTEGER), after_s=nullable(NUMBER))
APPLIANCE = obj(
    id=INTEGER,
    name=STRING,
    fingerprint=STRING,
    appliance_id=nullable(STRING),
    added_at=TIMESTAMP,
    last_import_at=nullable(TIMESTAMP),
    lag_s=nullable(NUMBER),
    generation=nullable(INTEGER),
    watermark=nullable(INTEGER),
    last_bundle=nullable(BUNDLE),
    classes=INTEGER,
    problems=INTEGER,
    students=INTEGER,
    submissions=INTEGER,
    last_submission_at=nullable(TIMESTAMP),
)
SCORE = obj(
    class_id=INTEGER,
    class_name=STRING,
    problem_id=INTEGER,
    problem_title=STRING,
    students=INTEGER,
    attempted=INTEGER,
    solved=INTEGER,
    mean_best=nullable(NUMBER),
    median_best=nullable(NUMBER),
    last_submission_at=nullable(TIMESTAMP),
)
DETAIL = obj(
    **APPLIANCE["properties"],
    class_list=array(obj(id=INTEGER, name=STRING, teacher=nullable(STRING), students=INTEGER)),
    problem_list=array(
        obj(
            id=INTEGER,
            title=STRING,
            language=nullable(STRING),
            updated_at=nullable(TIMESTAMP),
            visible_tests=INTEGER,
            other_tests=INTEGER,
        )
    ),
    scores=array(SCORE),
    max_score=NUMBER,
)


@routes.route(
    "GET", "/admin/central", access="anyone", summary="The central view", response_type="text/html", in_api=False
)
@page(role="staff")
async def central_page(request: web.Request, user: User) -> web.Response:
    if user.role != "admin":
        return not_found(request)
    return render(request, "admin-central", "Central view", main_class="wide")


@routes.route(
    "GET",
    "/api/admin/central/appliances",
    access="admin",
    summary="Central instance: the registered classroom appliances, each with its last import, lag (seconds since"
    " it), the last bundle's mark and changes, and how many classes, problems, students and submissions it sent",
    response=obj(at=NUMBER, appliances=array(APPLIANCE)),
)
async def appliances(request: web.Request) -> web.Response:
    return json_response(await central_view.overview(request.app[DB]))


@routes.route(
    "GET",
    "/api/admin/central/appliances/{id}",
    access="admin",
    summary="Central instance: one registered appliance with its classes, problems (test counts, never their"
    " content) and per class and problem: students, attempted, solved, mean and median best score, last"
    " submission; 404 appliance_not_found",
    response=DETAIL,
)
async def appliance(request: web.Request) -> web.Response:
    return json_response(await central_view.detail(request.app[DB], path_id(request)))
