from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web

from appliance import jobs
from appliance.app_keys import BLOBS, DB, EVENTS, LIVE_RUNS, MODES, RUNNER, SETTINGS, USER_RATES
from appliance.errors import Invalid, NotFound
from appliance.http.jsonio import body, json_response, path_id
from appliance.http.middleware import current_user, still_allowed
from appliance.http.routing import Routes
from appliance.http.runner_access import stop_job, wake_runner
from appliance.http.shapes import ANY, BOOLEAN, INTEGER, NUMBER, QUEUED, STRING, array, enum, nullable, obj
from appliance.settings import Settings
from appliance.validation import F, Schema
from runner.languages import LANGUAGES

# Job times are epoch seconds.
JOB_TIME = nullable(NUMBER)
RUN = obj(
    id=INTEGER,
    language=STRING,
    status=STRING,
    verdict=nullable(STRING),
    position=nullable(INTEGER),
    stdout=nullable(STRING),
    stderr=nullable(STRING),
    exit_code=nullable(INTEGER),
    signal=nullable(ANY),
    time_ms=nullable(INTEGER),
    truncated=BOOLEAN,
    full_output=BOOLEAN,
    # The runner stopped it at its wall time and judged what it drew (a graphical program).
    stopped=BOOLEAN,
    # Why it failed, in a beginner's words, where its error message is not plain (input ran out).
    hint=nullable(STRING),
    compile_output=nullable(STRING),
    files=array(ANY),
    created_at=JOB_TIME,
    finished_at=JOB_TIME,
)
SUBMISSION = obj(
    id=INTEGER,
    kind=STRING,
    problem_id=nullable(INTEGER),
    user_id=INTEGER,
    language=STRING,
    code=STRING,
    attempts=nullable(INTEGER),
    files=array(ANY),
    hidden_feedback=STRING,
    late=BOOLEAN,
    status=STRING,
    verdict=nullable(STRING),
    score=nullable(NUMBER),
    compile_output=nullable(STRING),
    position=nullable(INTEGER),
    # A test the caller may see in full also carries its outputs, `stopped` and `hint` (as a run's);
    # staff also get `test_data_kept`: False when the data a test was judged against is not known
    # (see migration 0011).
    tests=array(
        obj(
            optional={"stopped": BOOLEAN, "hint": nullable(STRING), "test_data_kept": BOOLEAN},
            position=INTEGER,
            name=STRING,
            verdict=nullable(STRING),
            visible=BOOLEAN,
        )
    ),
    hidden_tests=obj(passed=INTEGER, total=INTEGER),
    created_at=JOB_TIME,
    finished_at=JOB_TIME,
)
SUBMISSION_ITEM = obj(
    id=INTEGER,
    problem_id=nullable(INTEGER),
    problem_title=nullable(STRING),
    user_id=INTEGER,
    username=STRING,
    language=STRING,
    status=STRING,
    verdict=nullable(STRING),
    score=nullable(NUMBER),
    late=BOOLEAN,
    created_at=JOB_TIME,
)

_JUDGED = obj(status=STRING, verdict=nullable(STRING), score=nullable(NUMBER))
REJUDGE_RESULTS = obj(
    problem_id=INTEGER,
    state=enum("none", "running", "done"),
    total=INTEGER,
    finished=INTEGER,
    changed=INTEGER,
    submissions=array(
        obj(
            submission_id=INTEGER,
            user_id=INTEGER,
            username=STRING,
            rejudge_id=INTEGER,
            status=STRING,
            old=_JUDGED,
            new=_JUDGED,
            changed=BOOLEAN,
            published=BOOLEAN,
            finished_at=JOB_TIME,
        )
    ),
)

routes = Routes()

STREAM_MAX_S = 600  # a live-status stream ends after this; the page reconnects if still waiting


def _code_field(settings: Settings) -> F:
    return F("string", min_length=1, max_length=settings.max_code_chars)


def _files_field(settings: Settings) -> F:
    return F(
        "array",
        required=False,
        max_length=settings.job_files_max,
        items=F("string", max_length=64),
        description="ids of the caller's files, put read-only in the program's working directory",
    )


