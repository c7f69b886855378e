"""Issue 17, what scale-out must show: a class's burst spreads over the runner hosts, and a host
killed mid-job or losing its engine costs no job and grades none twice. Real Redis, real
`labrunner worker` processes, the real Docker engine and the server's real SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.conftest import ApiClient
from tests.engine_forwarder import engine_forwarder
from tests.scale.cluster import (
    Classroom,
    Cluster,
    StoredJob,
    classroom,
    cluster,
    logged_in,
    runner_picture,
    stored_jobs,
    sweep,
    wait_for_host,
)

PROBLEM = {
    "title": "Add",
    "statement": "Print a+b.",
    "language": "python",
    "time_limit_ms": 10000,
    "test_cases": [
        {"name": "one", "stdin": "1 2\n", "expected_stdout": "3\n", "visible": True},
        {"name": "two", "stdin": "5 5\n", "expected_stdout": "10\n", "visible": False},
    ],
}
TESTS_PER_JOB = len(PROBLEM["test_cases"])


def solution(variant: str, *, sleep_s: float, right: bool) -> str:
    """Distinct code per submission (no dedup); a wrong one prints a-b. It sleeps before its
    answer so that it is still running when the test strikes."""
    answer = "a + b" if right else "a - b"
    return f"import time\ntime.sleep({sleep_s})  # {variant}\na, b = map(int, input().split())\nprint({answer})\n"


def verdict(right: bool) -> str:
    return "accepted" if right else "wrong_answer"


def is_up(row: dict[str, object]) -> bool:
    return row["state"] == "up"


async def burst(room: Classroom, tag: str, *, sleep_s: float, rounds: int = 1) -> dict[int, tuple[str, str]]:
    """Every student submits `rounds` times, right and wrong answers mixed: {job id: (student, verdict)}."""
    expected: dict[int, tuple[str, str]] = {}
    for turn in range(rounds):
        for index, student in enumerate(room.students):
            right = (index + turn) % 2 == 0
            job = await room.submit(student, solution(f"{tag} {student} {turn}", sleep_s=sleep_s, right=right))
            expected[job] = (student, verdict(right))
    return expected


async def all_graded_once(room: Classroom, expected: dict[int, tuple[str, str]]) -> None:
    """Each job finished with its right verdict; `stored_jobs` then shows how many gradings."""
    for job, (student, want) in expected.items():
        done = await room.wait_done(student, job)
        assert (done["status"], done["verdict"]) == ("done", want), done


def assert_graded_once(jobs: dict[int, StoredJob], expected: dict[int, tuple[str, str]]) -> None:
    for job, (_, want) in expected.items():
        stored = jobs[job]
        assert (stored.status, stored.verdict, stored.test_rows) == ("done", want, TESTS_PER_JOB), (job, stored)


@asynccontextmanager
async def two_hosts(
    tmp_path: Path, students: list[str], alpha_env: dict[str, str] | None = None
) -> AsyncIterator[tuple[Cluster, ApiClient, Classroom]]:
    """A server with hosts alpha and beta of one slot each, both up, the students in a class with
    PROBLEM, and an admin client to watch the hosts. The server's files stay readable after."""
    accounts = {"teach": "teacher", "admin": "admin", **dict.fromkeys(students, "student")}
    with cluster(tmp_path, accounts) as c:
        c.add_worker("alpha", slots=1, env=alpha_env)
        c.add_worker("beta", slots=1)
        admin = await logged_in(c.server.url, "admin")
        try:
            async with classroom(c, "teach", students, PROBLEM) as room:
                for name in ("alpha", "beta"):
                    await wait_for_host(admin, name, is_up)
                yield c, admin, room
        finally:
            await admin.close()


async def test_a_class_burst_spreads_over_the_hosts_and_runs_each_job_once(tmp_path: Path, sandbox_ready: None) -> None:
    async with two_hosts(tmp_path, [f"stu{i}" for i in range(4)]) as (c, _, room):
        expected = await burst(room, "spread", sleep_s=0.3, rounds=2)
        await all_graded_once(room, expected)
    jobs = stored_jobs(c.server)
    assert_graded_once(jobs, expected)
    # Several users' jobs cannot all stick to one host of one slot: both hosts ran some.
    assert {jobs[job].host for job in expected} == {"alpha", "beta"}, jobs


async def test_a_host_killed_mid_job_loses_it_to_the_other_host_which_grades_it_once(
    tmp_path: Path, sandbox_ready: None
) -> None:
    async with two_hosts(tmp_path, ["stu0", "stu1"]) as (c, admin, room):
        expected = await burst(room, "kill", sleep_s=4)
        # jobs.host is written only at completion: the host running a plan says so in its heartbeat.
        await wait_for_host(admin, "alpha", lambda row: bool(row["busy"]), timeout_s=90)
        victim, survivor = c.workers["alpha"], "beta"
        assert victim.containers(), "the busy host has no sandbox container"
        victim.kill9()
        sweep(victim.data_dir)
        assert victim.containers() == []
        await all_graded_once(room, expected)
        lost = await wait_for_host(admin, victim.name, lambda row: row["state"] == "lost")
        assert lost["busy"] == 1  # its last word: it was running a job when it died
    jobs = stored_jobs(c.server)
    assert_graded_once(jobs, expected)
    # The killed host's job was run again, and only the survivor's transcripts were graded.
    assert {jobs[job].host for job in expected} == {survivor}, jobs
    assert f"moved off runner host {victim.name}: the host is lost" in c.server.log.read_text()


async def test_a_host_whose_engine_goes_away_loses_its_jobs_and_takes_jobs_again_when_it_is_back(
    tmp_path: Path, sandbox_ready: None
) -> None:
    students = [f"stu{i}" for i in range(4)]
    with engine_forwarder() as engine:
        async with two_hosts(tmp_path, students, {"DOCKER_HOST": engine.docker_host}) as (c, admin, room):
            expected = await burst(room, "cut", sleep_s=3)
            await wait_for_host(admin, "alpha", lambda row: bool(row["busy"]), timeout_s=90)
            engine.cut()
            # A transcript finished before the cut may still be graded from alpha; the jobs not
            # done a moment later can only finish elsewhere.
            await asyncio.sleep(1)
            pending = {job for job, stored in stored_jobs(c.server).items() if stored.status != "done"}
            assert pending, "every job finished before the engine was cut"
            await wait_for_host(admin, "alpha", lambda row: row["state"] == "engine_down")
            await all_graded_once(room, expected)
            picture = await runner_picture(admin)
            assert {row["name"]: row["state"] for row in picture["hosts"]} == {
                "alpha": "engine_down",
                "beta": "up",
            }, picture
            cut_jobs = stored_jobs(c.server)

            engine.restore()
            await wait_for_host(admin, "alpha", is_up)
            again = await burst(room, "back", sleep_s=1)
            await all_graded_once(room, again)
    jobs = stored_jobs(c.server)
    assert_graded_once(jobs, expected | again)
    assert {cut_jobs[job].host for job in pending} == {"beta"}, cut_jobs
    assert "moved off runner host alpha" in c.server.log.read_text()
    # Back, it is a host like any other: with one slot each, a burst of four needs both.
    assert "alpha" in {jobs[job].host for job in again}, jobs
