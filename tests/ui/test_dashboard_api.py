"""The live dashboard's API without a browser: who sees what in the stream, the job buttons'
ownership rules, maintenance mode, the bound on open streams, and /metrics' admin-token rule.

Jobs here never run: the admin pauses the queue first, so every job waits (and the stand-in
sandbox would fail any job it was given).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable
from typing import Any

from tests.conftest import ApiClient, LiveServer
from tests.ui.conftest import FakeSandbox, GatedEcho, Room, make_room, no_docker

ANSWER = "HELLO\n"


def stream_pictures(reply: Any) -> list[dict[str, Any]]:
    """The `snapshot` events of a captured event stream."""
    pictures = []
    for block in reply.text.split("\n\n"):
        lines = block.split("\n")
        if "event: snapshot" in lines:
            data = "".join(line[len("data: ") :] for line in lines if line.startswith("data: "))
            pictures.append(json.loads(data))
    return pictures


async def submit(room: Room, student: ApiClient | None = None, code: str = ANSWER) -> int:
    reply = await (student or room.student).post(
        f"/api/problems/{room.problem_id}/submissions", json={"language": "python", "code": code}
    )
    assert reply.status == 202, reply
    return int(reply.json["id"])


async def two_rooms(server_factory: Callable[..., Any], **settings: Any) -> tuple[LiveServer, Room, Room, ApiClient]:
    server = await server_factory(app_options=no_docker(), **settings)
    admin = await server.make_user("admin")
    paused = await admin.post("/api/admin/queue", json={"paused": True})
    assert paused.status == 200 and paused.json["queue_paused"] is True, paused
    return server, await make_room(server, title="Class A"), await make_room(server, title="Class B"), admin


async def test_a_teacher_sees_only_their_classes_jobs(server_factory: Callable[..., Any], fast_passwords: None) -> None:
    _, a, b, admin = await two_rooms(server_factory, dashboard_interval_s=1)
    job_a, job_b = await submit(a), await submit(b)
    outsiders_run = await b.student.post("/api/runs", json={"language": "python", "code": "print(1)"})
    assert outsiders_run.status == 202

    reply = await a.teacher.get_capped("/api/dashboard/stream", seconds=2.5)
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/event-stream"), reply
    pictures = stream_pictures(reply)
    assert pictures, reply
    for picture in pictures:
        ids = {job["id"] for job in picture["jobs"]}
        assert ids == {job_a}, picture
        assert picture["queue"]["by_status"]["queued"] == 1
        assert picture["scope"] == "own_classes"
        # Nothing of the runner, storage, accounts, logs or switches.
        assert not {"runner", "storage", "errors", "controls", "streams"} & picture.keys()
    # The other class's student's name and problem appear nowhere in what teacher A got.
    assert b.student.username not in reply.text and "Class B" not in reply.text

    everything = await admin.get("/api/dashboard")
    assert everything.status == 200
    ids = {job["id"] for job in everything.json["jobs"]}
    assert {job_a, job_b, outsiders_run.json["id"]} <= ids
    assert {"runner", "storage", "errors", "controls"} <= everything.json.keys()

    # A student: not found for the page's data and the stream, forbidden for the buttons.
    for path in ("/api/dashboard", "/api/dashboard/stream"):
        assert (await a.student.get(path)).status == 404
    assert (await a.student.post(f"/api/jobs/{job_a}/abort", json={})).status == 403
    page = await a.student.get("/admin", headers={"Accept": "text/html"})
    assert page.status == 404

    # Teacher A cannot touch class B's job (as if it did not exist), nor pause the queue.
    for action in ("abort", "requeue"):
        reply = await a.teacher.post(f"/api/jobs/{job_b}/{action}", json={})
        assert reply.status == 404 and reply.error_code == "not_found", reply
    assert (await a.teacher.post("/api/admin/queue", json={"paused": True})).status == 403
    assert (await admin.get(f"/api/submissions/{job_b}")).json["status"] == "queued"

    # But aborts their own class's waiting job: it ends at once, stopped.
    aborted = await a.teacher.post(f"/api/jobs/{job_a}/abort", json={})
    assert aborted.status == 202 and aborted.json["outcome"] == "cancelled", aborted
    result = await a.student.get(f"/api/submissions/{job_a}")
    assert (result.json["status"], result.json["verdict"]) == ("done", "stopped")
    again = await a.teacher.post(f"/api/jobs/{job_a}/abort", json={})
    assert again.status == 409 and again.error_code == "job_finished"
    assert (await a.teacher.post(f"/api/jobs/{job_a}/requeue", json={})).error_code == "not_requeueable"


async def test_requeue_brings_back_a_failed_job(server_factory: Callable[..., Any], fast_passwords: None) -> None:
    server, a, _, admin = await two_rooms(server_factory)
    job = await submit(a)

    with sqlite3.connect(server.settings.db_path) as conn:  # the runner gave up on it
        conn.execute("UPDATE jobs SET status = 'failed', infra_attempts = 4 WHERE id = ?", (job,))
    failed = (await admin.get("/api/dashboard")).json["failed"]
    assert [j["id"] for j in failed] == [job]
    reply = await a.teacher.post(f"/api/jobs/{job}/requeue", json={})
    assert reply.status == 202 and reply.json["status"] == "queued", reply
    picture = (await admin.get("/api/dashboard")).json
    assert picture["failed"] == [] and job in {j["id"] for j in picture["jobs"]}


async def test_open_streams_are_bounded(server_factory: Callable[..., Any], fast_passwords: None) -> None:
    server = await server_factory(app_options=no_docker(), dashboard_streams_max=1, dashboard_interval_s=1)
    admin = await server.make_user("admin")

    first = asyncio.create_task(admin.get_capped("/api/dashboard/stream", seconds=3))
    await asyncio.sleep(1)
    second = await admin.get_capped("/api/dashboard/stream", seconds=1)
    assert second.status == 503 and second.error_code == "too_many_streams", second
    assert second.headers.get("Retry-After")
    assert (await first).status == 200
    # The slot is free again once the first stream is gone.
    await asyncio.sleep(0.5)
    assert (await admin.get_capped("/api/dashboard/stream", seconds=1)).status == 200


async def test_one_account_cannot_take_every_stream(server_factory: Callable[..., Any], fast_passwords: None) -> None:
    server = await server_factory(
        app_options=no_docker(), dashboard_streams_max=5, dashboard_streams_per_user=1, dashboard_interval_s=1
    )
    teacher, admin = await server.make_user("teacher"), await server.make_user("admin")
    first = asyncio.create_task(teacher.get_capped("/api/dashboard/stream", seconds=3))
    await asyncio.sleep(1)
    second = await teacher.get_capped("/api/dashboard/stream", seconds=1)
    assert second.status == 503 and second.error_code == "too_many_streams", second
    assert (await admin.get_capped("/api/dashboard/stream", seconds=1)).status == 200
    assert (await first).status == 200


async def test_maintenance_refuses_students_new_jobs_with_its_message(
    server_factory: Callable[..., Any], fast_passwords: None
) -> None:
    server, a, _, admin = await two_rooms(server_factory)
    message = "The runner is being updated; back at 10:15."
    assert (await a.teacher.post("/api/admin/maintenance", json={"on": True, "message": message})).status == 403
    assert (await a.student.post("/api/admin/maintenance", json={"on": True, "message": message})).status == 403
    empty = await admin.post("/api/admin/maintenance", json={"on": True, "message": "  "})
    assert empty.status == 400 and empty.error_code == "message_required"
    on = await admin.post("/api/admin/maintenance", json={"on": True, "message": message})
    assert on.status == 200 and on.json["maintenance"] == {"on": True, "message": message}, on

    before = server.db_rows(exclude=("sessions", "drafts"))["jobs"]
    for path, body in (
        ("/api/runs", {"language": "python", "code": "print(1)"}),
        (f"/api/problems/{a.problem_id}/submissions", {"language": "python", "code": ANSWER}),
        ("/api/live-runs", {"language": "python", "code": "print(1)"}),
    ):
        reply = await a.student.post(path, json=body)
        assert reply.status == 503 and reply.error_code == "maintenance", reply
        assert reply.error and reply.error["message"] == message
    assert server.db_rows(exclude=("sessions", "drafts"))["jobs"] == before
    # Drafts keep saving; staff keep running code to check the appliance.
    draft = await a.student.put(f"/api/problems/{a.problem_id}/draft", json={"language": "python", "code": "x = 1"})
    assert draft.status in (200, 201, 204), draft
    assert (await a.teacher.post("/api/runs", json={"language": "python", "code": "print(2)"})).status == 202
    # Every page says so; the notice is public (the login page may show it too).
    assert (await server.client().get("/api/maintenance")).json["message"] == message
    page = await a.student.get("/", headers={"Accept": "text/html"})
    assert message in page.text

    off = await admin.post("/api/admin/maintenance", json={"on": False})
    assert off.json["maintenance"]["on"] is False
    assert (await a.student.post("/api/runs", json={"language": "python", "code": "print(1)"})).status == 202


async def test_metrics_take_an_admin_token_only(server_factory: Callable[..., Any], fast_passwords: None) -> None:
    server, a, _, admin = await two_rooms(server_factory)
    await submit(a)
    scraper = admin.with_token(await admin.create_token("prometheus"))
    reply = await scraper.get("/metrics")
    assert reply.status == 200, reply
    assert reply.headers["Content-Type"].startswith("text/plain")
    for name in (
        'labrunner_queue_jobs{status="queued"} 1.0',
        "labrunner_queue_waiting_jobs",
        "labrunner_jobs_finished_total",
        "labrunner_job_latency_seconds_bucket",
        "labrunner_runner_state",
        "labrunner_warm_sandboxes",
        "labrunner_db_bytes",
        "labrunner_last_backup_timestamp_seconds",
        "labrunner_last_backup_success",
        "labrunner_queue_paused 1.0",
    ):
        assert name in reply.text, name

    cookie = await admin.get("/metrics")
    assert cookie.status == 403 and cookie.error_code == "token_required", cookie
    teacher = a.teacher.with_token(await a.teacher.create_token())
    assert (await teacher.get("/metrics")).status == 403
    student = a.student.with_token(await a.student.create_token())
    assert (await student.get("/metrics")).status == 403
    assert (await server.client().get("/metrics")).status == 401


async def test_requeue_takes_a_stuck_running_job_back(server_factory: Callable[..., Any], fast_passwords: None) -> None:
    gate = asyncio.Event()  # closed: a job that starts hangs in its "sandbox" until the gate opens
    server = await server_factory(app_options={"sandbox": FakeSandbox(lambda: GatedEcho(gate))})
    admin = await server.make_user("admin")
    room = await make_room(server)
    run = await room.student.post("/api/runs", json={"language": "python", "code": "stuck"})
    assert run.status == 202
    run_id = run.json["id"]
    for _ in range(50):
        if (await room.student.get(f"/api/runs/{run_id}")).json["status"] == "running":
            break
        await asyncio.sleep(0.1)
    # Another teacher's class: not theirs to touch.
    stranger = await server.make_user("teacher")
    assert (await stranger.post(f"/api/jobs/{run_id}/requeue", json={})).status == 404
    reply = await admin.post(f"/api/jobs/{run_id}/requeue", json={})
    assert reply.status == 202 and reply.json["status"] == "queued", reply
    gate.set()
    result = await room.student.get(f"/api/runs/{run_id}", params={"wait": "10"})
    assert (result.json["status"], result.json["stdout"]) == ("done", "stuck"), result


async def test_a_teachers_page_has_no_admin_panels(server_factory: Callable[..., Any], fast_passwords: None) -> None:
    _, a, _, admin = await two_rooms(server_factory)
    teacher_page = await a.teacher.get("/admin", headers={"Accept": "text/html"})
    assert teacher_page.status == 200 and 'id="queue-queued"' in teacher_page.text
    for admin_only in ('id="pause-button"', 'id="maintenance-form"', 'id="storage"', 'id="error-tail"'):
        assert admin_only not in teacher_page.text
    admin_page = await admin.get("/admin", headers={"Accept": "text/html"})
    assert 'id="pause-button"' in admin_page.text and 'id="storage"' in admin_page.text
    home = await a.teacher.get("/teach", headers={"Accept": "text/html"})
    assert 'href="/admin"' in home.text


async def test_verbose_runner_logging_switches_itself_back(
    server_factory: Callable[..., Any], fast_passwords: None
) -> None:
    server = await server_factory(app_options=no_docker(), runner_verbose_s=1)
    admin = await server.make_user("admin")
    teacher = await server.make_user("teacher")
    assert (await teacher.post("/api/admin/runner/verbose", json={"on": True})).status == 403
    before = logging.getLogger("runner").getEffectiveLevel()
    on = await admin.post("/api/admin/runner/verbose", json={"on": True})
    assert on.status == 200 and on.json["verbose_until"] is not None, on
    assert logging.getLogger("runner").getEffectiveLevel() == logging.DEBUG
    await asyncio.sleep(1.5)
    assert logging.getLogger("runner").getEffectiveLevel() == before
    picture = (await admin.get("/api/dashboard")).json
    assert picture["controls"]["verbose_until"] is None
    assert any("verbose runner logging off" in line for line in picture["errors"]), picture["errors"]


async def test_open_streams_end_when_the_server_stops(server_factory: Callable[..., Any], fast_passwords: None) -> None:
    server = await server_factory(app_options=no_docker(), dashboard_interval_s=1)
    admin = await server.make_user("admin")
    stream = asyncio.create_task(admin.get_capped("/api/dashboard/stream", seconds=120))
    await asyncio.sleep(1.5)
    # Without the shutdown hook the stream would hold the shutdown up for its whole life.
    await asyncio.wait_for(server.test_server.close(), 30)
    reply = await asyncio.wait_for(stream, 5)
    assert reply.status == 200 and stream_pictures(reply), reply
