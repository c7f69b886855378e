"""Where and in which order runner hosts get jobs: the SQLite queue's priorities hold across hosts
(staff, then students, then rejudges), a class's or a user's preferred region is where its jobs go
while a host there is up (the user's own wins; with none up, anywhere), and a student's jobs stay
on the host holding their warm sandbox while it has room."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.conftest import ApiClient, class_with, problem_for
from tests.runner.appliance_process import cli
from tests.scale.cluster import Cluster, cluster, finished, logged_in, server_jobs

# Runs get a time limit long enough for the sleeping programs that keep a host busy.
ENV = {"LABRUNNER_DEFAULT_TIME_LIMIT_MS": "10000"}


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"waited {timeout_s} s for {what}"
        await asyncio.sleep(0.2)


async def hosts(admin: ApiClient) -> dict[str, dict[str, Any]]:
    """The server's view of its runner hosts (the admin dashboard's)."""
    picture = await admin.get("/api/dashboard")
    assert picture.status == 200, picture
    return {host["name"]: host for host in picture.json["runner"]["hosts"]}


async def all_up(admin: ApiClient, c: Cluster) -> None:
    async def check() -> bool:
        seen = await hosts(admin)
        return all(seen.get(name, {}).get("state") == "up" for name in c.workers)

    await until(check, "every host to be up")


async def placed_on(admin: ApiClient, name: str, count: int) -> None:
    async def check() -> bool:
        return (await hosts(admin)).get(name, {}).get("placed") == count

    await until(check, f"{count} job(s) placed on {name}")


async def run(client: ApiClient, code: str) -> int:
    posted = await client.post("/api/runs", json={"language": "python", "code": code, "stdin": ""})
    assert posted.status == 202, posted
    return int(posted.json["id"])


async def ran_on(c: Cluster, client: ApiClient, job_id: int) -> str:
    """The host that ran a run, once it is done."""
    assert (await finished(client, job_id, "runs"))["status"] == "done"
    return next(str(row["host"]) for row in server_jobs(c.server) if row["id"] == job_id)


async def test_priorities_hold_across_hosts(tmp_path: Path, sandbox_ready: None) -> None:
    accounts = {"root": "admin", "teach": "teacher", "sam1": "student", "sam2": "student", "sam3": "student"}
    with cluster(tmp_path, accounts, ENV) as c:
        c.add_worker("solo", slots=1)
        admin, teacher, s1, s2, s3 = [await logged_in(c.server.url, name) for name in accounts]
        try:
            await all_up(admin, c)
            klass = await class_with(teacher, [s1, s2])
            problem = await problem_for(teacher, klass["id"], "Echo", {"stdin": "hi\n", "expected_stdout": "hi\n"})
            url = f"/api/problems/{problem}/submissions"
            first = await s1.post(url, json={"language": "python", "code": "print(input())"})
            assert (await finished(s1, first.json["id"]))["verdict"] == "accepted"  # what the rejudge re-runs

            slow = await run(s3, "import time\ntime.sleep(6)\nprint('slow')")
            await placed_on(admin, "solo", 1)
            queued = [
                (await s1.post(url, json={"language": "python", "code": "print(input())  # again"})).json["id"],
                (await s2.post(url, json={"language": "python", "code": "print(input())"})).json["id"],
            ]
            rejudge = await teacher.post(f"/api/problems/{problem}/rejudge")
            assert rejudge.status == 202 and rejudge.json["rejudges"], rejudge
            staff = await run(teacher, "print('staff')")
            # Everything was queued while the slow job held the only slot.
            assert {row["id"]: row["status"] for row in server_jobs(c.server)}[slow] == "running"

            assert (await finished(teacher, staff, "runs"))["status"] == "done"
            for job_id in [*queued, *rejudge.json["rejudges"]]:
                assert (await finished(teacher, job_id))["status"] == "done"
        finally:
            for client in (admin, teacher, s1, s2, s3):
                await client.close()
        rows = {row["id"]: row for row in server_jobs(c.server)}
    later = [rows[job_id] for job_id in (staff, *queued, *rejudge.json["rejudges"])]
    assert all(row["host"] == "solo" for row in later)
    order = [row["kind"] for row in sorted(later, key=lambda row: row["started_at"])]
    assert order == ["run"] + ["submission"] * len(queued) + ["rejudge"] * len(rejudge.json["rejudges"]), order
    assert min(row["started_at"] for row in later) >= rows[slow]["started_at"]


async def test_jobs_go_to_the_preferred_region_and_fall_back_when_it_is_down(
    tmp_path: Path, sandbox_ready: None
) -> None:
    accounts = {"root": "admin", "teach": "teacher", "sam1": "student", "sam2": "student"}
    with cluster(tmp_path, accounts, ENV) as c:
        # Named so that, without a region, the least-loaded rule's tie goes to the southern host.
        c.add_worker("a-south", region="south", slots=1)
        c.add_worker("b-north", region="north", slots=1)
        admin, teacher, s1, s2 = [await logged_in(c.server.url, name) for name in accounts]
        try:
            await all_up(admin, c)
            klass = await class_with(teacher, [s1, s2])
            # Set before the class's first job: a student's later jobs follow their warm sandbox.
            cli(c.server.data_dir, "regions", "--class", str(klass["id"]), "north")
            assert [await ran_on(c, s1, await run(s1, f"print({n})")) for n in (2, 3)] == ["b-north"] * 2

            # A user's own region wins over their class's.
            cli(c.server.data_dir, "regions", "--user", "sam2", "south")
            assert [await ran_on(c, s2, await run(s2, f"print({n})")) for n in (4, 5)] == ["a-south"] * 2

            # With the class's region down, its jobs go anywhere rather than wait.
            c.workers["b-north"].stop()

            async def north_stopped() -> bool:
                return (await hosts(admin))["b-north"]["state"] == "stopped"

            await until(north_stopped, "the northern host to be seen stopped")
            assert await ran_on(c, s1, await run(s1, "print(6)")) == "a-south"
        finally:
            for client in (admin, teacher, s1, s2):
                await client.close()


async def test_a_students_jobs_stay_on_the_host_with_their_sandbox_while_it_has_room(
    tmp_path: Path, sandbox_ready: None
) -> None:
    accounts = {"root": "admin", "teach": "teacher", "kim": "student"}
    with cluster(tmp_path, accounts, ENV) as c:
        c.add_worker("alpha", slots=1)
        c.add_worker("beta", slots=1)
        admin, teacher, kim = [await logged_in(c.server.url, name) for name in accounts]
        try:
            await all_up(admin, c)
            # The teacher's slow run takes alpha (the tie's winner), so Kim's first job goes to beta.
            slow = await run(teacher, "import time\ntime.sleep(4)\nprint('slow')")
            await placed_on(admin, "alpha", 1)
            assert await ran_on(c, kim, await run(kim, "print(1)")) == "beta"
            assert await ran_on(c, teacher, slow) == "alpha"

            # Both hosts free: the tie would go to alpha, Kim's warm sandbox keeps her on beta.
            assert [await ran_on(c, kim, await run(kim, f"print({n})")) for n in (2, 3, 4)] == ["beta"] * 3

            # Beta has one slot: two of her jobs at once, and the second goes where there is room.
            pair = [await run(kim, f"import time\ntime.sleep(2)\nprint({n})") for n in (5, 6)]
            assert sorted([await ran_on(c, kim, job_id) for job_id in pair]) == ["alpha", "beta"]
        finally:
            for client in (admin, teacher, kim):
                await client.close()
