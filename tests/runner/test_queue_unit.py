"""The queue and worker against a real SQLite file, with a scripted executor (unit level: no Docker)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from appliance import migrations
from appliance.accounts import Accounts, User
from appliance.blobs import BlobStore
from appliance.clock import db_epoch
from appliance.db import Database, open_database
from appliance.errors import RateLimited, Unavailable
from appliance.jobs import queueing
from appliance.settings import Settings, load_settings
from appliance.store import jobs as job_store
from appliance.store import problems as problem_store
from appliance.store.queue import SqliteJobStore
from runner.executor import CompileOutcome, ExecRequest, ExecResult, InfraError, TestOutcome
from runner.worker import Runner, WorkerSettings


class ScriptedExecutor:
    """Answers each request with the next scripted reply: an ExecResult factory or an exception."""

    def __init__(self, replies: list[object]) -> None:
        self.replies = replies
        self.requests: list[ExecRequest] = []
        self.closed = False

    async def execute(self, request: ExecRequest) -> ExecResult:
        self.requests.append(request)
        reply = self.replies.pop(0) if self.replies else _echo
        if isinstance(reply, Exception):
            raise reply
        return reply(request)  # type: ignore[operator]

    async def close(self) -> None:
        self.closed = True


def _echo(request: ExecRequest) -> ExecResult:
    return ExecResult(None, [TestOutcome(t.name, "ok", 0, t.stdin, b"", 5) for t in request.tests])


def _crash(request: ExecRequest) -> ExecResult:
    return ExecResult(None, [TestOutcome(t.name, "runtime_error", 1, b"", b"Traceback", 5) for t in request.tests])


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[Settings, Database, BlobStore, User]]:
    settings = load_settings(data_dir=tmp_path, environ={}, overrides={"infra_backoff_s": 0.01})
    migrations.migrate(settings.db_path, settings.backup_dir)
    db = open_database(settings.database_location)
    await db.open()
    user = await Accounts(db, settings).create_by(None, "teacher1", "password123", "teacher", None)
    yield settings, db, BlobStore(settings.blob_dir), user
    await db.close()


async def _problem(db: Database, owner: int, tests: list[tuple[str, str]]) -> int:
    fields = {
        "title": "Echo",
        "statement": "",
        "language": "python",
        "time_limit_ms": 1000,
        "memory_limit_mb": 64,
        "comparison": "trailing_whitespace",
        "tolerance": 0.0,
    }
    cases = [
        {"name": f"t{i}", "stdin": i_, "expected_stdout": o, "visibility": "hidden", "weight": 1.0}
        for i, (i_, o) in enumerate(tests)
    ]
    return await problem_store.create(db, owner, fields, [], cases)


async def _enqueue_full(
    db: Database, user: User, problem_id: int | None, code: str = "print()", **kw: object
) -> tuple[int, bool]:
    """Queue a job; returns (job id, deduplicated)."""
    args: dict[str, object] = {
        "kind": "submission" if problem_id else "run",
        "user_id": user.id,
        "problem_id": problem_id,
        "language": "python",
        "code": code,
        "code_hash": code,
        "stdin": "",
        "priority": 20,
        "dedup_window_s": None,
        "in_flight_cap": None,
        "queue_max": None,
    }
    args.update(kw)
    return await queueing.enqueue(db, **args)  # type: ignore[arg-type]


async def _enqueue(db: Database, user: User, problem_id: int | None, code: str = "print()", **kw: object) -> int:
    job_id, _ = await _enqueue_full(db, user, problem_id, code, **kw)
    return job_id


async def _drain(runner: Runner, db: Database, job_ids: list[int], limit_s: float = 10.0) -> None:
    async with asyncio.timeout(limit_s):
        while True:
            rows = [await job_store.get(db, j) for j in job_ids]
            if all(r is not None and r["status"] in ("done", "failed") for r in rows):
                return
            runner.notify()
            await asyncio.sleep(0.02)


def _runner(db: Database, blobs: BlobStore, executor: ScriptedExecutor, probe: object = None, **kw: object) -> Runner:
    settings = WorkerSettings(**{"workers": 2, "infra_backoff_s": 0.01, "poll_interval_s": 0.05, **kw})  # type: ignore[arg-type]
    store = SqliteJobStore(db, 1000, 64)

    async def factory() -> ScriptedExecutor:
        return executor

    extra = {"engine_probe": probe} if probe else {}
    return Runner(store, blobs, factory, settings, **extra)  # type: ignore[arg-type]


def _shout(request: ExecRequest) -> ExecResult:
    return ExecResult(None, [TestOutcome(t.name, "ok", 0, t.stdin.upper(), b"", 5) for t in request.tests])


async def test_grades_against_expected_outputs_outside_the_sandbox(env) -> None:  # type: ignore[no-untyped-def]
    _, db, blobs, user = env
    # The program prints its input in capitals: right on the first test, wrong on the second.
    # Each expected output is text found in nothing else the job holds.
    expected = ("TIC-7F3A", "TOE-7F3A")
    problem = await _problem(db, user.id, [("tic-7f3a\n", f"{expected[0]}\n"), ("tac-7f3a\n", f"{expected[1]}\n")])
    job = await _enqueue(db, user, problem)
    executor = ScriptedExecutor([_shout])
    runner = _runner(db, blobs, executor)
    await runner.start()
    try:
        await _drain(runner, db, [job])
    finally:
        await runner.stop()
    row = await job_store.get(db, job)
    assert row["status"] == "done" and row["verdict"] == "wrong_answer" and row["score"] == 50.0
    # Expected outputs never travel to the executor: their bytes are in no field of the request.
    sent = executor.requests[0]
    assert [t.stdin for t in sent.tests] == [b"tic-7f3a\n", b"tac-7f3a\n"]
    sent_bytes = repr(sent).encode() + sent.code.encode() + b"".join(t.stdin for t in sent.tests)
    sent_bytes += b"".join(f.data for f in sent.files)
    for output in expected:
        assert output.encode() not in sent_bytes, f"{output!r} was sent to the executor"
    tests = await job_store.tests_full(db, job)
    assert [t["verdict"] for t in tests] == ["accepted", "wrong_answer"]


async def test_user_failure_is_a_result_and_never_retried(env) -> None:  # type: ignore[no-untyped-def]
    _, db, blobs, user = env
    job = await _enqueue(db, user, None)
    executor = ScriptedExecutor([_crash])
    runner = _runner(db, blobs, executor)
    await runner.start()
    try:
        await _drain(runner, db, [job])
    finally:
        await runner.stop()
    row = await job_store.get(db, job)
    assert (row["status"], row["verdict"], row["infra_attempts"]) == ("done", "runtime_error", 0)
    assert len(executor.requests) == 1


async def test_infra_failures_retry_with_backoff_then_give_up(env) -> None:  # type: ignore[no-untyped-def]
    _, db, blobs, user = env
    retried = await _enqueue(db, user, None, code="a")
    executor = ScriptedExecutor([InfraError("sandbox_lost", "gone"), InfraError("sandbox_lost", "gone again")])
    runner = _runner(db, blobs, executor, infra_max_attempts=3)
    await runner.start()
    try:
        await _drain(runner, db, [retried])
        row = await job_store.get(db, retried)
        assert (row["status"], row["verdict"], row["infra_attempts"]) == ("done", "accepted", 2)
        assert [e["code"] for e in json.loads(row["infra_log"])] == ["sandbox_lost", "sandbox_lost"]

        doomed = await _enqueue(db, user, None, code="b")
        executor.replies = [InfraError("sandbox_lost", "x")] * 3
        await _drain(runner, db, [doomed])
        row = await job_store.get(db, doomed)
        assert (row["status"], row["infra_attempts"]) == ("failed", 3)
    finally:
        await runner.stop()


@pytest.mark.parametrize("first_error", ["engine_unavailable", "sandbox_lost"])
async def test_engine_outage_pauses_claims_instead_of_burning_retries(env, first_error: str) -> None:  # type: ignore[no-untyped-def]
    _, db, blobs, user = env
    jobs = [await _enqueue(db, user, None, code=str(i)) for i in range(4)]
    executor = ScriptedExecutor([InfraError(first_error, "down")])
    probes: list[bool] = [False, False, True]

    async def probe() -> bool:
        return probes.pop(0) if probes else True

    runner = _runner(db, blobs, executor, probe, workers=2, engine_retry_s=0.1, infra_max_attempts=2)
    await runner.start()
    try:
        await _drain(runner, db, jobs)
    finally:
        await runner.stop()
    rows = [await job_store.get(db, j) for j in jobs]
    assert all(r["status"] == "done" for r in rows)
    # Only the job that discovered the outage paid a retry; the rest waited for the probe.
    assert sum(r["infra_attempts"] for r in rows) == 1
    assert not probes


async def test_dedup_caps_and_full_queue(env) -> None:  # type: ignore[no-untyped-def]
    _, db, _, user = env
    problem = await _problem(db, user.id, [("", "")])
    first = await _enqueue(db, user, problem, code="same", dedup_window_s=30.0)
    again, dedup = await _enqueue_full(db, user, problem, code="same", dedup_window_s=30.0)
    assert (again, dedup) == (first, True)
    with pytest.raises(RateLimited) as capped:
        await _enqueue(db, user, problem, code="other", in_flight_cap=1)
    assert capped.value.code == "too_many_jobs"
    with pytest.raises(Unavailable) as full:
        await _enqueue(db, user, problem, code="third", queue_max=1)
    assert full.value.code == "queue_full"
    assert await db.fetchval("SELECT COUNT(*) FROM jobs") == 1


async def test_priority_then_age_and_fenced_leases(env) -> None:  # type: ignore[no-untyped-def]
    _, db, _, user = env
    store = SqliteJobStore(db, 1000, 64)
    student = await _enqueue(db, user, None, code="s", priority=20)
    rejudge = await _enqueue(db, user, None, code="r", priority=30)
    staff = await _enqueue(db, user, None, code="t", priority=10)
    order = [(await store.claim("w", 60)).id for _ in range(3)]  # type: ignore[union-attr]
    assert order == [staff, student, rejudge]
    assert await store.claim("w", 60) is None
    # A worker that lost its lease cannot overwrite the job.
    from runner.queue import JobResult

    assert not await store.complete(staff, "someone-else", JobResult("accepted", None, None, []))


async def test_restart_requeues_running_jobs_as_infra_retry(env) -> None:  # type: ignore[no-untyped-def]
    _, db, blobs, user = env
    store = SqliteJobStore(db, 1000, 64)
    job = await _enqueue(db, user, None)
    assert (await store.claim("dead-process", 60)).id == job  # type: ignore[union-attr]
    runner = _runner(db, blobs, ScriptedExecutor([]))
    await runner.start()
    try:
        await _drain(runner, db, [job])
    finally:
        await runner.stop()
    row = await job_store.get(db, job)
    assert (row["status"], row["infra_attempts"]) == ("done", 1)
    assert json.loads(row["infra_log"])[0]["code"] == "appliance_restarted"


async def test_long_output_is_cut_and_kept_whole_in_the_blob_store(env) -> None:  # type: ignore[no-untyped-def]
    _, db, blobs, user = env
    flood = b"x" * 300_000 + "é".encode() * 10

    def loud(request: ExecRequest) -> ExecResult:
        return ExecResult(CompileOutcome(True, "", 1), [TestOutcome("run", "ok", 0, flood, b"\xff\xfe bad", 3)])

    job = await _enqueue(db, user, None)
    runner = _runner(db, blobs, ScriptedExecutor([loud]), result_max_bytes=65_536)
    await runner.start()
    try:
        await _drain(runner, db, [job])
    finally:
        await runner.stop()
    (test,) = await job_store.tests_full(db, job)
    assert len(test["stdout"].encode()) < 65_536 and "output cut here" in test["stdout"]
    assert test["truncated"] == 1
    assert blobs.get(test["stdout_blob"]) == flood
    assert test["stderr"] == "\ufffd\ufffd bad"


async def test_executor_is_recycled_after_n_jobs_and_closed(env) -> None:  # type: ignore[no-untyped-def]
    _, db, blobs, user = env
    made: list[ScriptedExecutor] = []

    async def factory() -> ScriptedExecutor:
        made.append(ScriptedExecutor([]))
        return made[-1]

    settings = WorkerSettings(workers=1, poll_interval_s=0.05, recycle_after_jobs=2)
    runner = Runner(SqliteJobStore(db, 1000, 64), blobs, factory, settings)  # type: ignore[arg-type]
    jobs = [await _enqueue(db, user, None, code=str(i)) for i in range(5)]
    await runner.start()
    try:
        await _drain(runner, db, jobs)
    finally:
        await runner.stop()
    assert [len(e.requests) for e in made] == [2, 2, 1]
    assert all(e.closed for e in made)


async def test_a_changed_problem_is_not_answered_with_an_old_result(env) -> None:  # type: ignore[no-untyped-def]
    _, db, _, user = env
    problem = await _problem(db, user.id, [("", "")])
    first = await _enqueue(db, user, problem, code="same", dedup_window_s=30.0)
    # The teacher fixes the tests a moment later.
    await db.execute("UPDATE problems SET updated_at = ?", (db_epoch(time.time() + 1),))
    await asyncio.sleep(1.1)
    again, dedup = await _enqueue_full(db, user, problem, code="same", dedup_window_s=30.0)
    assert (dedup, again != first) == (False, True)


async def test_a_result_graded_against_replaced_tests_is_run_again(env) -> None:  # type: ignore[no-untyped-def]
    _, db, _, user = env
    from runner.queue import JobResult

    store = SqliteJobStore(db, 1000, 64)
    problem = await _problem(db, user.id, [("1", "1")])
    job = await _enqueue(db, user, problem)
    assert (await store.claim("w", 60)).id == job  # type: ignore[union-attr]
    # The teacher replaces the tests while the job runs: the new test may reuse the old test's id.
    new_tests = [{"name": "t", "stdin": "2", "expected_stdout": "2", "visibility": "visible", "weight": 1.0}]
    await problem_store.update(db, problem, {}, None, new_tests)
    assert not await store.complete(job, "w", JobResult("accepted", 100.0, None, []))
    row = await job_store.get(db, job)
    assert (row["status"], row["infra_attempts"]) == ("queued", 0)
    assert (await store.claim("w", 60)).id == job  # type: ignore[union-attr]
    assert await store.complete(job, "w", JobResult("accepted", 100.0, None, []))


# --- issue 9: a fair share of the workers, a quota and an expiry for full outputs -----------------


async def _student(db: Database, settings: Settings, name: str) -> User:
    return await Accounts(db, settings).create_by(None, name, "password123", "student", "2000-01-01")


async def test_one_student_never_holds_more_than_a_fair_share_of_workers(env) -> None:  # type: ignore[no-untyped-def]
    settings, db, blobs, _ = env
    alice, bob = await _student(db, settings, "alice"), await _student(db, settings, "bob")
    running: dict[str, int] = {"alice": 0, "bob": 0}
    most = {"alice": 0, "bob": 0}
    started: list[str] = []
    first_started = asyncio.Event()

    class SlowExecutor(ScriptedExecutor):
        async def execute(self, request: ExecRequest) -> ExecResult:
            owner = request.code.split(":")[0]
            started.append(request.code)
            first_started.set()
            running[owner] += 1
            most[owner] = max(most[owner], running[owner])
            await asyncio.sleep(0.4)  # a slow test running to its wall limit
            running[owner] -= 1
            return _echo(request)

    runner = _runner(db, blobs, SlowExecutor([]), workers=2, max_running_per_user=1)
    await runner.start()
    try:
        slow = [await _enqueue(db, alice, None, code=f"alice:{i}") for i in range(3)]
        runner.notify()
        await asyncio.wait_for(first_started.wait(), 5)
        quick = await _enqueue(db, bob, None, code="bob:print('hi')")
        runner.notify()
        await _drain(runner, db, [*slow, quick])
    finally:
        await runner.stop()
    # Bob's job went to the worker Alice could not take, ahead of her second and third jobs.
    assert started == ["alice:0", "bob:print('hi')", "alice:1", "alice:2"], started
    assert most == {"alice": 1, "bob": 1}


async def test_fair_claims_keep_priority_classes_and_treat_rejudges_as_one_user(env) -> None:  # type: ignore[no-untyped-def]
    settings, db, _, teacher = env
    alice, bob = await _student(db, settings, "alice"), await _student(db, settings, "bob")
    store = SqliteJobStore(db, 1000, 64)
    problem = await _problem(db, teacher.id, [("", "")])
    busy = await _enqueue(db, alice, problem, code="a1")
    assert (await store.claim("w0", 60, 1)).id == busy  # type: ignore[union-attr]
    rejudge_a = await _enqueue(db, alice, problem, code="r-a", kind="rejudge", priority=30)
    rejudge_b = await _enqueue(db, bob, problem, code="r-b", kind="rejudge", priority=30)
    alice_again = await _enqueue(db, alice, problem, code="a2")
    bob_first = await _enqueue(db, bob, problem, code="b1")
    staff = [await _enqueue(db, teacher, problem, code=f"t{i}", priority=10) for i in range(2)]
    order = []
    while (job := await store.claim("w", 60, 1)) is not None:
        order.append(job.id)
    # Staff first and exempt; then Bob (Alice already holds her share); then one rejudge — a
    # rejudge is system work, not Alice's — and no second one while it runs.
    assert order == [*staff, bob_first, rejudge_a]
    queued = {r["id"] for r in await db.fetchall("SELECT id FROM jobs WHERE status = 'queued'")}
    assert queued == {alice_again, rejudge_b}
    # With room for two each, the user with fewer running jobs goes first, however new their job.
    carol = await _enqueue(db, await _student(db, settings, "carol"), problem, code="c1")
    order = [job.id for _ in range(4) if (job := await store.claim("w", 60, 2)) is not None]
    assert order == [carol, alice_again, rejudge_b]


def _flood(request: ExecRequest) -> ExecResult:
    # Different bytes for each job (its code), far past the stored result's share.
    data = request.code.encode() * (300_000 // len(request.code))
    return ExecResult(None, [TestOutcome("run", "ok", 0, data, b"", 3)])


def _blob_files(blobs: BlobStore) -> set[str]:
    return set(blobs.digests())


async def test_full_outputs_past_the_users_quota_are_not_kept_and_say_so(env) -> None:  # type: ignore[no-untyped-def]
    settings, db, blobs, teacher = env
    alice = await _student(db, settings, "alice")
    runner = _runner(db, blobs, ScriptedExecutor([_flood, _flood, _flood]), full_output_max_bytes_per_user=400_000)
    await runner.start()
    try:
        first = await _enqueue(db, alice, None, code="first job ")
        await _drain(runner, db, [first])
        (kept,) = await job_store.tests_full(db, first)
        assert kept["stdout_blob"] is not None and "not kept" not in kept["stdout"]
        before = _blob_files(blobs)

        second = await _enqueue(db, alice, None, code="second job")  # would take Alice past 400 kB
        await _drain(runner, db, [second])
        row = await job_store.get(db, second)
        assert (row["status"], row["verdict"]) == ("done", "accepted")
        (dropped,) = await job_store.tests_full(db, second)
        assert dropped["stdout_blob"] is None and dropped["truncated"] == 1
        assert "output cut here" in dropped["stdout"] and "full output was not kept" in dropped["stdout"]
        assert len(dropped["stdout"].encode()) < 65_536
        assert _blob_files(blobs) == before  # not one byte written for it

        other = await _enqueue(db, teacher, None, code="someone else")  # another user's quota is untouched
        await _drain(runner, db, [other])
        (theirs,) = await job_store.tests_full(db, other)
        assert theirs["stdout_blob"] is not None
    finally:
        await runner.stop()


async def test_expired_full_outputs_and_their_unshared_blobs_are_purged(env) -> None:  # type: ignore[no-untyped-def]
    import os
    import time

    from appliance import maintenance
    from appliance.jobs import output_expiry
    from appliance.scheduler import Scheduler
    from runner.queue import JobResult, TestResult

    settings, db, blobs, user = env
    store = SqliteJobStore(db, 1000, 64)
    only_old = blobs.put(b"an old result's full output " * 100)
    shared_file = blobs.put(b"bytes an uploaded file also holds " * 100)
    shared_result = blobs.put(b"bytes a newer result also printed " * 100)
    just_written = blobs.put(b"bytes a running job has just stored again " * 100)
    now = time.time()
    await db.execute(
        "INSERT INTO files (id, owner_id, name, kind, media_type, size, blob, created_at, expires_at)"
        " VALUES ('f1', ?, 'data.txt', 'text', 'text/plain', 3400, ?, ?, ?)",
        (user.id, shared_file, db_epoch(now), db_epoch(now + 86400)),
    )

    def result(*streams: tuple[str | None, str | None]) -> JobResult:
        tests = [
            TestResult(i, None, f"t{i}", "accepted", 0, None, 5, "cut…", "", True, out, err, full_output_bytes=3000)
            for i, (out, err) in enumerate(streams, start=1)
        ]
        return JobResult("accepted", None, None, tests)

    old = await _enqueue(db, user, None, code="old")
    assert (await store.claim("w", 60)).id == old  # type: ignore[union-attr]
    assert await store.complete(old, "w", result((only_old, shared_file), (shared_result, None), (just_written, None)))
    new = await _enqueue(db, user, None, code="new")
    assert (await store.claim("w", 60)).id == new  # type: ignore[union-attr]
    assert await store.complete(new, "w", result((shared_result, None)))
    month_ago = now - 30 * 86400
    await db.execute("UPDATE jobs SET finished_at = ? WHERE id = ?", (db_epoch(month_ago), old))
    for digest in (only_old, shared_file, shared_result):
        os.utime(blobs.path_for(digest), (month_ago, month_ago))

    scheduler = Scheduler()
    maintenance.setup_periodic(scheduler)
    assert "purge_expired_outputs" in {p.name for p in scheduler.jobs}
    done = await output_expiry.purge_expired_outputs(db, blobs, settings.full_output_expiry_days)
    assert done == {"tests": 3, "blobs": 1}
    old_tests = await job_store.tests_full(db, old)
    assert [(t["stdout_blob"], t["stderr_blob"], t["stdout"]) for t in old_tests] == [(None, None, "cut…")] * 3
    assert not blobs.exists(only_old)
    # Shared by content: a file, a newer result, and bytes a job stored a moment ago keep theirs.
    assert blobs.exists(shared_file) and blobs.exists(shared_result) and blobs.exists(just_written)
    assert [t["stdout_blob"] for t in await job_store.tests_full(db, new)] == [shared_result]
    assert await store.full_output_bytes(user.id) == 3000  # the old results no longer count
    assert await output_expiry.purge_expired_outputs(db, blobs, settings.full_output_expiry_days) == {
        "tests": 0,
        "blobs": 0,
    }


async def test_only_the_teachers_word_buys_a_submission_the_graphical_wall_time(env) -> None:  # type: ignore[no-untyped-def]
    # An import in dead code makes a program graphical (its pictures are captured), but must not
    # lift the problem's time limit to the graphical wall time; a run (no teacher's limit) and a
    # problem marked graphical get it.
    _, db, blobs, user = env
    code = "if False:\n    import turtle\nprint(input())\n"
    unmarked = await _problem(db, user.id, [("a\n", "a\n")])
    marked = await _problem(db, user.id, [("a\n", "a\n")])
    await db.execute("UPDATE problems SET graphical = 1 WHERE id = ?", (marked,))
    jobs = [await _enqueue(db, user, unmarked, code), await _enqueue(db, user, marked, code + "#")]
    jobs.append(await _enqueue(db, user, None, code + "##"))
    executor = ScriptedExecutor([])
    runner = _runner(db, blobs, executor, workers=1)
    await runner.start()
    try:
        await _drain(runner, db, jobs)
    finally:
        await runner.stop()
    flags = {request.code: (request.graphical, request.graphical_time) for request in executor.requests}
    assert flags == {code: (True, False), code + "#": (True, True), code + "##": (True, True)}


async def test_jobs_run_in_their_users_sandbox_and_hidden_tests_end_it(env) -> None:  # type: ignore[no-untyped-def]
    _, db, blobs, user = env
    problem = await _problem(db, user.id, [("1\n", "1\n")])  # a hidden test
    jobs = [await _enqueue(db, user, problem), await _enqueue(db, user, None, code="print(2)")]
    executor = ScriptedExecutor([_echo, _echo])
    runner = _runner(db, blobs, executor)
    await runner.start()
    try:
        await _drain(runner, db, jobs)
    finally:
        await runner.stop()
    flags = {request.code: (request.owner, request.hidden_tests) for request in executor.requests}
    assert flags == {"print()": (f"user-{user.id}", True), "print(2)": (f"user-{user.id}", False)}
