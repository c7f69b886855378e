"""A server in remote mode, a real Redis broker and runner hosts (`labrunner worker` processes),
each host with its own data folder, hence its own key and its own instance label on this machine's
Docker engine. Everything started here is stopped and swept at the end, after a kill -9 too."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from appliance.sandbox_wiring import instance_label
from appliance.settings import load_settings
from runner.sandbox_container import LABEL_INSTANCE
from tests.conftest import DEFAULT_PASSWORD, REPO_ROOT, ApiClient, class_with
from tests.requirements import unavailable
from tests.runner.appliance_process import ApplianceProcess, cli, create_account, free_port, kill9, stop

SERVER_PASSWORD = "server-broker-secret"
RUNNER_PASSWORD = "runner-broker-secret"


def require_redis() -> str:
    path = shutil.which("redis-server")
    if path is None:
        unavailable("redis-server is not installed: run packaging/ensure-redis.sh")
    return path


@dataclass
class Broker:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def url(self, user: str = "runner", password: str = RUNNER_PASSWORD) -> str:
        return f"redis://{user}:{password}@127.0.0.1:{self.port}/0"

    @property
    def server_url(self) -> str:
        return self.url("server", SERVER_PASSWORD)

    def acl(self, args: list[str]) -> None:
        """An ACL command as the server's broker user (who may change users), which must succeed."""
        done = subprocess.run(
            ["redis-cli", "-p", str(self.port), "--user", "server", "--pass", SERVER_PASSWORD, "--no-auth-warning",
             "ACL", *args],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert done.stdout.strip() == "OK", done.stdout


@contextmanager
def redis_broker(folder: Path) -> Iterator[Broker]:
    """redis-server on a free loopback port: no default user, one user for the server and one
    for runner hosts, each with its own password; nothing saved to disk."""
    binary = require_redis()
    folder.mkdir(parents=True, exist_ok=True)
    acl = folder / "users.acl"
    acl.write_text(
        "user default off\n"
        f"user server on >{SERVER_PASSWORD} ~* &* +@all\n"
        f"user runner on >{RUNNER_PASSWORD} ~* &* +@all -@admin\n"
    )
    port = free_port()
    log = folder / "redis.log"
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--aclfile", str(acl), "--save", "",
         "--appendonly", "no", "--dir", str(folder), "--logfile", str(log)],
    )  # fmt: skip
    broker = Broker(port, process, log)
    try:
        deadline = time.monotonic() + 20
        while subprocess.run(
            ["redis-cli", "-p", str(port), "--user", "server", "--pass", SERVER_PASSWORD, "--no-auth-warning", "ping"],
            capture_output=True, text=True, check=False,
        ).stdout.strip() != "PONG":  # fmt: skip
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"redis-server did not start: {log.read_text() if log.exists() else ''}")
            time.sleep(0.1)
        yield broker
    finally:
        process.terminate()
        process.wait(timeout=20)


def public_key(data_dir: Path) -> str:
    out = cli(data_dir, "identity").stdout
    return next(line.split()[-1] for line in out.splitlines() if line.startswith("public key:"))


@dataclass
class WorkerProcess:
    name: str
    data_dir: Path
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.data_dir / "worker.log"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LABRUNNER_")} | self.env
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "appliance", "--data-dir", str(self.data_dir), "worker", *self.args],
                cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip

    def kill9(self) -> None:
        kill9(self.process)

    def stop(self) -> None:
        stop(self.process, signal.SIGTERM)

    def containers(self) -> list[object]:
        return sandbox_containers(self.data_dir)


def sandbox_containers(data_dir: Path) -> list[object]:
    client = docker.from_env()
    try:
        labels = [f"{LABEL_INSTANCE}={instance_label(data_dir.resolve())}"]
        return client.containers.list(all=True, filters={"label": labels}, sparse=True)
    finally:
        client.close()


