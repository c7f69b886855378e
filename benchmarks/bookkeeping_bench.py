"""Bookkeeping benchmark (issue 17): does the server's store keep up with ten runner hosts?

Measures two figures in one run on this machine and prints the decision they lead to:

1. The store's ceiling for the server's job bookkeeping, with no sandbox at all, on SQLite and on
   PostgreSQL. On a real data folder (migrations run, a teacher, a class of 30 students, a problem
   of 10 tests of which 3 are hidden), each job takes the server's own code path: queued by
   `appliance.jobs.submit` (what POST /api/problems/{id}/submissions calls), claimed by
   `SqliteJobStore.claim`, its grading spec read, one heartbeat, its outcome shaped by
   `runner.results.shape` and stored by `SqliteJobStore.complete`. The database is the appliance's
   own `Database`, opened as the server opens it: SQLite's file (WAL, one writer), or PostgreSQL
   in a private cluster this benchmark starts (fsync on, synchronous_commit off: the durability
   SQLite's synchronous = NORMAL gives). Concurrent "workers" and enqueuers run in one process, as
   in the server, at rising concurrency until throughput stops rising; the peak is the ceiling.
   Each level starts from a copy of one data folder (and database) that already holds a history of
   finished submissions (`--history`), so levels differ only in concurrency. The writer's busy
   fraction is the share of the time its lock was held (BEGIN IMMEDIATE, or PostgreSQL's advisory
   lock, to COMMIT); the process's CPU per second says whether it got a core of its own on a
   machine shared with other work.
2. One runner host's job rate: this machine (2 cores) running a 10-test Python submission through
   the appliance's DockerExecutor (built as `appliance.sandbox_wiring` builds it, warm sandboxes
   on), in a closed loop of 2 to 4 jobs at a time.

PostgreSQL is needed when SQLite's ceiling is below 5 × the rate of 10 such hosts (headroom for
bursts, reads of pages and the rest of the server's writes). Jobe's figure is DESIGN §8's.

    .venv/bin/python benchmarks/bookkeeping_bench.py [--levels 1,2,4,8,16,32,64] [--seconds 6]
        [--engines sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from appliance import jobs, legal, migrations, problems, roster  # noqa: E402
from appliance.accounts import Accounts, User  # noqa: E402
from appliance.blobs import BlobStore  # noqa: E402
from appliance.classes import create as create_class  # noqa: E402
from appliance.db import Conn, Database, SqliteDatabase  # noqa: E402
from appliance.db.postgres import PgDatabase  # noqa: E402
from appliance.rate_limits import UserRates  # noqa: E402
from appliance.sandbox_wiring import DockerSandbox  # noqa: E402
from appliance.settings import Settings, load_settings  # noqa: E402
from appliance.store import classes as class_store  # noqa: E402
from appliance.store.queue import SqliteJobStore  # noqa: E402
from runner.executor import ExecRequest, ExecResult, Executor, Prewarming, TestInput, TestOutcome  # noqa: E402
from runner.image import expected_ref  # noqa: E402
from runner.queue import SECRECY_HIDDEN, SECRECY_VISIBLE, GradingSpec, GradingTest, JobResult  # noqa: E402
from runner.results import shape  # noqa: E402
from runner.test_order import in_problem_order, run_order  # noqa: E402
from runner.worker import owner_of  # noqa: E402
from tests.pg_cluster import PgCluster, postgres_bindir  # noqa: E402

STUDENTS = 30
TESTS = 10
HIDDEN = 3
PASSWORD = "benchmark-password"
PROGRAM = "a, b = map(int, input().split())\nprint(a + b)"
# Every limit still checked on each submission (its query runs), none ever reached: the ceiling
# is the bookkeeping's, not a class's allowance.
UNREACHED = 1_000_000_000
LIMITS = {
    "queue_max": UNREACHED,
    "max_jobs_in_flight_per_user": UNREACHED,
    "submissions_per_problem_per_hour": UNREACHED,
    "submissions_per_problem_per_minute": UNREACHED,
    "submissions_per_user_per_minute": UNREACHED,
}
# Jobs waiting at most while the writer is saturated: a class of 30 with 3 jobs in flight each.
BACKLOG = 90
HOSTS = 10
MAX_WORKERS = 512
HEADROOM = 5
JOBE_RATE = "11-19 jobs/s"
JOBE_NOTE = "DESIGN §8: hello-world Python, closed loop, 4 clients, this kind of machine (not this run)"


class WriterTiming(Database):
    """Adds up how long the database's one writer is held (write transactions run one at a time
    on both engines)."""

    held_s = 0.0
    transactions = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        # From the lock taken (BEGIN IMMEDIATE; PostgreSQL's advisory lock) to COMMIT: what every
        # other write waits for.
        async with super().transaction() as conn:
            start = time.perf_counter()
            try:
                yield conn
            finally:
                self.held_s += time.perf_counter() - start
                self.transactions += 1


class TimedSqlite(WriterTiming, SqliteDatabase):
    pass


class TimedPostgres(WriterTiming, PgDatabase):
    pass


TimedDatabase = TimedSqlite | TimedPostgres
# The durability the appliance's SQLite has (WAL, synchronous = NORMAL: a commit waits for no
# fsync, a crash loses no committed transaction's consistency): PostgreSQL with fsync on and
# synchronous_commit off.
PG_OPTIONS = "-c listen_addresses='' -c synchronous_commit=off -c max_connections=100"


class Store:
    """Where a level's data lives: the data folder, and for PostgreSQL a database in a private cluster."""

    def __init__(self, engine: str, cluster: PgCluster | None) -> None:
        self.engine = engine
        self.cluster = cluster

    def location(self, folder: Path) -> str:
        return "" if self.cluster is None else self.cluster.url(folder.name.replace("-", "_"))

    def create(self, folder: Path) -> None:
        if self.cluster is not None:
            self.cluster.create_database(folder.name.replace("-", "_"))

    def copy(self, seed: Path, folder: Path) -> None:
        """A copy of the seeded data (blobs, and the SQLite file or the PostgreSQL database)."""
        shutil.copytree(seed, folder)
        if self.cluster is not None:
            self.cluster.create_database(folder.name.replace("-", "_"), template=seed.name.replace("-", "_"))

    def cpu_s(self) -> float:
        return 0.0 if self.cluster is None else cluster_cpu_s(self.cluster.data)

    def open(self, settings: Settings) -> TimedDatabase:
        if self.cluster is None:
            return TimedSqlite(settings.db_path)
        return TimedPostgres(settings.database_url)


