"""Issue 17, what scale-out must show: whoever reaches the broker without the right credentials
or a registered key gets no job and grades none: a wrong broker password, a host never
registered, a host claiming a registered host's name with another key, and a transcript forged
with a key the server does not know. Real Redis, real `labrunner worker` processes, the real
Docker engine and the server's real SQLite file."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from arq.constants import job_key_prefix, result_key_prefix
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from runner import broker
from runner.executor import ExecResult, TestOutcome
from runner.plan_codec import result_to_json
from runner.signed_messages import TRANSCRIPT, seal, unverified_payload
from tests.runner.appliance_process import run_cli
from tests.scale.cluster import (
    Classroom,
    Cluster,
    WorkerProcess,
    classroom,
    cluster,
    logged_in,
    public_key,
    redis_broker,
    runner_picture,
    stored_jobs,
    wait_for_host,
)
from tests.scale.test_hosts_failover import PROBLEM, TESTS_PER_JOB, assert_graded_once, burst, is_up, solution

# What each of PROBLEM's tests' stdin must print: the answers a forger would claim.
ANSWERS = {case["stdin"].encode(): case["expected_stdout"].encode() for case in PROBLEM["test_cases"]}


async def heartbeat_of(c: Cluster, name: str) -> dict[str, Any]:
    """What a host last said about itself on the broker, whether or not the server believed it."""
    client = aioredis.from_url(c.broker.server_url)
    try:
        raw = await client.get(broker.heartbeat_key(name))
    finally:
        await client.aclose()
    assert raw is not None, f"host {name} never sent a heartbeat"
    said = unverified_payload(broker.loads(raw))
    assert said is not None
    return said


async def wait_refused(admin: Any, name: str, timeout_s: float = 60) -> str:
    """Why the server refuses `name`'s heartbeats, once it lists it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        picture = await runner_picture(admin)
        reasons = {row["name"]: row["reason"] for row in picture["refused_hosts"]}
        if name in reasons:
            assert name not in {row["name"] for row in picture["hosts"]}, picture
            return str(reasons[name])
        await asyncio.sleep(0.2)
    raise AssertionError(f"the server never listed {name} among the refused hosts")


async def all_done_by(c: Cluster, room: Classroom, expected: dict[int, tuple[str, str]], host: str) -> None:
    for job, (student, want) in expected.items():
        done = await room.wait_done(student, job)
        assert (done["status"], done["verdict"]) == ("done", want), done
    jobs = stored_jobs(c.server)
    assert_graded_once(jobs, expected)
    assert {jobs[job].host for job in expected} == {host}, jobs


def test_a_wrong_broker_password_stops_the_worker_with_broker_auth_refused(tmp_path: Path, sandbox_ready: None) -> None:
    with redis_broker(tmp_path / "redis") as running:
        done = run_cli(
            "--data-dir", str(tmp_path / "host"), "worker",
            "--connect", running.url("runner", "not-the-runner-password"),
            "--server-key", public_key(tmp_path / "server"), "--name", "intruder",
            timeout_s=120,
        )  # fmt: skip
    assert done.returncode == 1, done
    assert "error (broker_auth_refused)" in done.stderr, done.stderr
    assert "not-the-runner-password" not in done.stdout + done.stderr


async def test_a_host_never_registered_gets_no_job(tmp_path: Path, sandbox_ready: None) -> None:
    students = [f"stu{i}" for i in range(4)]
    accounts = {"teach": "teacher", "admin": "admin", **dict.fromkeys(students, "student")}
    with cluster(tmp_path, accounts) as c:
        c.add_worker("alpha", slots=1)
        c.add_worker("ghost", slots=2, register=False)
        admin = await logged_in(c.server.url, "admin")
        try:
            async with classroom(c, "teach", students, PROBLEM) as room:
                await wait_for_host(admin, "alpha", is_up)
                assert await wait_refused(admin, "ghost") == "no registered key has this host name"
                # More jobs at once than alpha has slots: a usable ghost would have been given some.
                await all_done_by(c, room, await burst(room, "ghost", sleep_s=0.5), "alpha")
                assert await wait_refused(admin, "ghost") == "no registered key has this host name"
            said = await heartbeat_of(c, "ghost")
        finally:
            await admin.close()
    assert (said["state"], said["engine"], said["jobs_done"]) == ("up", "ok", 0), said


