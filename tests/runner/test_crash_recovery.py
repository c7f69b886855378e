"""kill -9 of the appliance with jobs queued and running: after a restart every job finishes once."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import docker

from appliance.sandbox_wiring import instance_label
from runner.sandbox_container import LABEL_INSTANCE
from tests.conftest import DEFAULT_PASSWORD, ApiClient
from tests.runner.appliance_process import ApplianceProcess, create_account, free_port

PROBLEM = {
    "title": "Add",
    "statement": "Print a+b.",
    "language": "python",
    "time_limit_ms": 5000,
    "test_cases": [
        {"name": "one", "stdin": "1 2\n", "expected_stdout": "3\n", "visible": True},
        {"name": "two", "stdin": "5 5\n", "expected_stdout": "10\n", "visible": False},
    ],
}


def _solution(index: int) -> str:
    # Distinct code per submission (no dedup) and slow enough that jobs are mid-run at the kill.
    return f"import time\ntime.sleep(0.6)  # variant {index}\na, b = map(int, input().split())\nprint(a + b)\n"


def _sandbox_containers(data_dir: Path) -> list[object]:
    labels = [f"{LABEL_INSTANCE}={instance_label(data_dir.resolve())}"]
    client = docker.from_env()
    try:
        return client.containers.list(all=True, filters={"label": labels}, sparse=True)
    finally:
        client.close()


async def test_kill_9_mid_queue_loses_nothing_and_runs_each_job_once(tmp_path: Path, sandbox_ready: None) -> None:
    data_dir = tmp_path / "data"
    create_account(data_dir, "teacher", "crashtest")
    proc = ApplianceProcess(data_dir, free_port())
    proc.start()
    client = ApiClient(proc.url)
    try:
        assert (await client.login("crashtest", DEFAULT_PASSWORD)).status == 200
        accepted = await client.post(
            "/api/me/accept-legal", json={"accept_terms": "2026-11-01", "accept_privacy": "2026-11-01"}
        )
        assert accepted.status == 200, accepted
        problem = await client.post("/api/problems", json=PROBLEM)
        assert problem.status == 201, problem
        submissions = []
        for index in range(8):
            reply = await client.post(
                f"/api/problems/{problem.json['id']}/submissions", json={"language": "python", "code": _solution(index)}
            )
            assert reply.status == 202, reply
            submissions.append(reply.json["id"])
        run = await client.post("/api/runs", json={"language": "python", "code": "print(input())", "stdin": "hi"})
        assert run.status == 202

        async with asyncio.timeout(60):
            while True:
                states = [(await client.get(f"/api/submissions/{s}")).json["status"] for s in submissions]
                if "running" in states:
                    break
                await asyncio.sleep(0.1)
        proc.kill9()

        proc.start()
        for job_id in submissions:
            reply = await client.get(f"/api/submissions/{job_id}", params={"wait": "30"})
            assert reply.status == 200
            assert reply.json["status"] == "done", reply
            assert reply.json["verdict"] == "accepted", reply
        run_result = await client.get(f"/api/runs/{run.json['id']}", params={"wait": "30"})
        assert run_result.json["stdout"] == "hi\n"
    finally:
        await client.close()
        proc.stop()

    db = sqlite3.connect(data_dir / "labrunner.sqlite3")
    try:
        rows = db.execute("SELECT id, status, infra_attempts, infra_log FROM jobs").fetchall()
        tests_per_job = dict(db.execute("SELECT job_id, COUNT(*) FROM job_tests GROUP BY job_id").fetchall())
    finally:
        db.close()
    assert len(rows) == 9 and all(status == "done" for _, status, _, _ in rows)
    # Each job has exactly one set of per-test results: it completed once.
    assert all(tests_per_job[job_id] == (1 if job_id == run.json["id"] else 2) for job_id, *_ in rows)
    restarted = [r for r in rows if "appliance_restarted" in r[3]]
    assert restarted, "a job was running at the kill, so at least one was requeued as an infra retry"
    assert all(attempts == 1 for _, _, attempts, _ in restarted)
    # The restart swept the killed process's containers and the clean stop removed its own.
    assert _sandbox_containers(data_dir) == []


def test_selftest_command_passes_on_a_working_install(tmp_path: Path, sandbox_ready: None) -> None:
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    done = subprocess.run(
        [sys.executable, "-m", "appliance", "--data-dir", str(tmp_path), "selftest"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAIL" not in done.stdout and "0 failed" in done.stdout


async def test_kill_9_with_warm_sandboxes_alive_leaves_none_after_a_restart(
    tmp_path: Path, sandbox_ready: None
) -> None:
    data_dir = tmp_path / "data"
    create_account(data_dir, "teacher", "warmkill")
    proc = ApplianceProcess(data_dir, free_port())
    proc.start()
    client = ApiClient(proc.url)
    try:
        assert (await client.login("warmkill", DEFAULT_PASSWORD)).status == 200
        await client.post("/api/me/accept-legal", json={"accept_terms": "2026-11-01", "accept_privacy": "2026-11-01"})
        run = await client.post("/api/runs", json={"language": "python", "code": "print('warm')"})
        assert (await client.get(f"/api/runs/{run.json['id']}", params={"wait": "30"})).json["stdout"] == "warm\n"
        # The run's container stays for the teacher's next job, beside the pool's.
        before = {c.id for c in _sandbox_containers(data_dir)}  # type: ignore[attr-defined]
        assert before, "no warm sandbox was kept"
        proc.kill9()
        assert {c.id for c in _sandbox_containers(data_dir)} >= before  # type: ignore[attr-defined]
        proc.start()
        await client.close()  # its connections went with the killed process
        client = ApiClient(proc.url)
        # The first login after the restart reaches the engine, which sweeps the old containers.
        assert (await client.login("warmkill", DEFAULT_PASSWORD)).status == 200
        for _ in range(150):
            if not {c.id for c in _sandbox_containers(data_dir)} & before:  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("the killed appliance's warm sandboxes are still there")
    finally:
        await client.close()
        proc.stop()
    assert _sandbox_containers(data_dir) == []