@dataclass(frozen=True)
class Classroom:
    teacher: User
    students: list[User]
    problem_id: int


def problem_tests(hidden: int) -> list[dict[str, object]]:
    return [
        {"name": f"t{i}", "stdin": f"{i} {i}\n", "expected_stdout": f"{2 * i}\n", "visible": i < TESTS - hidden}
        for i in range(TESTS)
    ]


async def classroom(db: Database, settings: Settings) -> Classroom:
    """A teacher, a class of 30 students and a problem of 10 tests (3 hidden), made as the server makes them."""
    accounts = Accounts(db, settings)
    teacher = await accounts.create_by(None, "teacher", PASSWORD, "teacher", None)
    klass = await create_class(db, teacher, "Bench class")
    csv = "username,password,birthdate\n" + "".join(f"student{i:02d},{PASSWORD},2008-01-01\n" for i in range(STUDENTS))
    await roster.import_csv(db, accounts, settings, teacher, klass["id"], csv.encode())
    students = [await accounts.get(row["id"]) for row in await class_store.members(db, klass["id"])]
    problem = await problems.create(
        db,
        settings,
        teacher,
        {
            "title": "Sum of two numbers",
            "statement": "Read *a* and *b*; print `a + b`.",
            "language": "python",
            "classes": [klass["id"]],
            "test_cases": problem_tests(HIDDEN),
        },
    )
    return Classroom(teacher, students, problem["id"])


def outcome_of(spec: GradingSpec, n: int) -> ExecResult:
    """What the sandbox would return for submission n: one in four fails its last two tests with
    a traceback, the others pass; tests in the order the runner runs them."""
    failing = n % 4 == 0
    tests = []
    for index in run_order(spec.tests):
        test = spec.tests[index]
        broken = failing and index >= TESTS - 2
        tests.append(
            TestOutcome(
                name=test.name,
                status="runtime_error" if broken else "ok",
                exit_code=1 if broken else 0,
                stdout=b"" if broken else (test.expected_stdout or "").encode(),
                stderr=b'Traceback (most recent call last):\n  File "main.py", line 1\nValueError: bad input\n'
                if broken
                else b"",
                time_ms=18 + index,
            )
        )
    return ExecResult(compile=None, tests=tests)


