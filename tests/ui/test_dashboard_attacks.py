"""The live dashboard attacked (issue 11 red team), beyond tests/ui/test_dashboard_api.py: a stream
outliving its session, cross-site posts to the admin's switches, a maintenance message carrying
markup, /metrics with a token that no longer stands for an admin, and a teacher's buttons on
their own student's scratchpad run. A real server on its SQLite file; jobs never run."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.ui.test_dashboard_api import stream_pictures, submit, two_rooms

pytestmark = pytest.mark.usefixtures("fast_passwords")


async def test_a_stream_ends_when_its_teacher_logs_out(server_factory: Callable[..., Any]) -> None:
    _, a, _, _ = await two_rooms(server_factory, dashboard_interval_s=1)
    stream = asyncio.create_task(a.teacher.get_capped("/api/dashboard/stream", seconds=60))
    await asyncio.sleep(1)
    assert (await a.teacher.post("/api/auth/logout")).status in (200, 204)
    await submit(a)  # a queue change wakes the stream at once
    # Without the session check each turn, the stream went on for its whole life (minutes).
    reply = await asyncio.wait_for(stream, 15)
    assert reply.status == 200 and stream_pictures(reply), reply


async def test_cross_site_posts_to_the_switches_are_refused(server_factory: Callable[..., Any]) -> None:
    server, a, _, admin = await two_rooms(server_factory)
    job = await submit(a)
    before = server.db_rows(exclude=("sessions",))
    evil = {"Origin": "http://evil.example"}
    for path, body in (
        ("/api/admin/queue", {"paused": False}),
        ("/api/admin/maintenance", {"on": True, "message": "owned"}),
        ("/api/admin/runner/verbose", {"on": True}),
        (f"/api/jobs/{job}/abort", {}),
        (f"/api/jobs/{job}/requeue", {}),
    ):
        reply = await admin.post(path, json=body, headers=evil)
        assert reply.status == 403 and reply.error_code == "csrf_failed", (path, reply)
    # A plain HTML form from another site (no JSON, the browser says cross-site) fares no better.
    form = await admin.post(
        "/api/admin/maintenance", data="on=true&message=owned", headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert form.status == 403 and form.error_code == "csrf_failed", form
    assert server.db_rows(exclude=("sessions",)) == before
    assert (await server.client().get("/api/maintenance")).json["on"] is False


async def test_a_maintenance_message_is_text_on_every_page(server_factory: Callable[..., Any]) -> None:
    _, a, _, admin = await two_rooms(server_factory)
    message = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    assert (await admin.post("/api/admin/maintenance", json={"on": True, "message": message})).status == 200
    for client, path in ((a.student, "/"), (a.teacher, "/admin"), (a.student, "/scratch")):
        page = await client.get(path, headers={"Accept": "text/html"})
        assert page.status == 200, page
        assert "<img src=x" not in page.text and "<script>alert(2)" not in page.text
        assert "&lt;img src=x onerror=" in page.text


async def test_metrics_refuse_a_revoked_or_disabled_admins_token(server_factory: Callable[..., Any]) -> None:
    server, _, _, admin = await two_rooms(server_factory)
    token = await admin.create_token("prometheus")
    scraper = admin.with_token(token)
    assert (await scraper.get("/metrics")).status == 200
    listed = (await admin.get("/api/tokens")).json["tokens"]
    assert (await admin.delete(f"/api/tokens/{listed[0]['id']}")).status == 204
    assert (await scraper.get("/metrics")).status == 401

    other = await server.make_user("admin")
    kept = other.with_token(await other.create_token("prometheus"))
    assert (await kept.get("/metrics")).status == 200
    disabled = await admin.patch(f"/api/admin/accounts/{other.user_id}", json={"disabled": True})
    assert disabled.status == 200, disabled
    assert (await kept.get("/metrics")).status == 401
    # The metrics name no account: their labels are statuses, priorities, verdicts and states.
    text = (await admin.with_token(await admin.create_token()).get("/metrics")).text
    assert admin.username not in text and other.username not in text


async def test_a_teacher_cannot_stop_their_own_students_scratchpad_run(server_factory: Callable[..., Any]) -> None:
    _, a, _, admin = await two_rooms(server_factory)
    run = await a.student.post("/api/runs", json={"language": "python", "code": "print(1)"})
    assert run.status == 202, run
    # The scratchpad is the student's own: the dashboard shows it to admins only, so only they may stop it.
    for action in ("abort", "requeue"):
        reply = await a.teacher.post(f"/api/jobs/{run.json['id']}/{action}", json={})
        assert reply.status == 404 and reply.error_code == "not_found", reply
    assert (await a.student.get(f"/api/runs/{run.json['id']}")).json["status"] == "queued"
    assert (await admin.post(f"/api/jobs/{run.json['id']}/abort", json={})).status == 202