def sweep(data_dir: Path) -> None:
    """Remove whatever a killed host left on the engine."""
    for container in sandbox_containers(data_dir):
        container.remove(force=True)  # type: ignore[attr-defined]


@dataclass
class Cluster:
    root: Path
    broker: Broker
    server: ApplianceProcess
    server_key: str
    workers: dict[str, WorkerProcess] = field(default_factory=dict)

    def add_worker(
        self,
        name: str,
        *,
        region: str = "default",
        slots: int = 2,
        register: bool = True,
        url: str | None = None,
        env: dict[str, str] | None = None,
        start: bool = True,
    ) -> WorkerProcess:
        data_dir = self.root / f"host-{name}"
        data_dir.mkdir(parents=True, exist_ok=True)
        if register:
            added = cli(self.server.data_dir, "workers", "add", name, public_key(data_dir)).stdout
            # The host's own broker user, as `workers add` prints it for Redis's ACL file.
            rule = next(line.split() for line in added.splitlines() if line.startswith("  user "))
            self.broker.acl(["SETUSER", *rule[1:]])
            url = url or self.broker.url(name, rule[3].removeprefix(">"))
        args = ["--connect", url or self.broker.url(), "--server-key", self.server_key, "--name", name,
                "--region", region, "--slots", str(slots)]  # fmt: skip
        worker = WorkerProcess(name, data_dir, args, {"LABRUNNER_WORKER_HEARTBEAT_S": "0.5", **(env or {})})
        self.workers[name] = worker
        if start:
            worker.start()
        return worker


SERVER_ENV_FAST = {
    # Tests wait seconds, not the production defaults, for a lost host.
    "LABRUNNER_RUNNER_HOST_LOST_AFTER_S": "3",
    "LABRUNNER_WORKER_HEARTBEAT_S": "0.5",
}


@contextmanager
def cluster(root: Path, accounts: dict[str, str], env: dict[str, str] | None = None) -> Iterator[Cluster]:
    """A remote-mode server on the broker, with `accounts` ({username: role}) made; add hosts with
    `add_worker`. Everything stops, and every host's containers go, at the end."""
    with redis_broker(root / "redis") as broker:
        data_dir = root / "server"
        for username, role in accounts.items():
            create_account(data_dir, role, username)
        server_env = {
            "LABRUNNER_RUNNER_MODE": "remote",
            "LABRUNNER_RUNNER_BROKER_URL": broker.server_url,
            **SERVER_ENV_FAST,
            **(env or {}),
        }
        server = ApplianceProcess(data_dir, free_port(), env=server_env)
        running = Cluster(root, broker, server, public_key(data_dir))
        server.start()
        try:
            yield running
        finally:
            server.stop()
            for worker in running.workers.values():
                worker.stop()
                sweep(worker.data_dir)


# -- a classroom on the cluster, its jobs as the server stored them, and an engine the test can cut --


async def logged_in(url: str, username: str) -> ApiClient:
    """A client of an account made by `cluster`, logged in, the current legal texts accepted."""
    client = ApiClient(url)
    reply = await client.login(username, DEFAULT_PASSWORD)
    assert reply.status == 200, reply
    if reply.json["user"]["pending_legal"]:
        versions = {
            f"accept_{kind}": (await client.get(f"/api/legal/{kind}")).json["version"] for kind in ("terms", "privacy")
        }
        accepted = await client.post("/api/me/accept-legal", json=versions)
        assert accepted.status == 200, accepted
    me = await client.get("/api/me")
    client.user, client.username, client.password = me.json, username, DEFAULT_PASSWORD
    return client