@dataclass
class Level:
    workers: int
    enqueuers: int
    jobs_per_s: float
    writer_busy: float
    hold_ms: float  # the mean time one write transaction held the writer
    cpu: float  # this process's CPU time per second of the window: 1.0 is one core
    db_cpu: float  # the PostgreSQL server's CPU the same way (0 on SQLite, which runs in-process)

    @property
    def per_core_s(self) -> float:
        """Jobs per second of CPU the process got: the rate a core of its own would allow, while
        the writer is not the limit (other work on a shared machine takes CPU from it)."""
        return self.jobs_per_s / self.cpu if self.cpu else 0.0

    @property
    def writer_bound(self) -> float:
        """Jobs per second with the writer held all the time: the most this code path could get
        out of SQLite's single writer, however much CPU the process had."""
        return self.jobs_per_s / self.writer_busy if self.writer_busy else 0.0


class Bookkeeping:
    """The server's side of every job, driven by `workers` and `enqueuers` coroutines at once."""

    def __init__(self, db: TimedDatabase, blobs: BlobStore, settings: Settings, room: Classroom, tag: str) -> None:
        self.db = db
        self.tag = tag  # in every program's text: no submission is a duplicate of one in the history
        self.blobs = blobs
        self.settings = settings
        self.room = room
        self.store = SqliteJobStore(db, settings.default_time_limit_ms, settings.default_memory_limit_mb, blobs)
        self.rates = UserRates(settings)
        self.submitted = 0
        self.completed = 0
        self.wake = asyncio.Event()
        self.target: int | None = None  # set off `reached` when this many jobs are completed
        self.reached = asyncio.Event()

    async def enqueuer(self, backlog: asyncio.Semaphore, stop: asyncio.Event) -> None:
        while True:
            await backlog.acquire()
            if stop.is_set():
                backlog.release()
                return
            n = self.submitted
            self.submitted += 1
            student = self.room.students[n % STUDENTS]
            code = f"{PROGRAM}  # {self.tag} {n}"
            try:
                queued = await jobs.submit(
                    self.db, self.settings, self.rates, student, self.room.problem_id, "python", code
                )
            except BaseException:
                backlog.release()
                raise
            if queued.deduplicated:
                raise RuntimeError(f"submission {self.tag} {n} was taken for an earlier one: nothing was queued")
            self.wake.set()  # the handler's wake_runner

    async def worker(self, worker_id: str, fair_share: int, backlog: asyncio.Semaphore, drain: asyncio.Event) -> None:
        lease_s = float(self.settings.job_lease_s)
        while True:
            job = await self.store.claim(worker_id, lease_s, fair_share)
            if job is None:
                if drain.is_set():
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=1.0)  # the runner's idle poll
                self.wake.clear()
                continue
            backlog.release()
            spec = await self.store.grading_spec(job)
            await self.store.heartbeat(job.id, worker_id, lease_s)
            order = run_order(spec.tests)
            outcome = outcome_of(spec, job.id)
            outcome = dataclasses.replace(outcome, tests=in_problem_order(outcome.tests, order))
            quota = self.settings.full_output_max_bytes_per_user
            budget = max(0, quota - await self.store.full_output_bytes(job.user_id)) if quota else None
            result: JobResult = await asyncio.to_thread(
                shape,
                outcome,
                spec,
                self.blobs,
                self.settings.result_max_bytes,
                self.settings.full_output_max_bytes,
                budget,
            )
            if not await self.store.complete(job.id, worker_id, result):
                raise RuntimeError(f"job {job.id}: the store refused its result")
            self.completed += 1
            if self.target is not None and self.completed >= self.target:
                self.reached.set()

    @asynccontextmanager
    async def driven(self, workers: int, enqueuers: int) -> AsyncIterator[None]:
        """Workers and enqueuers at work inside; afterwards the enqueuers stop and the workers
        finish every job already queued."""
        backlog = asyncio.Semaphore(BACKLOG)
        stop, drain = asyncio.Event(), asyncio.Event()
        # The server's fair share with this many workers (a third of them per student).
        fair_share = dataclasses.replace(self.settings, workers=workers).running_jobs_per_user
        feeding = [asyncio.create_task(self.enqueuer(backlog, stop)) for _ in range(enqueuers)]
        working = [asyncio.create_task(self.worker(f"bench-w{i}", fair_share, backlog, drain)) for i in range(workers)]
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*feeding)
            drain.set()
            self.wake.set()
            await asyncio.gather(*working)

    async def level(
        self, workers: int, enqueuers: int, warmup_s: float, seconds: float, db_cpu_s: Callable[[], float]
    ) -> Level:
        async with self.driven(workers, enqueuers):
            await asyncio.sleep(warmup_s)
            done, held, writes = self.completed, self.db.held_s, self.db.transactions
            cpu, db_cpu, start = cpu_s(), db_cpu_s(), time.perf_counter()
            await asyncio.sleep(seconds)
            elapsed = time.perf_counter() - start
            return Level(
                workers,
                enqueuers,
                (self.completed - done) / elapsed,
                (self.db.held_s - held) / elapsed,
                1000 * (self.db.held_s - held) / max(1, self.db.transactions - writes),
                (cpu_s() - cpu) / elapsed,
                (db_cpu_s() - db_cpu) / elapsed,
            )

    async def fill(self, jobs: int) -> None:
        """A history of `jobs` finished submissions, made by the same code path."""
        async with self.driven(4, 2):
            self.target = jobs
            await self.reached.wait()


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cluster_cpu_s(data: Path) -> float:
    """CPU seconds used so far by a PostgreSQL cluster: its postmaster and every process it
    started (the pool's backends stay for the whole level, so none is missed)."""
    postmaster = int((data / "postmaster.pid").read_text().split()[0])
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a process that ended meanwhile
        # After the command: state, ppid, …; utime and stime are fields 14 and 15 of the whole line.
        if int(stat.parent.name) == postmaster or int(fields[1]) == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


