"""Red team of runner hosts (issue 17), with real components: Redis with its ACL, a remote-mode
server, `labrunner worker` processes on Docker, the server's SQLite file.

Attackers: a stranger on the LAN without the broker's password; a student holding the runner hosts'
broker password but no registered key; a student's program on a host; a registered host that
misbehaves ("mallory": registered, played by this test through the broker). One cluster serves the
whole module; mallory heartbeats only inside the tests that use it, so the others' jobs go to the
real hosts (alpha, beta).
"""

from __future__ import annotations

import asyncio
import base64
import json
import pickle
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from arq.constants import abort_jobs_ss, job_key_prefix, result_key_prefix
from arq.jobs import serialize_result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError

from appliance import identity
from appliance.identity import parse_public_key
from runner import broker
from runner.signed_messages import HEARTBEAT, PLAN, TRANSCRIPT, open_sealed, seal
from tests.conftest import DEFAULT_PASSWORD, ApiClient
from tests.requirements import require_sandbox
from tests.runner.appliance_process import cli
from tests.scale.cluster import Cluster, cluster

SECRET_IN = "HIDDEN-IN-7731 HIDDEN-OUT-4\n"
SECRET_OUT = "HIDDEN-OUT-4\n"
CODE_MARK = "CODE-MARK-5519"
SOLUTION = f"print(input().split()[-1])  # {CODE_MARK}"
WRONG = f"print(input())  # {CODE_MARK}"
PROBLEM_TESTS = [
    {"name": "shown", "stdin": "hello world\n", "expected_stdout": "world\n", "visible": True},
    {"name": "secret", "stdin": SECRET_IN, "expected_stdout": SECRET_OUT, "visible": False},
]
# Taken in turn: a student may submit to a problem only a few times a minute.
STUDENTS = ["stu1", "stu2", "stu3", "stu4"]
# A student who prefers mallory's region: their jobs go to mallory while it heartbeats.
# Sticky placement prefers a student's last host: a fresh one each time mallory should get the job.
EVIL_STUDENTS = [f"evil{i}" for i in range(1, 17)]


