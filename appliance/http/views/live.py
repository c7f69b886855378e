"""Live runs over HTTP: create one, then follow it over its WebSocket (aiohttp's own).

The socket carries JSON text messages both ways and, for a graphical program, each frame as a
binary message (PNG) right after its JSON header. The handler only carries messages: the run's
rules live in appliance.live_runs, the session's in runner.live_session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from aiohttp import WSMsgType, web

from appliance import exams, live_runs
from appliance.app_keys import BLOBS, DB, LIVE_RUNS, LIVE_SOCKETS, MODES, RUNNER, SETTINGS
from appliance.errors import AppError, Unauthorized, Unavailable
from appliance.http.jsonio import body, json_response
from appliance.http.middleware import current_user, still_allowed
from appliance.http.routing import Routes
from appliance.http.shapes import BOOLEAN, STRING, obj
from appliance.http.views.jobs import run_schema
from appliance.settings import Settings
from appliance.validation import Schema
from runner.executor import InfraError
from runner.live_session import LiveFrame, LiveSession
from sandbox import protocol

routes = Routes()

LIVE_RUN = obj(id=STRING, socket=STRING, graphical=BOOLEAN)


def live_schema(settings: Settings) -> Schema:
    schema = run_schema(settings)
    return Schema({name: spec for name, spec in schema.fields.items() if name != "stdin"})


@routes.route(
    "POST",
    "/api/live-runs",
    access="user",
    summary="Start a live run: input typed while it runs, output as it comes, a playable window → 201; it"
    " counts against the student's runs a minute (429 rate_limited with Retry-After past them)",
    body=live_schema,
    status=201,
    response=LIVE_RUN,
)
async def create_live_run(request: web.Request) -> web.Response:
    data = await body(request)
    request.app[MODES].refuse_student_jobs(current_user(request))
    run = await request.app[LIVE_RUNS].create(
        request.app[DB],
        request.app[BLOBS],
        current_user(request),
        data["language"],
        data["code"],
        data.get("files", []),
        data.get("graphical"),
    )
    socket = f"/api/live-runs/{run.id}/socket"
    return json_response({"id": run.id, "socket": socket, "graphical": run.graphical}, status=201)


@routes.route(
    "GET",
    "/api/live-runs/{id}/socket",
    access="user",
    summary="A live run's WebSocket (its owner only): JSON messages both ways, frames as binary",
    response_type="application/json",
    in_api=True,
)
async def live_run_socket(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    runs = request.app[LIVE_RUNS]
    run = runs.connect(request.match_info["id"], current_user(request))
    try:
        # Made just before an exam without runs began, it would run (typed input and all) into the exam.
        await exams.refuse_runs_if_disabled(request.app[DB], current_user(request))
        service = request.app.get(RUNNER)
        if service is None:
            raise Unavailable("runner_unavailable", "the runner is not running")
        socket = web.WebSocketResponse(heartbeat=30, max_msg_size=64 * 1024)
        await socket.prepare(request)
        request.app[LIVE_SOCKETS].add(socket)
        try:
            async with service.live(run.request) as session:
                await socket.send_json({"type": "started", "graphical": run.graphical})
                access = asyncio.create_task(_stop_when_no_longer_allowed(request, socket, session))
                try:
                    await _follow(socket, session, settings, request.transport)
                finally:
                    access.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await access
        except InfraError as exc:
            if not socket.closed:
                await socket.send_json({"type": "error", "code": exc.code, "message": exc.message})
        finally:
            request.app[LIVE_SOCKETS].discard(socket)
            await socket.close()
        return socket
    finally:
        runs.end(run)


async def _stop_when_no_longer_allowed(
    request: web.Request, socket: web.WebSocketResponse, session: LiveSession
) -> None:
    """A live run stops within `live_access_check_s` once its student may no longer run code: their
    login ended (logged out, disabled, reset, or a login elsewhere during an exam), or an exam
    without runs began. Otherwise it would run, typed input and all, up to its wall time."""
    db, user, every = request.app[DB], current_user(request), request.app[SETTINGS].live_access_check_s
    while True:
        await asyncio.sleep(every)
        try:
            if not await still_allowed(request, user):
                raise Unauthorized("login_ended", "your login ended, so your program was stopped: log in again")
            await exams.refuse_runs_if_disabled(db, user)
        except AppError as exc:
            with contextlib.suppress(ConnectionResetError):
                await socket.send_json({"type": "error", "code": exc.code, "message": exc.message})
            await session.stop()
            return


async def _follow(
    socket: web.WebSocketResponse, session: LiveSession, settings: Settings, connection: asyncio.BaseTransport | None
) -> None:
    """Program to page until the program ends; page to program meanwhile."""
    person = asyncio.create_task(_from_person(socket, session, settings))
    text = live_runs.UpdateText()
    try:
        async for update in session.updates():
            if socket.closed:
                continue  # the session still runs to its end, which hands the sandbox back
            try:
                # A page that stops taking updates would hold the sandbox's stream, and with it
                # the program past its limits (the harness blocks on its own output): it is gone.
                async with asyncio.timeout(settings.live_page_stall_s):
                    await socket.send_json(text.to_json(update))
                    if isinstance(update, LiveFrame):
                        await socket.send_bytes(update.png)
            except ConnectionResetError:
                pass
            except TimeoutError:
                if connection is not None:
                    connection.abort()  # a close handshake would wait on the same stalled page
                await session.stop()
    finally:
        person.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await person


async def _from_person(socket: web.WebSocketResponse, session: LiveSession, settings: Settings) -> None:
    """What the page sends, within the rate a person can produce; the page going away stops the
    program."""
    window_start, in_window = time.monotonic(), 0
    try:
        async for message in socket:
            if message.type != WSMsgType.TEXT:
                continue
            now = time.monotonic()
            if now - window_start >= 1.0:
                window_start, in_window = now, 0
            in_window += 1
            if in_window > settings.live_messages_per_s:
                # A flood (pointer moves): the program gets what a person could send, and the page
                # hears once a second that the rest was dropped.
                if in_window == settings.live_messages_per_s + 1:
                    limit = settings.live_messages_per_s
                    text = f"more than {limit} messages a second: the rest of this second's were dropped"
                    await socket.send_json({"type": "error", "code": "too_many_messages", "message": text})
                continue
            try:
                parsed = live_runs.person_message(json.loads(message.data))
            except (AppError, ValueError, RecursionError) as exc:
                # RecursionError: JSON nested deeper than the parser goes (a message of brackets).
                code = exc.code if isinstance(exc, AppError) else "bad_message"
                text = exc.message if isinstance(exc, AppError) else "a live message is one JSON object"
                await socket.send_json({"type": "error", "code": code, "message": text})
                continue
            if isinstance(parsed, protocol.Stop):
                await session.stop()
            else:
                await session.send(parsed)
    finally:
        await session.stop()  # a no-op once the program ended