def run_schema(settings: Settings) -> Schema:
    return Schema(
        {
            "language": F("string", max_length=32),
            "code": _code_field(settings),
            "stdin": F("string", required=False, max_length=settings.max_test_case_bytes),
            "files": _files_field(settings),
            "graphical": F(
                "boolean",
                required=False,
                nullable=True,
                description="run headless and return pictures (pygame, turtle, tkinter, matplotlib);"
                " absent or null: decided from the code's imports",
            ),
        }
    )


def submission_schema(settings: Settings) -> Schema:
    return Schema(
        {"language": F("string", max_length=32), "code": _code_field(settings), "files": _files_field(settings)}
    )


def _wait_seconds(request: web.Request) -> float:
    raw = request.query.get("wait")
    if raw is None:
        return 0.0
    try:
        seconds = float(raw)
    except ValueError:
        raise Invalid("invalid_wait", "wait must be a number of seconds", field="wait") from None
    limit = request.app[SETTINGS].max_wait_s
    if not 0 <= seconds <= limit:
        raise Invalid("invalid_wait", f"wait must be between 0 and {limit} seconds", field="wait")
    return seconds


async def _wait_final(request: web.Request, job_id: int) -> None:
    deadline = time.monotonic() + _wait_seconds(request)
    db = request.app[DB]
    while (remaining := deadline - time.monotonic()) > 0:
        status, _ = await jobs.job_status(db, job_id)
        if status in jobs.FINAL:
            return
        await request.app[EVENTS].wait_job(job_id, min(remaining, 1.0))


async def _result(request: web.Request, kind: str) -> web.Response:
    """A run's or submission's result, once the caller may read it, after an optional ?wait."""
    job_id = path_id(request)
    user = current_user(request)
    await jobs.readable_job(request.app[DB], user, job_id, kind)
    await _wait_final(request, job_id)
    if kind == "run":
        return json_response(await jobs.run_json(request.app[DB], user, job_id))
    return json_response(await jobs.submission_json(request.app[DB], request.app[BLOBS], user, job_id))


async def _stream(request: web.Request, kind: str) -> web.StreamResponse:
    """Server-Sent Events: the job's status and queue position whenever the queue moves."""
    job_id = path_id(request)
    await jobs.readable_job(request.app[DB], current_user(request), job_id, kind)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
    await response.prepare(request)
    last: tuple[str, int | None] | None = None
    deadline = time.monotonic() + STREAM_MAX_S
    events = request.app[EVENTS]
    while time.monotonic() < deadline:
        state = await jobs.job_status(request.app[DB], job_id)
        if state != last and last is not None and not await still_allowed(request, current_user(request)):
            break
        if state != last:
            payload = json.dumps({"status": state[0], "position": state[1]})
            await response.write(f"event: status\ndata: {payload}\n\n".encode())
            last = state
        if state[0] in jobs.FINAL or state[0] == "gone":
            break
        await events.wait_any(5.0)
    await response.write_eof()
    return response


async def _output(request: web.Request, kind: str) -> web.Response:
    stream = request.match_info["stream"]
    if stream not in ("stdout", "stderr"):
        raise NotFound("not_found", "no such output stream")
    position = path_id(request, "position") if kind == "submission" else 1
    user = current_user(request)
    digest = await jobs.full_output(request.app[DB], user, path_id(request), kind, position, stream)
    if digest is None:
        raise NotFound(
            "not_found",
            "no full output is kept for this test: it was not cut (the result holds all of it),"
            " or it was over the storage quota, or it has expired",
        )
    data = await asyncio.to_thread(request.app[BLOBS].get, digest)
    return web.Response(body=data, content_type="text/plain", charset="utf-8")


async def _picture(request: web.Request, kind: str) -> web.Response:
    position = path_id(request, "position") if kind == "submission" else 1
    user = current_user(request)
    row = await jobs.picture(request.app[DB], user, path_id(request), kind, position, path_id(request, "index"))
    # The hash names the content: a browser that has it already is told so without the bytes.
    etag = f'"{row["blob"]}"'
    headers = {"Cache-Control": "private, no-cache", "ETag": etag}
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    data = await asyncio.to_thread(request.app[BLOBS].get, row["blob"])
    return web.Response(body=data, content_type=row["media_type"], headers=headers)