@asynccontextmanager
async def server_data(store: Store, data_dir: Path) -> AsyncIterator[tuple[TimedDatabase, Settings]]:
    """The data folder's database, opened as the server opens it (migrations first)."""
    overrides = {**LIMITS, "database_url": store.location(data_dir)}
    settings = load_settings(data_dir=data_dir, overrides=overrides, environ={})
    migrations.migrate(settings.database_location, settings.backup_dir)
    db = store.open(settings)
    await db.open()
    try:
        await legal.ensure_defaults(db)
        yield db, settings
    finally:
        await db.close()


async def seeded(store: Store, data_dir: Path, history: int) -> Classroom:
    """The class, its problem and `history` finished submissions: the state each level starts from."""
    store.create(data_dir)
    async with server_data(store, data_dir) as (db, settings):
        room = await classroom(db, settings)
        await Bookkeeping(db, BlobStore(settings.blob_dir), settings, room, "history").fill(history)
        return room


async def ceiling(
    store: Store, root: Path, levels: list[int], enqueuer_share: float, seconds: float, history: int
) -> list[Level]:
    seed = root / "seed"
    start = time.perf_counter()
    room = await seeded(store, seed, history)
    print(f"  (a history of {history} submissions made in {time.perf_counter() - start:.0f} s)", flush=True)
    results: list[Level] = []
    queue = list(levels)
    while queue:
        workers = queue.pop(0)
        enqueuers = max(2, round(workers * enqueuer_share))
        # Every level starts from the same data: a copy of the seeded folder (and database).
        folder = root / f"level-{workers}"
        store.copy(seed, folder)
        async with server_data(store, folder) as (db, settings):
            bench = Bookkeeping(db, BlobStore(settings.blob_dir), settings, room, f"level {workers}")
            result = await bench.level(workers, enqueuers, warmup_s=1.0, seconds=seconds, db_cpu_s=store.cpu_s)
            row = await db.fetchone("SELECT COUNT(*), SUM(CASE WHEN status <> 'done' THEN 1 ELSE 0 END) FROM jobs")
            assert row is not None and row[1] == 0, f"{row[1]} jobs left unfinished"
        shutil.rmtree(folder)
        print(
            f"  {workers:4d} workers, {enqueuers:3d} enqueuers: {result.jobs_per_s:7.1f} jobs/s,"
            f" writer held {result.writer_busy:4.0%} ({result.hold_ms:.2f} ms a write),"
            f" process CPU {result.cpu:4.0%} of a core = {result.per_core_s:.0f} jobs per CPU-second,"
            + (f" PostgreSQL CPU {result.db_cpu:4.0%}," if store.cluster is not None else "")
            + f" writer-bound {result.writer_bound:.0f} jobs/s",
            flush=True,
        )
        # Still rising at the last level asked for (5 % above every level before): go on doubling.
        if (
            not queue
            and workers < MAX_WORKERS
            and result.jobs_per_s > 1.05 * max((r.jobs_per_s for r in results), default=0.0)
        ):
            queue.append(2 * workers)
        results.append(result)
    return results


