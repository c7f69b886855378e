"""Exam mode over HTTP: a class's exams (its teacher, admins), a student's running exam for their
banner, and the teacher's live view of the class during an exam (a page and its event stream)."""

from __future__ import annotations

import json
import time

from aiohttp import web

from appliance import classes, exams
from appliance.accounts import User
from appliance.app_keys import DASHBOARD, DB, EVENTS, PRESENCE, SETTINGS
from appliance.errors import AppError, NotFound
from appliance.http.jsonio import body, json_response, path_id
from appliance.http.middleware import current_user, still_allowed
from appliance.http.routing import Routes
from appliance.http.shapes import BOOLEAN, INTEGER, NUMBER, STRING, TIMESTAMP, array, enum, listing, nullable, obj
from appliance.http.views.ui_pages import not_found, page, render

EXAM = obj(
    id=INTEGER,
    class_id=INTEGER,
    title=STRING,
    starts_at=TIMESTAMP,
    ends_at=TIMESTAMP,
    runs_allowed=BOOLEAN,
    max_submissions_per_problem=nullable(INTEGER),
    problem_ids=array(INTEGER),
    problems=array(obj(id=INTEGER, title=STRING)),
    state=enum("upcoming", "running", "over"),
    created_at=TIMESTAMP,
    updated_at=TIMESTAMP,
)
STUDENT_EXAM = obj(
    id=INTEGER,
    title=STRING,
    starts_at=TIMESTAMP,
    ends_at=TIMESTAMP,
    runs_allowed=BOOLEAN,
    max_submissions_per_problem=nullable(INTEGER),
    problems=array(obj(id=INTEGER, title=STRING, submissions_used=INTEGER)),
)
# Per student: online or not, and per exam problem (keyed by its id) the submissions made during
# the exam and their best score.
LIVE_VIEW = obj(
    exam=EXAM,
    presence_s=INTEGER,
    students=array(
        obj(
            id=INTEGER,
            username=STRING,
            online=BOOLEAN,
            last_seen_at=nullable(TIMESTAMP),
            problems={
                "type": "object",
                "additionalProperties": obj(submissions=INTEGER, best_score=nullable(NUMBER)),
            },
        )
    ),
)
STREAM_MAX_S = 600  # a live view's stream ends after this; the page's EventSource reconnects

routes = Routes()


@routes.route(
    "POST",
    "/api/classes/{id}/exams",
    access="staff",
    summary="Schedule an exam for one's class: its problems (shown to the class), start and end, whether runs are"
    " allowed and how many submissions each student may make per problem. 409 exam_overlap when the class has"
    " another exam then",
    body=exams.create_schema,
    status=201,
    response=EXAM,
)
async def create_exam(request: web.Request) -> web.Response:
    data = await body(request)
    exam = await exams.create(request.app[DB], request.app[SETTINGS], current_user(request), path_id(request), data)
    return json_response(exam, status=201)


@routes.route(
    "GET",
    "/api/classes/{id}/exams",
    access="staff",
    summary="The exams of one's class, earliest first",
    response=listing("exams", EXAM),
)
async def list_exams(request: web.Request) -> web.Response:
    found = await exams.list_for_class(request.app[DB], current_user(request), path_id(request))
    return json_response({"exams": found})


@routes.route("GET", "/api/exams/{id}", access="staff", summary="One exam of one's class", response=EXAM)
async def get_exam(request: web.Request) -> web.Response:
    return json_response(await exams.get_for(request.app[DB], current_user(request), path_id(request)))


@routes.route(
    "PATCH",
    "/api/exams/{id}",
    access="staff",
    summary="Change an exam (problem_ids replaces its problems); it may be moved, extended or ended early",
    body=exams.update_schema,
    response=EXAM,
)
async def update_exam(request: web.Request) -> web.Response:
    data = await body(request)
    user = current_user(request)
    return json_response(await exams.update(request.app[DB], request.app[SETTINGS], user, path_id(request), data))


@routes.route("DELETE", "/api/exams/{id}", access="staff", summary="Delete an exam", status=204)
async def delete_exam(request: web.Request) -> web.Response:
    await exams.delete(request.app[DB], current_user(request), path_id(request))
    return web.Response(status=204)


async def _live_view(request: web.Request, user: User, exam_id: int) -> dict[str, object]:
    app = request.app
    return await exams.live_view(app[DB], app[SETTINGS], app[PRESENCE], user, exam_id)


@routes.route(
    "GET",
    "/api/exams/{id}/progress",
    access="staff",
    summary="The exam's class now: each student online or not, and per exam problem the submissions made during"
    " the exam and their best score",
    response=LIVE_VIEW,
)
async def exam_progress(request: web.Request) -> web.Response:
    return json_response(await _live_view(request, current_user(request), path_id(request)))


@routes.route(
    "GET",
    "/api/exams/{id}/live",
    access="staff",
    summary="The exam's progress (as /progress) as Server-Sent Events: a `progress` event whenever it changes",
    response_type="text/event-stream",
)
async def exam_live(request: web.Request) -> web.StreamResponse:
    user, exam_id = current_user(request), path_id(request)
    snapshot = await _live_view(request, user, exam_id)  # 404 before the stream opens
    # The dashboard's bounded stream slots and shutdown flag: a live view is one more staff stream.
    streams = request.app[DASHBOARD]
    with streams.stream_slot(user):
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        await response.prepare(request)
        refresh = request.app[SETTINGS].exam_live_refresh_s
        deadline = time.monotonic() + STREAM_MAX_S
        last = ""
        try:
            while not streams.closing:
                payload = json.dumps(snapshot, ensure_ascii=False)
                if payload != last:
                    await response.write(f"event: progress\ndata: {payload}\n\n".encode())
                    last = payload
                if time.monotonic() >= deadline:
                    break
                # A submission wakes the stream at once; presence changes show within `refresh`.
                await request.app[EVENTS].wait_any(refresh)
                # Logged out or disabled meanwhile: the class is no longer theirs to watch.
                if not await still_allowed(request, user):
                    break
                try:
                    snapshot = await _live_view(request, user, exam_id)
                except AppError:  # the exam was deleted meanwhile
                    break
            await response.write_eof()
        except ConnectionResetError:  # the page went away
            pass
        return response


@routes.route(
    "GET",
    "/api/me/exam",
    access="user",
    summary="The caller's running exams (empty outside them): end time, whether runs are allowed, and submissions"
    " used per problem; the student's pages poll it for their banner",
    response=listing("exams", STUDENT_EXAM),
)
async def my_exam(request: web.Request) -> web.Response:
    return json_response(await exams.student_view(request.app[DB], current_user(request)))


@routes.route(
    "GET",
    "/teach/classes/{id}/exam",
    access="anyone",
    summary="A class's exams and, during one, who is online and their progress, live",
    response_type="text/html",
    in_api=False,
)
@page(role="staff")
async def exam_page(request: web.Request, user: User) -> web.Response:
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        return not_found(request)
    try:
        row = await classes.owned_row(request.app[DB], user, int(raw))
    except NotFound:
        return not_found(request)
    return render(request, "teach-exam", f"Exam · {row['name']}", values={"id": row["id"]}, main_class="wide")
