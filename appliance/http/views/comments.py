from __future__ import annotations

from aiohttp import web

from appliance import comments
from appliance.app_keys import DB, SETTINGS
from appliance.http.jsonio import body, json_response, path_id
from appliance.http.middleware import current_user
from appliance.http.routing import Routes
from appliance.http.shapes import BOOLEAN, INTEGER, STRING, TIMESTAMP, listing, nullable, obj

COMMENT = obj(
    id=INTEGER,
    submission_id=INTEGER,
    author_id=nullable(INTEGER),
    author=nullable(STRING),
    body=STRING,
    created_at=TIMESTAMP,
    updated_at=TIMESTAMP,
    edited=BOOLEAN,
)

routes = Routes()


@routes.route(
    "GET",
    "/api/submissions/{id}/comments",
    access="user",
    summary="Teachers' comments on a submission (its student, the problem's teacher, admins; 404 for others)",
    response=listing("comments", COMMENT),
)
async def list_comments(request: web.Request) -> web.Response:
    found = await comments.list_for(request.app[DB], current_user(request), path_id(request))
    return json_response({"comments": found})


@routes.route(
    "POST",
    "/api/submissions/{id}/comments",
    access="user",
    summary="Comment on a submission its student will see (the problem's teacher or an admin; a student gets 403;"
    " 409 too_many_comments past max_comments_per_submission)",
    body=comments.comment_schema,
    status=201,
    response=COMMENT,
)
async def add_comment(request: web.Request) -> web.Response:
    data = await body(request)
    user = current_user(request)
    added = await comments.add(request.app[DB], request.app[SETTINGS], user, path_id(request), data)
    return json_response(added, status=201)


@routes.route(
    "PATCH",
    "/api/submissions/{id}/comments/{comment_id}",
    access="user",
    summary="Change a comment (its author or an admin; 403 not_your_comment for another teacher's)",
    body=comments.comment_schema,
    response=COMMENT,
)
async def edit_comment(request: web.Request) -> web.Response:
    data = await body(request)
    user = current_user(request)
    changed = await comments.edit(request.app[DB], user, path_id(request), path_id(request, "comment_id"), data)
    return json_response(changed)
