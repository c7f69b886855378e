"""Stop in the input-box mode, through the HTTP API with the real sandbox: a running program is
killed at once with its container, a waiting one never runs, and only its owner may stop it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from tests.conftest import ApiClient, LiveServer
from tests.runner.test_live_http import sandboxes_of

ENDLESS = "print('spinning', flush=True)\nwhile True:\n    pass\n"


async def _run(client: ApiClient, code: str = ENDLESS) -> int:
    reply = await client.post("/api/runs", json={"language": "python", "code": code})
    assert reply.status == 202, reply
    return int(reply.json["id"])


async def _until_status(client: ApiClient, run_id: int, status: str, timeout_s: float = 60.0) -> dict[str, object]:
    for _ in range(int(timeout_s / 0.05)):
        run = (await client.get(f"/api/runs/{run_id}")).json
        if run["status"] == status:
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} is still {run['status']}, not {status}")


async def test_stop_kills_a_running_program_at_once_and_leaves_no_sandbox(
    server_factory: Callable[..., Awaitable[LiveServer]], sandbox_ready: None
) -> None:
    server = await server_factory(sandbox_pool_size=0, sandbox_prewarm=False)
    student = await server.make_user("student")
    run_id = await _run(student)
    await _until_status(student, run_id, "running")
    await asyncio.sleep(0.5)  # well into its endless loop
    pressed = time.monotonic()
    reply = await student.post(f"/api/runs/{run_id}/stop")
    assert reply.status == 202, reply
    run = await _until_status(student, run_id, "done", timeout_s=10)
    assert time.monotonic() - pressed < 1.0
    assert run["verdict"] == "stopped", run
    for _ in range(100):
        if not sandboxes_of(server):
            break
        await asyncio.sleep(0.1)
    assert sandboxes_of(server) == [], "the stopped run's sandbox was left"
    again = await student.post(f"/api/runs/{run_id}/stop")
    assert again.status == 409 and again.error_code == "run_finished", again


async def test_a_waiting_run_stopped_never_runs_and_only_its_owner_may_stop_it(
    server_factory: Callable[..., Awaitable[LiveServer]], sandbox_ready: None
) -> None:
    server = await server_factory(workers=1)
    student = await server.make_user("student")
    busy = await _run(student)
    await _until_status(student, busy, "running")
    waiting = await _run(student, "print('never')")
    assert (await student.get(f"/api/runs/{waiting}")).json["status"] == "queued"
    other = await server.make_user("student")
    teacher = await server.make_user("teacher")
    admin = await server.make_user("admin")
    for intruder in (other, teacher, admin):
        refused = await intruder.post(f"/api/runs/{waiting}/stop")
        assert refused.status == 404 and refused.error_code == "not_found", refused
    assert (await student.get(f"/api/runs/{waiting}")).json["status"] == "queued"  # unchanged
    assert (await student.post("/api/runs/999999/stop")).status == 404
    stopped = await student.post(f"/api/runs/{waiting}/stop")
    assert stopped.status == 202 and stopped.json == {"id": waiting, "status": "done"}, stopped
    assert (await student.post(f"/api/runs/{busy}/stop")).status == 202
    await _until_status(student, busy, "done", timeout_s=10)
    run = (await student.get(f"/api/runs/{waiting}")).json
    assert run["verdict"] == "stopped" and run["stdout"] in (None, ""), run