@dataclass
class HostRun:
    label: str
    concurrency: int
    jobs: int
    jobs_per_s: float


def host_request(settings: Settings, n: int, hidden: int) -> tuple[ExecRequest, GradingSpec]:
    """The request the runner builds for submission n of the 10-test problem (student n mod 30)."""
    tests = [
        GradingTest(
            i,
            str(t["name"]),
            str(t["stdin"]),
            str(t["expected_stdout"]),
            1.0,
            SECRECY_VISIBLE if t["visible"] else SECRECY_HIDDEN,
        )
        for i, t in enumerate(problem_tests(hidden))
    ]
    spec = GradingSpec(
        "trailing_whitespace", 0.0, settings.default_time_limit_ms, settings.default_memory_limit_mb, tests
    )
    order = run_order(tests)
    request = ExecRequest(
        language="python",
        code=f"{PROGRAM}  # {n}",
        tests=[TestInput(tests[i].name, tests[i].stdin.encode()) for i in order],
        time_limit_ms=spec.time_limit_ms,
        memory_limit_mb=spec.memory_limit_mb,
        owner=owner_of(1 + n % STUDENTS),
        hidden_tests=any(t.secrecy != SECRECY_VISIBLE for t in tests),
    )
    return request, spec


async def closed_loop(
    executor: Executor, blobs: BlobStore, settings: Settings, concurrency: int, seconds: float, hidden: int, first: int
) -> int:
    """Jobs finished by `concurrency` clients, each starting its next job when the last one ended."""
    counter = iter(range(first, first + 1_000_000))
    done = 0
    stop = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            request, spec = host_request(settings, next(counter), hidden)
            outcome = await executor.execute(request)
            order = run_order(spec.tests)
            outcome = dataclasses.replace(outcome, tests=in_problem_order(outcome.tests, order))
            result = await asyncio.to_thread(
                shape, outcome, spec, blobs, settings.result_max_bytes, settings.full_output_max_bytes
            )
            if result.verdict != "accepted":
                raise RuntimeError(f"a host job ended {result.verdict}: {result.tests}")
            done += 1

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return done


async def host_rate(data_dir: Path, plan: list[tuple[str, int, int]], seconds: float) -> list[HostRun]:
    settings = load_settings(data_dir=data_dir, environ={})
    blobs = BlobStore(settings.blob_dir)
    sandbox = DockerSandbox(settings)
    runs: list[HostRun] = []
    executor: Executor | None = None
    try:
        executor = started = await sandbox.new_executor()
        # Each student's warm sandbox started by a first job, as in a lesson under way.
        at_once = asyncio.Semaphore(4)

        async def first_job(n: int) -> None:
            async with at_once:
                await started.execute(host_request(settings, n, 0)[0])

        await asyncio.gather(*(first_job(n) for n in range(STUDENTS)))
        if isinstance(started, Prewarming):
            warm = started.warm_counts()
            print(f"  ({warm.idle} warm sandboxes for {warm.users} students after each one's first job)", flush=True)
        first = STUDENTS
        for label, concurrency, hidden in plan:
            start = time.perf_counter()
            count = await closed_loop(executor, blobs, settings, concurrency, seconds, hidden, first)
            elapsed = time.perf_counter() - start
            first += count
            run = HostRun(label, concurrency, count, count / elapsed)
            print(
                f"  {label}, {concurrency} at a time: {count} jobs in {elapsed:.1f} s = {run.jobs_per_s:.2f} jobs/s",
                flush=True,
            )
            runs.append(run)
        return runs
    finally:
        if executor is not None:
            await executor.close()
        await sandbox.close()