@routes.route("GET", "/api/languages", access="user", summary="Languages the sandbox runs")
async def languages(request: web.Request) -> web.Response:
    found = [{"id": lang.id, "name": lang.name, "version": lang.version} for lang in LANGUAGES.values()]
    return json_response({"languages": found})


@routes.route(
    "POST",
    "/api/runs",
    access="user",
    summary="Run code with stdin (no grading) → 202; a student past their runs a minute gets 429 rate_limited"
    " with Retry-After, and nothing is queued",
    body=run_schema,
    status=202,
    response=QUEUED,
)
async def create_run(request: web.Request) -> web.Response:
    data = await body(request)
    settings = request.app[SETTINGS]
    user = current_user(request)
    request.app[MODES].refuse_student_jobs(user)
    queued = await jobs.run(
        request.app[DB],
        settings,
        request.app[USER_RATES],
        user,
        data["language"],
        data["code"],
        data.get("stdin", ""),
        data.get("files", []),
        data.get("graphical"),
    )
    wake_runner(request)
    return json_response(queued.to_json(), status=202)


@routes.route(
    "POST",
    "/api/runs/{id}/stop",
    access="user",
    summary="Stop one's own run: a waiting one never runs, a running one is killed; its verdict is stopped",
    status=202,
    response=obj(id=INTEGER, status=STRING),
)
async def stop_run(request: web.Request) -> web.Response:
    run_id = path_id(request)
    await jobs.stop_run(request.app[DB], current_user(request), run_id, lambda job_id: stop_job(request, job_id))
    request.app[EVENTS].changed(run_id)
    status, _ = await jobs.job_status(request.app[DB], run_id)
    return json_response({"id": run_id, "status": status}, status=202)


@routes.route(
    "GET", "/api/runs/{id}", access="user", summary="A run's result; ?wait=S holds until it finishes", response=RUN
)
async def get_run(request: web.Request) -> web.Response:
    return await _result(request, "run")


@routes.route(
    "GET",
    "/api/runs/{id}/events",
    access="user",
    summary="Live status of a run (Server-Sent Events)",
    response_type="text/event-stream",
)
async def run_events(request: web.Request) -> web.StreamResponse:
    return await _stream(request, "run")


@routes.route(
    "GET",
    "/api/runs/{id}/output/{stream}",
    access="user",
    summary="A run's full stdout or stderr when it was cut",
    response_type="text/plain",
)
async def run_output(request: web.Request) -> web.Response:
    return await _output(request, "run")


@routes.route(
    "GET",
    "/api/runs/{id}/images/{index}",
    access="user",
    summary="A picture a graphical run drew (PNG, or APNG for the animation)",
    status=(200, 304),
    response_type="image/png",
)
async def run_picture(request: web.Request) -> web.Response:
    return await _picture(request, "run")


@routes.route(
    "POST",
    "/api/problems/{id}/submissions",
    access="user",
    summary="Submit code against a problem's tests → 202 {id, status, deduplicated}; a student past the"
    " problem's submission budget gets 429 too_many_submissions, past their submissions a minute 429 rate_limited,"
    " both with Retry-After (a same-code resubmission returns the earlier job and costs nothing); after the due date"
    " the submission is marked late (late_policy accept_late) or refused with 403 problem_closed (close)",
    body=submission_schema,
    status=202,
    response=QUEUED,
)
async def create_submission(request: web.Request) -> web.Response:
    data = await body(request)
    settings = request.app[SETTINGS]
    user = current_user(request)
    request.app[MODES].refuse_student_jobs(user)
    queued = await jobs.submit(
        request.app[DB],
        settings,
        request.app[USER_RATES],
        user,
        path_id(request),
        data["language"],
        data["code"],
        data.get("files", []),
    )
    wake_runner(request)
    return json_response(queued.to_json(), status=202)


def _optional_int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:  # '²'.isdigit() is True, int('²') fails
        raise Invalid("invalid_filter", f"{name} must be a positive integer", field=name)
    return int(raw)