class _Boom:
    """A pickle that runs code when loaded: creates `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"open({str(self.path)!r}, 'w').close()",))


@dataclass
class Lab:
    c: Cluster
    problem_id: int
    mallory_key: Ed25519PrivateKey
    server_public: Ed25519PublicKey
    evil: list[str]
    regular: list[str]

    def student(self) -> str:
        self.regular.append(name := self.regular.pop(0))
        return name

    def evil_student(self) -> str:
        return self.evil.pop(0)


async def _client(url: str, username: str) -> ApiClient:
    client = ApiClient(url)
    assert (await client.login(username, DEFAULT_PASSWORD)).status == 200
    versions = {}
    for kind in ("terms", "privacy"):
        versions[f"accept_{kind}"] = (await client.get(f"/api/legal/{kind}")).json["version"]
    assert (await client.post("/api/me/accept-legal", json=versions)).status == 200
    return client


async def _classroom(url: str) -> tuple[int, int]:
    """(the problem, the class whose students prefer mallory's region)."""
    teacher = await _client(url, "teach")
    try:
        klass = (await teacher.post("/api/classes", json={"name": "7B"})).json
        evil = (await teacher.post("/api/classes", json={"name": "7E"})).json
        problem = await teacher.post(
            "/api/problems",
            json={
                "title": "Last word",
                "statement": "Print the last word.",
                "language": "python",
                "classes": [klass["id"], evil["id"]],
                "test_cases": PROBLEM_TESTS,
            },
        )
        assert problem.status == 201, problem
    finally:
        await teacher.close()
    for names, code in ((STUDENTS, klass["join_code"]), (EVIL_STUDENTS, evil["join_code"])):
        for name in names:
            student = await _client(url, name)
            try:
                assert (await student.post("/api/classes/join", json={"code": code})).status == 200
            finally:
                await student.close()
    return int(problem.json["id"]), int(evil["id"])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_sandbox()
    accounts = {"teach": "teacher", "adm": "admin"} | dict.fromkeys(STUDENTS + EVIL_STUDENTS, "student")
    # The server gives up on a plan 8 + 2 * 3 s after placing it (production: 600 + 2 * 10 s).
    with cluster(tmp_path_factory.mktemp("hosts"), accounts, env={"LABRUNNER_WORKER_JOB_TIMEOUT_S": "8"}) as c:
        c.add_worker("alpha", slots=2)
        c.add_worker("beta", slots=1)
        mallory = c.add_worker("mallory", region="evil", start=False)
        problem_id, evil_class = asyncio.run(_classroom(c.server.url))
        cli(c.server.data_dir, "regions", "--class", str(evil_class), "evil")
        yield Lab(
            c,
            problem_id,
            identity.ensure(mallory.data_dir).private_key,
            parse_public_key(c.server_key),
            list(EVIL_STUDENTS),
            list(STUDENTS),
        )


@asynccontextmanager
async def _broker(lab: Lab) -> AsyncIterator[aioredis.Redis]:
    """The broker as a student holding the runner hosts' password (and nothing else)."""
    r = aioredis.Redis.from_url(lab.c.broker.url())
    try:
        yield r
    finally:
        await r.aclose()


async def _submit(lab: Lab, username: str, code: str) -> int:
    # Each submission new (no deduplication onto an earlier job).
    code = f"{code}\n# {uuid.uuid4().hex}\n"
    client = await _client(lab.c.server.url, username)
    try:
        reply = await client.post(
            f"/api/problems/{lab.problem_id}/submissions", json={"language": "python", "code": code}
        )
        assert reply.status == 202, reply
        return int(reply.json["id"])
    finally:
        await client.close()


async def _finished(lab: Lab, username: str, job_id: int, within_s: float = 60) -> dict[str, Any]:
    client = await _client(lab.c.server.url, username)
    try:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            reply = await client.get(f"/api/submissions/{job_id}", params={"wait": "5"})
            if reply.json["status"] in ("done", "failed"):
                return dict(reply.json)
        raise AssertionError(f"job {job_id} did not finish within {within_s} s: {reply.json}")
    finally:
        await client.close()


def _job_row(lab: Lab, job_id: int) -> dict[str, Any]:
    db = sqlite3.connect(lab.c.server.data_dir / "labrunner.sqlite3")
    db.row_factory = sqlite3.Row
    try:
        row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        tests = db.execute("SELECT COUNT(*) FROM job_tests WHERE job_id = ?", (job_id,)).fetchone()[0]
        return dict(row) | {"test_rows": tests}
    finally:
        db.close()


async def _dashboard(lab: Lab, username: str = "adm") -> dict[str, Any]:
    client = await _client(lab.c.server.url, username)
    try:
        reply = await client.get("/api/dashboard")
        assert reply.status == 200, reply
        return dict(reply.json)
    finally:
        await client.close()


class PretendHost:
    """Mallory: a registered host (its key is registered on the server) played through the broker."""

    def __init__(self, r: aioredis.Redis, lab: Lab, name: str = "mallory") -> None:
        self.r, self.lab, self.name = r, lab, name
        self.queue = broker.host_queue(name)
        self._beating: asyncio.Task[None] | None = None

    def heartbeat(self, state: str = "up", **status: Any) -> bytes:
        body = {"host": self.name, "region": "evil", "slots": 1, "busy": 0, "engine": "ok", "warm": None,
                "jobs_done": 0, "state": state, "sent_at": time.time(), **status}  # fmt: skip
        return broker.dumps(seal(HEARTBEAT, body, self.lab.mallory_key))

    async def beat(self, state: str = "up", **status: Any) -> bytes:
        raw = self.heartbeat(state, **status)
        await self.r.set(broker.heartbeat_key(self.name), raw)
        return raw

    async def up(self, **status: Any) -> None:
        async def forever() -> None:
            while True:
                await self.beat(**status)
                await asyncio.sleep(0.3)

        await self.beat(**status)
        self._beating = asyncio.create_task(forever())
        await _until(lambda: self._listed_up(), "the server never saw mallory up")

    async def _listed_up(self) -> bool:
        hosts = (await _dashboard(self.lab))["runner"]["hosts"]
        return any(h["name"] == self.name and h["state"] == "up" for h in hosts)

    async def down(self) -> None:
        if self._beating is not None:
            self._beating.cancel()
            with pytest.raises(asyncio.CancelledError):
                await self._beating
            self._beating = None
        await asyncio.sleep(0.01)
        await self.beat(state="stopped")

    async def next_plan(self, within_s: float = 30) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """(arq job id, the signed message, its opened payload) of the next plan on this queue."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            for job_id in await self.r.zrange(self.queue, 0, -1):
                raw = await self.r.get(job_key_prefix + job_id.decode())
                if raw:
                    message = json.loads(raw)["a"][0]
                    return job_id.decode(), message, open_sealed(PLAN, message, self.lab.server_public)
            await asyncio.sleep(0.05)
        raise AssertionError("no plan came to mallory")

    async def answer(self, job_id: str, body: dict[str, Any], key: Ed25519PrivateKey | None = None) -> None:
        transcript = seal(TRANSCRIPT, {"job": job_id, "host": self.name, **body}, key or self.lab.mallory_key)
        await self.answer_raw(job_id, _arq_result(job_id, self.queue, transcript))

    async def answer_raw(self, job_id: str, data: bytes) -> None:
        async with self.r.pipeline(transaction=True) as tr:
            tr.set(result_key_prefix + job_id, data, ex=600)
            tr.zrem(self.queue, job_id)
            tr.delete(job_key_prefix + job_id)
            await tr.execute()


def _arq_result(job_id: str, queue: str, result: Any, success: bool = True) -> bytes:
    now = int(time.time() * 1000)
    data = serialize_result(broker.RUN_PLAN, (), {}, 1, now, success, result, now, now, job_id, queue, job_id,
                            serializer=broker.dumps)  # fmt: skip
    assert data is not None
    return data


async def _until(check: Any, message: str, within_s: float = 20) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(message)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _outcome(name: str, stdout: str, status: str = "ok") -> dict[str, Any]:
    return {"name": name, "status": status, "exit_code": 0, "stdout": _b64(stdout), "stderr": "", "time_ms": 5,
            "truncated": False, "signal": None, "images": []}  # fmt: skip


def _accepted_looking(plan: dict[str, Any]) -> dict[str, Any]:
    """What a transcript would say to get WRONG accepted: the expected outputs (the worst case: an
    attacker who learnt them)."""
    outputs = {"shown": "world\n", "secret": SECRET_OUT}
    return {"compile": None, "tests": [_outcome(t["name"], outputs[t["name"]]) for t in plan["plan"]["tests"]],
            "sandbox_id": None}  # fmt: skip


def _real_host(row: dict[str, Any]) -> None:
    assert row["host"] in ("alpha", "beta"), row


# -- a stranger on the LAN ----------------------------------------------------------------------


async def test_a_stranger_without_the_password_gets_nothing_from_the_broker(lab: Lab) -> None:
    anonymous = aioredis.Redis(host="127.0.0.1", port=lab.c.broker.port)
    try:
        with pytest.raises((AuthenticationError, ResponseError)):
            await anonymous.keys("*")
        with pytest.raises((AuthenticationError, ResponseError)):
            await anonymous.execute_command("AUTH", "default", "")
        with pytest.raises((AuthenticationError, ResponseError)):
            await anonymous.execute_command("AUTH", "runner", "guess")
        with pytest.raises((AuthenticationError, ResponseError)):
            await anonymous.get(broker.heartbeat_key("alpha"))
    finally:
        await anonymous.aclose()


# -- a student holding the runner hosts' broker password -----------------------------------------


@asynccontextmanager
async def _mallory_with_a_plan(
    lab: Lab, r: aioredis.Redis
) -> AsyncIterator[tuple[PretendHost, str, int, tuple[str, dict[str, Any], dict[str, Any]]]]:
    """Mallory up, an evil student's wrong submission placed on it and its plan captured:
    (mallory, the student, the job, (arq job id, signed plan, plan)); mallory down at the end."""
    mallory = PretendHost(r, lab)
    await mallory.up()
    try:
        student = lab.evil_student()
        job = await _submit(lab, student, WRONG)
        yield mallory, student, job, await mallory.next_plan()
    finally:
        await mallory.down()


async def test_a_plan_taken_off_a_hosts_queue_does_not_hang_its_job(lab: Lab) -> None:
    """The thief empties mallory's queue (as a broker restart would): the server notices the plan
    is gone and places the job on a real host instead of waiting forever."""
    async with _broker(lab) as r, _mallory_with_a_plan(lab, r) as (mallory, student, job, (job_id, _, _)):
        assert await r.zrem(mallory.queue, job_id) == 1
        await r.delete(job_key_prefix + job_id)
        seen = await _finished(lab, student, job, within_s=30)
    assert (seen["status"], seen["verdict"]) == ("done", "wrong_answer")
    _real_host(_job_row(lab, job))


async def test_forged_or_pickled_transcripts_are_never_graded(lab: Lab) -> None:
    thief = Ed25519PrivateKey.generate()
    async with _broker(lab) as r, _mallory_with_a_plan(lab, r) as (mallory, student, job, (job_id, _, plan)):
        # Signed, naming the right job and host, claiming the expected outputs: not mallory's key.
        await mallory.answer(job_id, {"result": _accepted_looking(plan)}, key=thief)
        first = await _finished(lab, student, job)

        student2 = lab.evil_student()
        job2 = await _submit(lab, student2, WRONG)
        job_id2, _, _ = await mallory.next_plan()
        marker = lab.c.root / "pickle-ran"
        payload = pickle.dumps(_Boom(marker))
        await mallory.answer_raw(job_id2, payload)
        second = await _finished(lab, student2, job2)
        # Afterwards, a result for the finished job changes nothing.
        await mallory.answer(job_id2, {"result": _accepted_looking(plan)})
    for seen, job_number in ((first, job), (second, job2)):
        assert (seen["status"], seen["verdict"]) == ("done", "wrong_answer")
        row = _job_row(lab, job_number)
        _real_host(row)
        assert row["test_rows"] == 2
    assert not marker.exists()
    await asyncio.sleep(1)
    assert _job_row(lab, job2)["verdict"] == "wrong_answer"


async def test_forged_and_replayed_heartbeats_attract_no_job(lab: Lab) -> None:
    thief = Ed25519PrivateKey.generate()
    forged = {"host": "alpha", "region": "evil", "slots": 50, "busy": 0, "engine": "ok", "warm": None,
              "jobs_done": 0, "state": "up", "sent_at": time.time() + 10_000}  # fmt: skip

    def by_thief(name: str) -> bytes:
        return broker.dumps(seal(HEARTBEAT, forged | {"host": name}, thief))

    junk = [f"bulk{index}" for index in range(20)] + ["mallory-big"]
    floods = [f"flood{index}" for index in range(300)]
    async with _broker(lab) as r:
        mallory = PretendHost(r, lab)
        await mallory.up()
        captured = mallory.heartbeat()
        await mallory.down()
        await _until(lambda: _state_of(lab, "mallory", "stopped"), "mallory never listed as stopped")
        try:
            # Mallory's own "up", played back after its "stopped"; a registered name under another
            # key and a name nobody registered, signed by the thief; markup for the admin's page.
            await r.set(broker.heartbeat_key("mallory"), captured)
            await r.set(broker.heartbeat_key("alpha-twin"), by_thief("alpha"))
            await r.set(broker.heartbeat_key("eve"), by_thief("eve"))
            await r.set(broker.heartbeat_key("markup"), by_thief("<img src=x onerror=alert(1)>"))
            # Values the server should never read: they are not registered hosts' heartbeats.
            for name in junk:
                await r.set(broker.heartbeat_key(name), b"x" * 60_000)
            await asyncio.sleep(3)
            for name in junk:
                assert await r.object("idletime", broker.heartbeat_key(name)) >= 2, name
            runner = (await _dashboard(lab))["runner"]
            names = {h["name"]: h for h in runner["hosts"]}
            assert names["mallory"]["state"] == "stopped"
            assert "eve" not in names and names["alpha"]["slots"] == 2
            refused = {h["name"] for h in runner["refused_hosts"]}
            assert {"eve", "alpha-twin"} <= refused
            assert all(broker.HOST_NAME.match(name) for name in refused), refused

            # The thief's heartbeat under a registered host's own key is listed, even after a flood.
            await r.set(broker.heartbeat_key("mallory"), by_thief("mallory"))
            async with r.pipeline(transaction=False) as pipe:
                for name in floods:
                    pipe.set(broker.heartbeat_key(name), by_thief(name))
                await pipe.execute()
            await asyncio.sleep(2)
            runner = (await _dashboard(lab))["runner"]
            assert not any(h["name"].startswith("flood") for h in runner["hosts"])
            refused = {h["name"] for h in runner["refused_hosts"]}
            assert len(refused) <= 100 + 3 and "mallory" in refused

            student = lab.evil_student()
            job = await _submit(lab, student, WRONG)
            seen = await _finished(lab, student, job)
            assert seen["verdict"] == "wrong_answer"
            _real_host(_job_row(lab, job))
        finally:
            others = ["alpha-twin", "eve", "markup", *junk, *floods]
            await r.delete(*[broker.heartbeat_key(name) for name in others])
            await mallory.beat(state="stopped")


async def _state_of(lab: Lab, name: str, state: str) -> bool:
    hosts = (await _dashboard(lab))["runner"]["hosts"]
    return any(h["name"] == name and h["state"] == state for h in hosts)


async def _arq_failure(r: aioredis.Redis, job_id: str, within_s: float = 20) -> str:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        raw = await r.get(result_key_prefix + job_id)
        if raw:
            data = json.loads(raw)
            assert data["s"] is False, data
            return str(data["r"])
        await asyncio.sleep(0.1)
    raise AssertionError(f"beta never answered {job_id}")


async def _jobs_done(r: aioredis.Redis, host: str) -> int:
    message = json.loads(await r.get(broker.heartbeat_key(host)))
    return int(json.loads(message["body"])["jobs_done"])


async def test_a_host_runs_nothing_the_server_did_not_sign_for_it(lab: Lab) -> None:
    thief = Ed25519PrivateKey.generate()
    marker = lab.c.root / "beta-pickle-ran"
    async with _broker(lab) as r:
        # A genuine plan, signed for mallory, captured off its queue.
        mallory = PretendHost(r, lab)
        await mallory.up()
        try:
            student = lab.evil_student()
            job = await _submit(lab, student, WRONG)
            mallory_job, message, plan = await mallory.next_plan()
        finally:
            await mallory.down()
        assert (await _finished(lab, student, job))["verdict"] == "wrong_answer"

        pool = await broker.connect(lab.c.broker.url())
        try:
            done_before = await _jobs_done(r, "beta")
            queue = broker.host_queue("beta")
            attempts: list[str] = []
            # The captured plan replayed onto beta, under its own job id (another host's: beta drops
            # it unread, its keys are not beta's) and under one of beta's.
            for job_id in (mallory_job, broker.job_id_for("beta")):
                await r.delete(result_key_prefix + job_id)
                await pool.enqueue_job(broker.RUN_PLAN, message, _job_id=job_id, _queue_name=queue)
                attempts.append(job_id)
            # A plan for beta signed by the thief.
            forged = seal(PLAN, {**plan, "host": "beta", "job": "beta:forged1"}, thief)
            await pool.enqueue_job(broker.RUN_PLAN, forged, _job_id="beta:forged1", _queue_name=queue)
            attempts.append("beta:forged1")
            # Another function of the worker's module, by name.
            await pool.enqueue_job("_shutdown", _job_id="beta:otherfn", _queue_name=queue)
            attempts.append("beta:otherfn")
            # A pickle in place of JSON.
            payload = pickle.dumps(_Boom(marker))
            await r.set(job_key_prefix + "beta:pickled", payload)
            await r.zadd(queue, {"beta:pickled": int(time.time() * 1000)})
            attempts.append("beta:pickled")
            for job_id in attempts[:-1]:
                if job_id.startswith("beta:"):
                    await _arq_failure(r, job_id)
                else:
                    await _until(lambda job_id=job_id: _gone(r, queue, job_id), f"beta never dropped {job_id}")
            await _until(lambda: _gone(r, queue, "beta:pickled"), "beta never dropped the pickled job")
        finally:
            await pool.aclose()
        assert not marker.exists()
        assert await _jobs_done(r, "beta") == done_before
    # Beta still takes real jobs.
    assert await _state_of(lab, "beta", "up")


async def test_a_plan_the_server_signed_runs_once_and_never_after_it_expired(lab: Lab) -> None:
    """Plans read off the broker and queued again: the server's own signature, played back."""
    server_key = identity.ensure(lab.c.server.data_dir).private_key
    plan = {"language": "python", "code": "print('replayed')", "tests": [{"name": "t", "stdin": ""}], "files": [],
            "time_limit_ms": 2000, "memory_limit_mb": 256, "graphical": False, "graphical_time": False,
            "owner": "replay", "hidden_tests": False}  # fmt: skip

    def signed(job_id: str, expires: float) -> dict[str, str]:
        return seal(PLAN, {"job": job_id, "host": "beta", "expires": expires, "plan": plan}, server_key)

    async with _broker(lab) as r:
        pool = await broker.connect(lab.c.broker.url())
        queue = broker.host_queue("beta")
        try:
            once = signed("beta:once", time.time() + 600)
            await pool.enqueue_job(broker.RUN_PLAN, once, _job_id="beta:once", _queue_name=queue)
            await _until(lambda: r.exists(result_key_prefix + "beta:once"), "beta never ran the plan")
            done = await _jobs_done_after(r, "beta", json.loads(await r.get(result_key_prefix + "beta:once")))
            await r.delete(result_key_prefix + "beta:once")
            await pool.enqueue_job(broker.RUN_PLAN, once, _job_id="beta:once", _queue_name=queue)
            assert "run here already" in await _arq_failure(r, "beta:once")
            stale = signed("beta:stale", time.time() - 1)
            await pool.enqueue_job(broker.RUN_PLAN, stale, _job_id="beta:stale", _queue_name=queue)
            assert "expired" in await _arq_failure(r, "beta:stale")
            assert await _jobs_done(r, "beta") == done
        finally:
            await pool.aclose()


async def _jobs_done_after(r: aioredis.Redis, host: str, result: dict[str, Any]) -> int:
    assert result["s"] is True, result
    await asyncio.sleep(1.5)  # a heartbeat after the run
    return await _jobs_done(r, host)


async def _gone(r: aioredis.Redis, queue: str, job_id: str) -> bool:
    return await r.zscore(queue, job_id) is None


async def test_the_abort_set_poisoned_never_grades_wrongly_or_twice(lab: Lab) -> None:
    async with _broker(lab) as r:
        student = lab.student()
        slow = f"import time\ntime.sleep(1.5)\nprint(input())  # {CODE_MARK}"
        job = await _submit(lab, student, slow)
        # Every arq job id the thief can see goes into the abort set, again and again.
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            names = [key.decode()[len(job_key_prefix) :] for key in await r.keys(job_key_prefix + "*")]
            if names:
                await r.zadd(abort_jobs_ss, dict.fromkeys(names, int(time.time() * 1000)))
            await asyncio.sleep(0.05)
        seen = await _finished(lab, student, job, within_s=90)
    row = _job_row(lab, job)
    # Aborts only cost retries: either the job ended graded right, or it failed as infrastructure.
    if seen["status"] == "done":
        assert seen["verdict"] == "wrong_answer" and row["test_rows"] == 2
    else:
        assert row["test_rows"] == 0


async def test_a_starved_host_queue_does_not_hang_the_job(lab: Lab) -> None:
    """A host reads the first entries of its queue by score; entries scored 0 it skips as running
    elsewhere. A hundred of them on each queue and no plan starts: the server gives up on each
    delivery in time and the job is an infrastructure failure, retried later, not running forever."""
    # Ids of each host's own (a host drops other hosts' ids from its queue unread).
    junk = {name: {f"{name}:junk{index}": 0 for index in range(120)} for name in ("alpha", "beta")}
    queues = {name: broker.host_queue(name) for name in junk}
    async with _broker(lab) as r:
        for name, queue in queues.items():
            await r.zadd(queue, junk[name])
        try:
            student = lab.student()
            job = await _submit(lab, student, WRONG)

            async def given_up() -> bool:
                return "runner_host_timeout" in (_job_row(lab, job)["infra_log"] or "")

            await _until(given_up, "the job still waits on a starved host", within_s=60)
        finally:
            for name, queue in queues.items():
                await r.zrem(queue, *junk[name])
    seen = await _finished(lab, student, job, within_s=120)
    assert (seen["status"], seen["verdict"]) == ("done", "wrong_answer")
    assert _job_row(lab, job)["test_rows"] == 2


# -- a registered host that misbehaves -----------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    ["another_job", "another_host", "too_few_tests", "no_tests", "bad_status", "not_base64", "infra_garbage"],
)
async def test_a_registered_hosts_bad_transcript_is_never_graded(lab: Lab, variant: str) -> None:
    async with _broker(lab) as r, _mallory_with_a_plan(lab, r) as (mallory, student, job, (job_id, _, plan)):
        good = _accepted_looking(plan)
        body: dict[str, Any] = {"result": good}
        if variant == "another_job":
            transcript = seal(TRANSCRIPT, {"job": uuid.uuid4().hex, "host": "mallory", **body}, lab.mallory_key)
            await mallory.answer_raw(job_id, _arq_result(job_id, mallory.queue, transcript))
        elif variant == "another_host":
            transcript = seal(TRANSCRIPT, {"job": job_id, "host": "alpha", **body}, lab.mallory_key)
            await mallory.answer_raw(job_id, _arq_result(job_id, mallory.queue, transcript))
        else:
            if variant == "too_few_tests":
                good["tests"] = good["tests"][:1]
            elif variant == "no_tests":
                good = {"compile": {"ok": True, "output": "", "time_ms": 1}, "tests": [], "sandbox_id": None}
            elif variant == "bad_status":
                good["tests"][1]["status"] = "accepted"
            elif variant == "not_base64":
                good["tests"][1]["stdout"] = SECRET_OUT
            if variant == "infra_garbage":
                body = {"infra": ["x" * 10_000]}
            else:
                body = {"result": good}
            await mallory.answer(job_id, body)
        # Mallory is gone before the job could come back to it.
        await mallory.down()
        seen = await _finished(lab, student, job, within_s=90)
    row = _job_row(lab, job)
    # Never graded from mallory's answer; the job runs on a real host (now or after a retry).
    assert row["host"] != "mallory", row
    if seen["status"] == "done":
        assert seen["verdict"] == "wrong_answer"
        _real_host(row)
        assert row["test_rows"] == 2