@dataclass
class Classroom:
    teacher: ApiClient
    students: dict[str, ApiClient]
    problem_id: int

    async def submit(self, student: str, code: str) -> int:
        reply = await self.students[student].post(
            f"/api/problems/{self.problem_id}/submissions", json={"language": "python", "code": code}
        )
        assert reply.status == 202, reply
        return int(reply.json["id"])

    async def wait_done(self, student: str, job_id: int, timeout_s: float = 180) -> dict[str, Any]:
        """The submission once finished (done or failed)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            reply = await self.students[student].get(f"/api/submissions/{job_id}", params={"wait": "20"})
            assert reply.status == 200, reply
            if reply.json["status"] in ("done", "failed"):
                return dict(reply.json)
        raise AssertionError(f"submission {job_id} did not finish within {timeout_s}s")

    async def close(self) -> None:
        for client in (self.teacher, *self.students.values()):
            await client.close()


@asynccontextmanager
async def classroom(
    running: Cluster, teacher: str, students: list[str], problem: dict[str, Any]
) -> AsyncIterator[Classroom]:
    """`teacher`'s class, joined by `students`, with `problem` assigned to it (accounts from `cluster`)."""
    room = Classroom(await logged_in(running.server.url, teacher), {}, 0)
    try:
        for name in students:
            room.students[name] = await logged_in(running.server.url, name)
        klass = await class_with(room.teacher, list(room.students.values()))
        made = await room.teacher.post("/api/problems", json={**problem, "classes": [klass["id"]]})
        assert made.status == 201, made
        room.problem_id = int(made.json["id"])
        yield room
    finally:
        await room.close()


@dataclass(frozen=True)
class StoredJob:
    status: str
    verdict: str | None
    host: str | None
    test_rows: int  # job_tests rows: one set per grading


def stored_jobs(server: ApplianceProcess) -> dict[int, StoredJob]:
    """Every job as the server's SQLite file holds it, read by a separate connection."""
    db = sqlite3.connect(f"file:{server.data_dir / 'labrunner.sqlite3'}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT id, status, verdict, host FROM jobs").fetchall()
        tests = dict(db.execute("SELECT job_id, COUNT(*) FROM job_tests GROUP BY job_id").fetchall())
    finally:
        db.close()
    return {job_id: StoredJob(status, verdict, host, tests.get(job_id, 0)) for job_id, status, verdict, host in rows}


async def runner_picture(admin: ApiClient) -> dict[str, Any]:
    """The server's describe of its runner: hosts (state, busy, ...) and refused_hosts."""
    reply = await admin.get("/api/admin/stats")
    assert reply.status == 200, reply
    return dict(reply.json["runner"])


async def host_row(admin: ApiClient, name: str) -> dict[str, Any] | None:
    return next((row for row in (await runner_picture(admin))["hosts"] if row["name"] == name), None)


async def wait_for_host(
    admin: ApiClient, name: str, check: Callable[[dict[str, Any]], bool], timeout_s: float = 60
) -> dict[str, Any]:
    """The host's row in the server's describe once `check` holds for it."""
    deadline = time.monotonic() + timeout_s
    row = None
    while time.monotonic() < deadline:
        row = await host_row(admin, name)
        if row is not None and check(row):
            return row
        await asyncio.sleep(0.2)
    raise AssertionError(f"host {name} never reached the state looked for; last seen as {row}")


async def finished(client: ApiClient, job_id: int, kind: str = "submissions", tries: int = 6) -> dict[str, Any]:
    """The job's JSON once it is done (or failed), waiting up to `tries` long polls of 30 s."""
    for _ in range(tries):
        reply = await client.get(f"/api/{kind}/{job_id}", params={"wait": "30"})
        assert reply.status == 200, reply
        if reply.json["status"] in ("done", "failed"):
            return dict(reply.json)
    raise AssertionError(f"job {job_id} not done: {reply.json}")


def server_jobs(server: ApplianceProcess) -> list[sqlite3.Row]:
    """The server's jobs table, read beside the running server: who, what, where, when."""
    conn = sqlite3.connect(f"file:{load_settings(data_dir=server.data_dir, environ={}).db_path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(
            "SELECT j.id, j.kind, u.username, j.priority, j.status, j.host, j.started_at, j.rejudge_of"
            " FROM jobs j JOIN users u ON u.id = j.user_id ORDER BY j.id"
        ).fetchall()
    finally:
        conn.close()
