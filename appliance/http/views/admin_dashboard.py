"""The live dashboard: its page, its one Server-Sent Events stream per tab, the buttons on a job
(abort, requeue), the admin's switches (pause, maintenance, verbose runner logging), and the
maintenance notice every page asks for."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

from aiohttp import web

from appliance import jobs, sync_status
from appliance.accounts import User
from appliance.app_keys import DASHBOARD, DB, EVENTS, MODES, RUNNER, SETTINGS
from appliance.errors import Invalid
from appliance.http.jsonio import body, json_response, path_id
from appliance.http.middleware import current_user, still_allowed
from appliance.http.routing import Routes
from appliance.http.runner_access import stop_job, wake_runner
from appliance.http.shapes import ANY, BOOLEAN, INTEGER, NUMBER, STRING, TIMESTAMP, enum, nullable, obj
from appliance.http.views.ui_pages import page, render
from appliance.settings import Settings
from appliance.validation import F, Schema

routes = Routes()

# A stream ends after this and the page's EventSource reconnects (a fresh session check, too).
STREAM_MAX_S = 600
CONTROLS = obj(
    queue_paused=BOOLEAN,
    maintenance=obj(on=BOOLEAN, message=STRING),
    verbose_until=nullable(NUMBER),
)
SYNC_STATUS = obj(
    appliance_id=nullable(STRING),
    fingerprint=STRING,
    public_key=STRING,
    central_url=nullable(STRING),
    every_s=NUMBER,
    last_push=nullable(
        obj(
            at=nullable(TIMESTAMP),
            trigger=STRING,
            outcome=enum("ok", "failed"),
            pushed=nullable(BOOLEAN),
            error_code=nullable(STRING),
            error_message=nullable(STRING),
        )
    ),
    generation=INTEGER,
    counter=INTEGER,
    acknowledged=nullable(obj(generation=INTEGER, watermark=INTEGER)),
    ack_error=nullable(STRING),
    unacknowledged=nullable(INTEGER),
)
MAINTENANCE = obj(on=BOOLEAN, message=STRING, poll_s=NUMBER)
# The snapshot's parts an admin gets besides the teacher's (queue, jobs, failed, throughput).
SNAPSHOT = obj(
    optional={"runner": ANY, "storage": ANY, "errors": ANY, "controls": CONTROLS, "streams": ANY},
    at=NUMBER,
    scope=enum("all", "own_classes"),
    queue=ANY,
    jobs=ANY,
    failed=ANY,
    throughput=ANY,
)


def _maintenance_schema(settings: Settings) -> Schema:
    return Schema(
        {
            "on": F("boolean"),
            "message": F(
                "string",
                required=False,
                max_length=settings.maintenance_message_max_chars,
                description="what students see while maintenance lasts (needed to turn it on)",
            ),
        }
    )


PAUSE_SCHEMA = Schema({"paused": F("boolean")})
VERBOSE_SCHEMA = Schema({"on": F("boolean")})


@routes.route("GET", "/admin", access="anyone", summary="The live dashboard", response_type="text/html", in_api=False)
@page(role="staff")
async def admin_page(request: web.Request, user: User) -> web.Response:
    return render(
        request,
        "admin",
        "Dashboard",
        values={"is_admin": user.role == "admin", "message_max": request.app[SETTINGS].maintenance_message_max_chars},
        main_class="wide",
    )


@routes.route(
    "GET",
    "/api/dashboard",
    access="staff",
    summary="One picture of the dashboard: admins see everything, a teacher the jobs of their own classes only",
    response=SNAPSHOT,
)
async def dashboard_snapshot(request: web.Request) -> web.Response:
    return json_response(await request.app[DASHBOARD].snapshot(current_user(request), request.app.get(RUNNER)))


@routes.route(
    "GET",
    "/api/dashboard/stream",
    access="staff",
    summary="The dashboard live (Server-Sent Events): a `snapshot` event (as GET /api/dashboard) every"
    " dashboard_interval_s and at once on queue changes; 503 too_many_streams past dashboard_streams_max (or"
    " dashboard_streams_per_user of the caller's)",
    response_type="text/event-stream",
)
async def dashboard_stream(request: web.Request) -> web.StreamResponse:
    user = current_user(request)
    dashboard, settings, events = request.app[DASHBOARD], request.app[SETTINGS], request.app[EVENTS]
    with dashboard.stream_slot(user):
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        await response.prepare(request)
        deadline = time.monotonic() + STREAM_MAX_S
        try:
            await response.write(f"retry: {round(settings.dashboard_interval_s * 1000)}\n\n".encode())
            while not dashboard.closing and time.monotonic() < deadline and await still_allowed(request, user):
                picture = await dashboard.snapshot(user, request.app.get(RUNNER))
                data = json.dumps(picture, ensure_ascii=False)
                await response.write(f"event: snapshot\ndata: {data}\n\n".encode())
                sent = time.monotonic()
                await events.wait_any(settings.dashboard_interval_s)
                # A burst of queue changes (a class submitting) sends a few pictures, not hundreds.
                await _sleep_until(sent + settings.dashboard_interval_s / 4)
            await response.write_eof()
        except ConnectionResetError:
            pass  # the tab closed
        return response


async def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


def _stopper(request: web.Request) -> Callable[[int], bool]:
    return lambda job_id: stop_job(request, job_id)


@routes.route(
    "POST",
    "/api/jobs/{id}/abort",
    access="staff",
    summary="Abort a job: a queued one ends at once with the verdict stopped, a running one is stopped in its"
    " sandbox and ends so; teachers: only their classes' jobs (others: 404); 409 job_finished",
    status=202,
    response=obj(id=INTEGER, outcome=enum("cancelled", "stopping"), status=STRING),
)
async def abort(request: web.Request) -> web.Response:
    await body(request)
    job_id = path_id(request)
    outcome = await jobs.abort_job(request.app[DB], current_user(request), job_id, _stopper(request))
    request.app[EVENTS].changed(job_id)
    status, _ = await jobs.job_status(request.app[DB], job_id)
    return json_response({"id": job_id, "outcome": outcome, "status": status}, status=202)


@routes.route(
    "POST",
    "/api/jobs/{id}/requeue",
    access="staff",
    summary="Queue a job again: one the infrastructure gave up on (fresh retries), or a running one that is"
    " stuck; teachers: only their classes' jobs (others: 404); 409 not_requeueable",
    status=202,
    response=obj(id=INTEGER, status=STRING),
)
async def requeue(request: web.Request) -> web.Response:
    await body(request)
    job_id = path_id(request)
    await jobs.requeue_job(request.app[DB], current_user(request), job_id, _stopper(request))
    request.app[EVENTS].changed(job_id)
    wake_runner(request)
    status, _ = await jobs.job_status(request.app[DB], job_id)
    return json_response({"id": job_id, "status": status}, status=202)


@routes.route(
    "GET",
    "/api/admin/sync/status",
    access="admin",
    summary="This appliance's sync status: its id and key fingerprint (as `labrunner identity` prints them), the"
    " central instance it pushes to, the last push, and the changes not yet acknowledged",
    response=SYNC_STATUS,
)
async def sync_state(request: web.Request) -> web.Response:
    return json_response(await sync_status.status(request.app[DB], request.app[SETTINGS]))


@routes.route(
    "POST",
    "/api/admin/queue",
    access="admin",
    summary="Pause or resume the queue {paused}: paused, workers claim nothing and accepted jobs wait (kept"
    " across restarts); running jobs finish",
    body=PAUSE_SCHEMA,
    response=CONTROLS,
)
async def pause_queue(request: web.Request) -> web.Response:
    data = await body(request)
    modes = request.app[MODES]
    await modes.set_queue_paused(request.app[DB], current_user(request), data["paused"])
    runner = request.app.get(RUNNER)
    if runner is not None:
        runner.pause_queue(data["paused"])
    request.app[EVENTS].poke()
    return json_response(modes.modes.to_json())


@routes.route(
    "POST",
    "/api/admin/maintenance",
    access="admin",
    summary="Maintenance mode {on, message}: students see the message on every page and their new runs and"
    " submissions get 503 maintenance with it (drafts keep saving; staff go on); kept across restarts",
    body=_maintenance_schema,
    response=CONTROLS,
)
async def maintenance(request: web.Request) -> web.Response:
    data = await body(request)
    message = (data.get("message") or "").strip()
    if data["on"] and not message:
        raise Invalid("message_required", "say what students should know while maintenance lasts", field="message")
    modes = request.app[MODES]
    await modes.set_maintenance(request.app[DB], current_user(request), message if data["on"] else "")
    request.app[EVENTS].poke()
    return json_response(modes.modes.to_json())


@routes.route(
    "POST",
    "/api/admin/runner/verbose",
    access="admin",
    summary="Verbose runner logging {on}: the runner logs at DEBUG, switching back by itself after runner_verbose_s",
    body=VERBOSE_SCHEMA,
    response=CONTROLS,
)
async def verbose(request: web.Request) -> web.Response:
    data = await body(request)
    modes = request.app[MODES]
    modes.set_verbose(data["on"], request.app[SETTINGS].runner_verbose_s)
    request.app[EVENTS].poke()
    return json_response(modes.modes.to_json())


@routes.route(
    "GET",
    "/api/maintenance",
    access="anyone",
    before_acceptance=True,
    summary="Whether maintenance mode is on, its message, and how often pages should ask again",
    response=MAINTENANCE,
)
async def maintenance_state(request: web.Request) -> web.Response:
    message = request.app[MODES].modes.maintenance
    return json_response({"on": bool(message), "message": message, "poll_s": request.app[SETTINGS].maintenance_poll_s})
