"""What the worker needs from the job store and the blob store; the appliance implements both.

The runner never imports the appliance: it is handed objects that satisfy these protocols.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from runner.executor import InputFile
from sandbox.protocol import MEDIA_APNG

# Lower runs first: staff before students, graded work before rejudges.
PRIORITY_STAFF = 10
PRIORITY_STUDENT = 20
PRIORITY_REJUDGE = 30

SECRECY_VISIBLE = 0
SECRECY_LATER = 1
SECRECY_HIDDEN = 2


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str  # run | submission | rejudge
    user_id: int
    problem_id: int | None
    language: str
    code: str
    stdin: str
    infra_attempts: int
    graphical: bool | None = None  # None: decided from the code
    region: str | None = None  # the runner-host region its user or class prefers


@dataclass(frozen=True)
class GradingTest:
    test_case_id: int | None
    name: str
    stdin: str
    expected_stdout: str | None  # None for a plain run: no comparison
    weight: float
    # Who may see this test's output: SECRECY_VISIBLE, SECRECY_LATER (reveal_later) or
    # SECRECY_HIDDEN; the runner runs the less secret first (runner.test_order).
    secrecy: int = 0


@dataclass(frozen=True)
class GradingSpec:
    comparison: str
    tolerance: float
    time_limit_ms: int
    memory_limit_mb: int
    tests: list[GradingTest]
    files: list[InputFile] = field(default_factory=list)
    graphical: bool | None = None  # what the run or the problem says; None: decided from the code


@dataclass(frozen=True)
class StoredImage:
    media_type: str  # image/png, or image/apng for an animation
    label: str
    width: int
    height: int
    blob: str  # its hash in the blob store

    @property
    def animated(self) -> bool:
        return self.media_type == MEDIA_APNG


@dataclass(frozen=True)
class TestResult:
    __test__ = False  # not a pytest test class, despite the name

    position: int
    test_case_id: int | None
    name: str
    verdict: str
    exit_code: int | None
    signal: int | None
    time_ms: int
    stdout: str
    stderr: str
    truncated: bool
    stdout_blob: str | None
    stderr_blob: str | None
    images: list[StoredImage] = field(default_factory=list)  # what a graphical program drew
    full_output_bytes: int = 0  # bytes of stdout_blob and stderr_blob: what counts against the user's quota


@dataclass(frozen=True)
class JobResult:
    verdict: str
    score: float | None
    compile_output: str | None
    tests: list[TestResult]
    host: str | None = None  # the runner host that ran it; None: this machine


class JobStore(Protocol):
    async def claim(self, worker_id: str, lease_s: float, max_running_per_user: int | None = None) -> ClaimedJob | None:
        """Atomically take the next runnable queued job, or None.

        With `max_running_per_user`, no user gets more running jobs than that (a fair share of the
        workers): a job whose user already has that many running is passed over, and among the
        rest, within a priority class, users with the fewest running jobs come first. Staff jobs
        (PRIORITY_STAFF) are exempt; rejudges are system work and share one such limit among them
        all, apart from the students whose submissions they re-run.
        """
        ...

    async def heartbeat(self, job_id: int, worker_id: str, lease_s: float) -> bool:
        """Extend the lease; False if the job is no longer ours."""
        ...

    async def grading_spec(self, job: ClaimedJob) -> GradingSpec: ...

    async def complete(self, job_id: int, worker_id: str, result: JobResult) -> bool:
        """Store the result if we still hold the lease; False if someone else took the job."""
        ...

    async def infra_failure(
        self, job_id: int, worker_id: str, code: str, message: str, max_attempts: int, backoff_s: float
    ) -> str:
        """Record an infrastructure failure: requeue with backoff, or fail past the bound. Returns the status."""
        ...

    async def full_output_bytes(self, user_id: int) -> int:
        """Bytes of full output the user's stored results keep in the blob store now."""
        ...

    async def requeue_expired(self, max_attempts: int) -> list[int]:
        """Jobs whose lease ran out (their worker was lost) go back to the queue."""
        ...

    async def requeue_all_running(self, max_attempts: int) -> list[int]:
        """At start-up nothing can be running: every running job's worker died with the old process."""
        ...


class BlobSink(Protocol):
    def put(self, data: bytes) -> str:
        """Store bytes (blocking; called from a thread) and return their content hash."""
        ...