async def test_a_registered_hosts_giant_output_is_bounded(lab: Lab) -> None:
    async with _broker(lab) as r, _mallory_with_a_plan(lab, r) as (mallory, student, job, (job_id, _, plan)):
        giant = "A" * 8_000_000
        tests = [_outcome(t["name"], giant) for t in plan["plan"]["tests"]]
        await mallory.answer(job_id, {"result": {"compile": None, "tests": tests, "sandbox_id": None}})
        seen = await _finished(lab, student, job)
    assert (seen["status"], seen["verdict"]) == ("done", "wrong_answer")
    teacher = await _client(lab.c.server.url, "teach")
    try:
        full = await teacher.get(f"/api/submissions/{job}")
    finally:
        await teacher.close()
    assert all(len(test["stdout"]) < 1_000_000 for test in full.json["tests"])


@pytest.mark.parametrize("status", [{"slots": "many"}, {"slots": None}, {"slots": [2]}, {"region": {"a": 1}},
                                    {"busy": "x", "engine": ["ok"]}])  # fmt: skip
async def test_a_registered_hosts_malformed_heartbeat_stops_no_job(lab: Lab, status: dict[str, Any]) -> None:
    async with _broker(lab) as r:
        mallory = PretendHost(r, lab)
        await mallory.beat(**status)
        beating = asyncio.create_task(_beat_forever(mallory, status))
        try:
            await asyncio.sleep(1.5)
            student = lab.student()
            job = await _submit(lab, student, WRONG)
            seen = await _finished(lab, student, job, within_s=30)
            assert seen["verdict"] == "wrong_answer"
            _real_host(_job_row(lab, job))
            refused = (await _dashboard(lab))["runner"]["refused_hosts"]
            assert {"name": "mallory", "reason": "the heartbeat is malformed"} in refused
        finally:
            beating.cancel()
            with pytest.raises(asyncio.CancelledError):
                await beating
            await mallory.down()