async def test_a_host_claiming_a_registered_name_with_another_key_is_refused(
    tmp_path: Path, sandbox_ready: None
) -> None:
    students = [f"stu{i}" for i in range(4)]
    accounts = {"teach": "teacher", "admin": "admin", **dict.fromkeys(students, "student")}
    with cluster(tmp_path, accounts) as c:
        c.add_worker("alpha", slots=1)
        # gamma is registered with the key of its own data folder; the impostor has another folder,
        # hence another key, and says it is gamma.
        registered = c.add_worker("gamma", slots=2, start=False)
        impostor = WorkerProcess("gamma", tmp_path / "impostor", registered.args, registered.env)
        impostor.data_dir.mkdir()
        c.workers["gamma"] = impostor  # stopped and swept at the end like the others
        impostor.start()
        admin = await logged_in(c.server.url, "admin")
        try:
            async with classroom(c, "teach", students, PROBLEM) as room:
                await wait_for_host(admin, "alpha", is_up)
                refused = "the heartbeat is not signed by the host's registered key"
                assert await wait_refused(admin, "gamma") == refused
                await all_done_by(c, room, await burst(room, "impostor", sleep_s=0.5), "alpha")
                assert await wait_refused(admin, "gamma") == refused
            said = await heartbeat_of(c, "gamma")
        finally:
            await admin.close()
    assert (said["state"], said["engine"], said["jobs_done"]) == ("up", "ok", 0), said


async def _placed_plan(c: Cluster, client: aioredis.Redis) -> tuple[str, str, dict[str, Any]]:
    """The one plan out on a host's queue: (its job id, the host, the plan as it reads)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        for host in c.workers:
            for job_id in await client.zrange(broker.host_queue(host), 0, -1):
                raw = await client.get(job_key_prefix + job_id.decode())
                if raw is not None:
                    sealed = broker.loads(raw)["a"][0]
                    payload = unverified_payload(sealed)
                    assert payload is not None
                    return job_id.decode(), host, payload["plan"]
        await asyncio.sleep(0.05)
    raise AssertionError("no plan was placed on a host's queue")


def forged_answer(job_id: str, host: str, plan: dict[str, Any], key: Ed25519PrivateKey) -> bytes:
    """An arq result for the job, as the host would store it, with a transcript that passes
    every test, signed by `key`."""
    tests = [
        TestOutcome(test["name"], "ok", 0, ANSWERS[base64.b64decode(test["stdin"])], b"", 5) for test in plan["tests"]
    ]
    transcript = seal(TRANSCRIPT, {"job": job_id, "host": host, "result": result_to_json(ExecResult(None, tests))}, key)
    now_ms = int(time.time() * 1000)
    return broker.dumps(
        {"t": 1, "f": broker.RUN_PLAN, "a": [], "k": {}, "et": now_ms, "s": True, "r": transcript,
         "st": now_ms, "ft": now_ms, "q": broker.host_queue(host), "id": job_id}
    )  # fmt: skip


async def test_a_transcript_forged_with_an_unregistered_key_is_not_graded(tmp_path: Path, sandbox_ready: None) -> None:
    accounts = {"teach": "teacher", "admin": "admin", "stu0": "student"}
    with cluster(tmp_path, accounts) as c:
        c.add_worker("alpha", slots=1)
        c.add_worker("beta", slots=1)
        admin = await logged_in(c.server.url, "admin")
        # Whoever has the runner hosts' broker password can write any key there.
        client = aioredis.from_url(c.broker.url())
        try:
            async with classroom(c, "teach", ["stu0"], PROBLEM) as room:
                for name in ("alpha", "beta"):
                    await wait_for_host(admin, name, is_up)
                # A wrong answer, still running when the forgery claims it passed every test.
                job = await room.submit("stu0", solution("forged", sleep_s=5, right=False))
                job_id, host, plan = await _placed_plan(c, client)
                answer = forged_answer(job_id, host, plan, Ed25519PrivateKey.generate())
                await client.set(result_key_prefix + job_id, answer, px=600_000)
                done = await room.wait_done("stu0", job)
            server_log = c.server.log.read_text()
            stored = stored_jobs(c.server)[job]
        finally:
            await client.aclose()
            await admin.close()
    assert (done["status"], done["verdict"]) == ("done", "wrong_answer"), done
    assert (stored.status, stored.verdict, stored.test_rows) == ("done", "wrong_answer", TESTS_PER_JOB), stored
    # The forgery named `host`: the job left it and was run, once, on the other host.
    assert stored.host == ({"alpha", "beta"} - {host}).pop(), stored
    assert f"moved off runner host {host}: its transcript was refused" in server_log