@routes.route(
    "GET",
    "/api/submissions",
    access="user",
    summary="Own submissions; teachers filter by problem_id, class_id, user_id",
    response=obj(submissions=array(SUBMISSION_ITEM)),
)
async def list_submissions(request: web.Request) -> web.Response:
    found = await jobs.list_submissions(
        request.app[DB],
        current_user(request),
        _optional_int(request, "problem_id"),
        _optional_int(request, "class_id"),
        _optional_int(request, "user_id"),
    )
    return json_response({"submissions": found})


@routes.route(
    "GET",
    "/api/submissions/{id}",
    access="user",
    summary="A submission's result; ?wait=S holds until it finishes. hidden_tests: {passed, total}; with the"
    " problem's hidden_feedback 'summary' a student gets no per-test row for hidden tests",
    response=SUBMISSION,
)
async def get_submission(request: web.Request) -> web.Response:
    return await _result(request, "submission")


@routes.route(
    "GET",
    "/api/submissions/{id}/events",
    access="user",
    summary="Live status of a submission (Server-Sent Events)",
    response_type="text/event-stream",
)
async def submission_events(request: web.Request) -> web.StreamResponse:
    return await _stream(request, "submission")


@routes.route(
    "GET",
    "/api/submissions/{id}/tests/{position}/{stream}",
    access="user",
    summary="A visible test's full stdout or stderr when it was cut",
    response_type="text/plain",
)
async def submission_output(request: web.Request) -> web.Response:
    return await _output(request, "submission")


@routes.route(
    "GET",
    "/api/submissions/{id}/tests/{position}/images/{index}",
    access="user",
    summary="A picture a visible test's program drew (PNG, or APNG for the animation); hidden tests: staff only",
    status=(200, 304),
    response_type="image/png",
)
async def submission_picture(request: web.Request) -> web.Response:
    return await _picture(request, "submission")


@routes.route(
    "POST", "/api/problems/{id}/rejudge", access="staff", summary="Re-run every submission of a problem", status=202
)
async def rejudge(request: web.Request) -> web.Response:
    await body(request)
    result = await jobs.rejudge(request.app[DB], current_user(request), path_id(request))
    wake_runner(request)
    return json_response(result, status=202)


@routes.route(
    "GET",
    "/api/problems/{id}/rejudges",
    access="staff",
    summary="The newest rejudge of each submission: old and new verdict and score, and how many changed;"
    " ?wait=S holds up to S seconds while it runs, until a rejudge finishes",
    response=REJUDGE_RESULTS,
)
async def rejudge_results(request: web.Request) -> web.Response:
    db, user, problem_id = request.app[DB], current_user(request), path_id(request)
    deadline = time.monotonic() + _wait_seconds(request)
    results = await jobs.rejudge_results(db, user, problem_id)
    first = results["finished"]
    while (
        results["state"] == "running"
        and results["finished"] == first
        and (remaining := deadline - time.monotonic()) > 0
    ):
        await request.app[EVENTS].wait_any(min(remaining, 1.0))
        results = await jobs.rejudge_results(db, user, problem_id)
    return json_response(results)


@routes.route(
    "POST",
    "/api/problems/{id}/rejudge/publish",
    access="staff",
    summary="Show students the newest finished rejudge results",
)
async def publish_rejudge(request: web.Request) -> web.Response:
    await body(request)
    return json_response(await jobs.publish_rejudge(request.app[DB], current_user(request), path_id(request)))


@routes.route("GET", "/api/admin/stats", access="admin", summary="Queue, runner, storage and latency figures")
async def admin_stats(request: web.Request) -> web.Response:
    stats: dict[str, Any] = await jobs.stats(request.app[DB])
    runner = request.app.get(RUNNER)
    stats["runner"] = runner.describe() if runner is not None else {"state": "not_started"}
    settings = request.app[SETTINGS]
    stats["live_runs"] = {"open": request.app[LIVE_RUNS].count(), "max": settings.live_sessions_max}
    return json_response(stats)


@routes.route(
    "POST", "/api/admin/jobs/requeue-failed", access="admin", summary="Queue again jobs the infrastructure gave up on"
)
async def requeue_failed(request: web.Request) -> web.Response:
    await body(request)
    count = await jobs.requeue_failed(request.app[DB])
    wake_runner(request)
    return json_response({"requeued": count})