async def _beat_forever(host: PretendHost, status: dict[str, Any]) -> None:
    while True:
        await host.beat(**status)
        await asyncio.sleep(0.3)


# -- a student's program on a host ---------------------------------------------------------------


async def _run(lab: Lab, username: str, code: str) -> tuple[str, int]:
    client = await _client(lab.c.server.url, username)
    try:
        reply = await client.post("/api/runs", json={"language": "python", "code": code, "stdin": ""})
        assert reply.status == 202, reply
        done = await client.get(f"/api/runs/{reply.json['id']}", params={"wait": "30"})
        assert done.json["status"] == "done", done.json
        return str(done.json["stdout"]), int(reply.json["id"])
    finally:
        await client.close()


PROBE = """
import os, socket
seen = []
for address in ("127.0.0.1", "172.17.0.1", "host.docker.internal"):
    try:
        socket.create_connection((address, {port}), timeout=2).close()
        seen.append("REACHED-" + address)
    except OSError:
        pass
for path in ({data_dir!r}, {key!r}, "/tmp/left-by-stu1", "left-by-stu1"):
    if os.path.exists(path):
        seen.append("SAW-" + path)
seen += ["NET-" + name for _, name in socket.if_nameindex() if name != "lo"]
if any("secret" in value.lower() or "redis" in value.lower() for value in os.environ.values()):
    seen.append("ENV-LEAK")
print("probe:", *seen)
"""