def table(rows: list[tuple[str, str, str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


ENGINE_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def decision(ceilings: dict[str, list[Level]], hosts: list[HostRun]) -> str:
    host = max(hosts, key=lambda r: r.jobs_per_s)
    demand = HOSTS * host.jobs_per_s
    rows = [("figure", "measured", "note")]
    for engine, levels in ceilings.items():
        peak = max(levels, key=lambda r: r.jobs_per_s)
        name = ENGINE_NAMES[engine]
        rows += [
            (
                f"{name} bookkeeping ceiling",
                f"{peak.jobs_per_s:.1f} jobs/s",
                f"at {peak.workers} workers; writer held {peak.writer_busy:.0%}, process CPU {peak.cpu:.0%} of a core"
                f" ({peak.per_core_s:.0f} jobs per CPU-second)"
                + (f", PostgreSQL server CPU {peak.db_cpu:.0%}" if engine == "postgresql" else ""),
            ),
            (
                "  the writer alone",
                f"{peak.writer_bound:.0f} jobs/s",
                f"the peak ÷ the share of time the writer was held: {name}'s limit on this code path",
            ),
            ("  ratio to 10 × host", f"{peak.jobs_per_s / demand:.2f}x", f"{HEADROOM}x wanted"),
        ]
    rows += [
        ("one runner host (2 cores)", f"{host.jobs_per_s:.2f} jobs/s", f"{host.label}, {host.concurrency} at a time"),
        ("  Jobe, beside it", JOBE_RATE, JOBE_NOTE),
        (f"{HOSTS} × host rate", f"{demand:.1f} jobs/s", f"{HOSTS} hosts like this one"),
    ]
    if "sqlite" in ceilings:
        sqlite_peak = max(r.jobs_per_s for r in ceilings["sqlite"])
        needed = sqlite_peak < HEADROOM * demand
        rows.append(("PostgreSQL needed", "yes" if needed else "no", f"SQLite's ceiling below {HEADROOM}x"))
    return table(rows)


def load() -> str:
    """The machine's load now: other work on it takes CPU from every figure here."""
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def parse_levels(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", type=parse_levels, default=[1, 2, 4, 8, 16, 32, 64], help="workers, rising")
    parser.add_argument("--enqueuers", type=float, default=0.5, help="enqueuers per worker (at least 2)")
    parser.add_argument("--seconds", type=float, default=6.0, help="measured seconds per concurrency level")
    parser.add_argument("--history", type=int, default=2000, help="finished submissions before measuring")
    parser.add_argument("--host-seconds", type=float, default=15.0, help="seconds per host closed-loop run")
    parser.add_argument(
        "--engines", default="sqlite,postgresql", help="stores to measure: sqlite, postgresql (a private cluster)"
    )
    args = parser.parse_args()
    engines = [e for e in args.engines.split(",") if e]
    print(f"machine: {os.cpu_count()} cores; image {expected_ref()}", flush=True)
    root = Path(tempfile.mkdtemp(prefix="labrunner-bookkeeping-"))
    cluster: PgCluster | None = None
    try:
        ceilings: dict[str, list[Level]] = {}
        for number, engine in enumerate(engines, start=1):
            if engine == "postgresql":
                bindir = postgres_bindir()
                if bindir is None:
                    raise SystemExit("PostgreSQL's server binaries are missing: run packaging/ensure-postgres.sh")
                cluster = PgCluster(bindir, PG_OPTIONS)
                cluster.start()
            store = Store(engine, cluster if engine == "postgresql" else None)
            print(
                f"{number}. {ENGINE_NAMES[engine]} bookkeeping, no sandbox"
                f" (enqueue, claim, grading spec, heartbeat, complete); {load()}:",
                flush=True,
            )
            ceilings[engine] = await ceiling(
                store, root / engine, args.levels, args.enqueuers, args.seconds, args.history
            )
        print(f"{len(engines) + 1}. one runner host: 10-test Python submissions through the DockerExecutor; {load()}:")
        plan = [
            ("all tests visible, warm sandboxes reused", 2, 0),
            ("all tests visible, warm sandboxes reused", 4, 0),
            (f"{HIDDEN} hidden tests, a fresh sandbox per job", 4, HIDDEN),
        ]
        hosts = await host_rate(root / "host", plan, args.host_seconds)
        print(f"   {load()}\n")
        print(decision(ceilings, hosts))
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
