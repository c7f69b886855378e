"""The executor contract: what the worker hands a sandbox and what comes back.

The worker (queue side) only knows these types; the Docker implementation lives in
`runner.docker_executor`. Expected outputs are deliberately absent: they never enter the
sandbox, comparison happens in `runner.grading` on the host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

TestStatus = Literal["ok", "time_limit", "memory_limit", "output_limit", "runtime_error"]


class InfraError(Exception):
    """The infrastructure failed (engine down, image missing, worker lost): retry, never a verdict."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class InputFile:
    name: str  # a safe base name, already validated by the caller
    data: bytes


@dataclass(frozen=True)
class TestInput:
    __test__ = False  # not a pytest test class, despite the name

    name: str
    stdin: bytes


@dataclass(frozen=True)
class ExecRequest:
    language: str  # an id from runner.languages
    code: str
    tests: list[TestInput]  # a plain run is one test named "run"
    files: list[InputFile] = field(default_factory=list)
    time_limit_ms: int = 2000  # per test, CPU and wall (wall = multiple of CPU, see settings)
    memory_limit_mb: int = 256  # per test
    # Run headless with the graphics shim, pictures captured (Python only; other languages run as
    # usual), under the graphical wall time unless graphical_time is False: a graphical program the
    # teacher did not ask for keeps the problem's time limit.
    graphical: bool = False
    graphical_time: bool = True
    # Whose job this is: a sandbox that served it may serve that owner's later jobs (and nobody
    # else's). None: a container of its own, used once.
    owner: str | None = None
    # Some test's input or result is hidden from the owner. A container keeps traces of what ran in
    # it that no clean-up can wipe (its PID counter, for one): it serves no job after this one.
    hidden_tests: bool = False
    # A live run (runner.live_session): one test, its input typed while it runs, its output
    # shown as it comes, under the live session's limits instead of a test's.
    live: bool = False
    # The region the job's class or user prefers, for runner hosts (runner.placement); not sent.
    region: str | None = None


@dataclass(frozen=True)
class CompileOutcome:
    ok: bool
    output: str  # compiler stdout+stderr, capped, UTF-8 with replacement
    time_ms: int


@dataclass(frozen=True)
class Image:
    """A picture a graphical program drew: PNG, or an APNG of its frames."""

    media_type: str  # "image/png" or "image/apng"
    label: str  # what it shows: "frame 3", "figure 1", "window 1", "animation"
    width: int
    height: int
    data: bytes


@dataclass(frozen=True)
class TestOutcome:
    __test__ = False  # not a pytest test class, despite the name

    name: str
    status: TestStatus
    exit_code: int | None
    stdout: bytes  # capped at the output limit
    stderr: bytes  # capped at the output limit
    time_ms: int
    truncated: bool = False
    signal: int | None = None
    images: list[Image] = field(default_factory=list)  # what a graphical program drew


@dataclass(frozen=True)
class ExecResult:
    compile: CompileOutcome | None  # None when the job had no compile (or syntax-check) step
    tests: list[TestOutcome]  # empty when compilation failed
    sandbox_id: str | None = None  # the container that ran it, for logs and checks
    host: str | None = None  # the runner host that ran it (runner.remote_dispatch); None: this machine


class Executor(Protocol):
    async def execute(self, request: ExecRequest) -> ExecResult:
        """Run the request in a clean sandbox (fresh, or the owner's own warm one); raise InfraError
        when the infrastructure failed."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class WarmCounts:
    idle: int  # warm sandboxes waiting for their user's next job
    users: int  # users who have one
    memory_bytes: int  # what the idle ones hold together
    pooled: int = 0  # started containers waiting for their first user


@runtime_checkable
class Prewarming(Protocol):
    """An executor that keeps users' sandboxes warm and can start one before a user's first job."""

    def prewarm(self, owner: str) -> None:
        """Start one for `owner` in the background when there is room; never waits, never fails."""
        ...

    def warm_counts(self) -> WarmCounts: ...