async def test_a_students_program_reaches_neither_the_broker_nor_the_hosts_key_nor_another_student(lab: Lab) -> None:
    alpha = lab.c.workers["alpha"].data_dir
    key = str(alpha / identity.KEY_FILE)
    left, first = await _run(
        lab, "stu1", "open('/tmp/left-by-stu1', 'w').write('x')\nopen('left-by-stu1', 'w').write('x')\nprint('ok')"
    )
    assert left == "ok\n"
    probe = PROBE.format(port=lab.c.broker.port, data_dir=str(alpha), key=key)
    out, second = await _run(lab, "stu2", probe)
    assert out == "probe:\n", out
    assert _job_row(lab, first)["host"] in ("alpha", "beta") and _job_row(lab, second)["host"] in ("alpha", "beta")


# -- secrecy -------------------------------------------------------------------------------------


async def test_transcripts_do_not_stay_on_the_broker(lab: Lab) -> None:
    """A correct program's hidden-test output is the expected output: once the server read a
    transcript, nobody holding the runner password can read it from the broker."""
    student = lab.student()
    async with _broker(lab) as r:
        before = set(await r.keys(result_key_prefix + "*"))
        job = await _submit(lab, student, SOLUTION)
        assert (await _finished(lab, student, job))["verdict"] == "accepted"
        assert set(await r.keys(result_key_prefix + "*")) - before == set()


