"""The admin's queue pause on a real appliance process with the real sandbox: while paused nothing
is claimed and nothing is lost, the pause survives a restart, and resuming runs every job."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import DEFAULT_PASSWORD, ApiClient
from tests.runner.appliance_process import ApplianceProcess, create_account, free_port

JOBS = 5


async def _log_in(client: ApiClient) -> None:
    reply = await client.login("pauser", DEFAULT_PASSWORD)
    assert reply.status == 200, reply
    if reply.json["user"]["pending_legal"]:
        versions = {f"accept_{p['kind']}": p["version"] for p in reply.json["user"]["pending_legal"]}
        assert (await client.post("/api/me/accept-legal", json=versions)).status == 200


async def _statuses(client: ApiClient, runs: list[int]) -> list[str]:
    return [(await client.get(f"/api/runs/{run}")).json["status"] for run in runs]


async def test_a_paused_queue_stays_paused_across_a_restart_and_loses_nothing(
    tmp_path: Path, sandbox_ready: None
) -> None:
    data_dir = tmp_path / "data"
    create_account(data_dir, "admin", "pauser")
    proc = ApplianceProcess(data_dir, free_port())
    proc.start()
    client = ApiClient(proc.url)
    try:
        await _log_in(client)
        paused = await client.post("/api/admin/queue", json={"paused": True})
        assert paused.status == 200 and paused.json["queue_paused"] is True, paused
        runs = []
        for index in range(JOBS):
            reply = await client.post(
                "/api/runs", json={"language": "python", "code": f"print('job', {index})", "stdin": ""}
            )
            assert reply.status == 202, reply
            runs.append(reply.json["id"])
        await asyncio.sleep(3)  # workers poll every second: three chances to claim, none taken
        assert await _statuses(client, runs) == ["queued"] * JOBS

        proc.stop()
        proc.start()
        picture = (await client.get("/api/dashboard")).json
        assert picture["controls"]["queue_paused"] is True, picture["controls"]
        assert picture["runner"]["queue_paused"] is True, picture["runner"]
        assert picture["queue"]["by_status"] == {"queued": JOBS, "running": 0}
        await asyncio.sleep(3)
        assert await _statuses(client, runs) == ["queued"] * JOBS

        resumed = await client.post("/api/admin/queue", json={"paused": False})
        assert resumed.status == 200 and resumed.json["queue_paused"] is False
        for index, run in enumerate(runs):
            result = await client.get(f"/api/runs/{run}", params={"wait": "30"})
            assert result.json["status"] == "done", result
            assert result.json["stdout"] == f"job {index}\n", result
    finally:
        await client.close()
        proc.stop()