async def test_a_hosts_broker_user_reaches_no_other_hosts_plans_answers_or_heartbeat(lab: Lab) -> None:
    """Plans are signed, not encrypted: what keeps one host's broker password (read off that
    machine by a student) from the hidden tests' inputs of every other host's jobs is the broker's
    access list, one user per host, as `labrunner workers add` prints it."""
    alpha_url = lab.c.workers["alpha"].args[1]
    assert alpha_url.startswith("redis://alpha:")
    r = aioredis.Redis.from_url(alpha_url)
    try:
        await r.zrange(broker.host_queue("alpha"), 0, -1)  # its own queue: allowed
        for attempt in (
            r.zrange(broker.host_queue("beta"), 0, -1),
            r.get(job_key_prefix + broker.job_id_for("beta")),
            r.get(result_key_prefix + broker.job_id_for("mallory")),
            r.set(broker.heartbeat_key("beta"), b"forged"),
            r.get("labrunner:heartbeat:beta"),
        ):
            with pytest.raises(NoPermissionError):
                await attempt
    finally:
        await r.aclose()


def _leaks(text: str) -> list[str]:
    marks = ("HIDDEN-IN-7731", "HIDDEN-OUT-4", CODE_MARK, _b64(SECRET_IN), _b64(SECRET_OUT))
    return [mark for mark in marks if mark in text]


async def test_no_secret_in_any_log_or_dashboard(lab: Lab) -> None:
    """Last in the module: after every job above, the hosts' and the server's logs and the
    dashboards carry no hidden input, expected output or student code."""
    student = lab.student()
    job = await _submit(lab, student, SOLUTION)
    assert (await _finished(lab, student, job))["verdict"] == "accepted"
    for worker in lab.c.workers.values():
        if worker.log.exists():
            assert _leaks(worker.log.read_text(errors="replace")) == [], worker.name
    assert _leaks(lab.c.server.log.read_text(errors="replace")) == []
    for viewer in ("adm", "teach"):
        assert _leaks(json.dumps(await _dashboard(lab, viewer))) == [], viewer
