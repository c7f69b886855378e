"""Planning a job and reading its outcome back, without Docker."""

from __future__ import annotations

import pytest

from runner.cgroup_meter import TestUsage
from runner.executor import ExecRequest, InfraError
from runner.languages import LANGUAGES
from runner.sandbox_job import PROGRAM_ENV, JobPlan, Transcript, plan_job, to_result
from runner.sandbox_settings import MiB, SandboxSettings
from sandbox import protocol
from tests.sandbox.conftest import one_test

SETTINGS = SandboxSettings()
# What a Python job's syntax check reports when the code parses.
CHECKED = protocol.CompileReport(ok=True, output=b"", time_ms=5)


def two_tests(language: str = "python", **limits: int) -> ExecRequest:
    request = one_test("code", language, **limits)
    return ExecRequest(**{**request.__dict__, "tests": [*request.tests, *request.tests[:1]]})


def test_python_plan() -> None:
    plan = plan_job(one_test("print(1)", time_limit_ms=2000, memory_limit_mb=256), SETTINGS)
    job = plan.job
    assert (job.source_name, job.source) == ("main.py", b"print(1)")
    assert job.env == PROGRAM_ENV
    limits = job.run.limits
    # A syntax check first, by the harness itself, within the program's own memory: the container
    # is never resized for it.
    assert job.compile is not None and job.compile.argv == (protocol.PYTHON_SYNTAX_CHECK, "main.py")
    assert job.compile.limits.memory_bytes == limits.memory_bytes
    assert plan.container_memory_bytes == plan.run_memory_bytes
    assert limits.cpu_ms == 2000
    assert limits.wall_ms == 2000 * SETTINGS.wall_time_factor + SETTINGS.wall_time_slack_ms
    assert limits.address_space_bytes is None  # the container's cgroup bounds CPython
    assert limits.memory_bytes > 256 * MiB
    assert limits.output_bytes == SETTINGS.output_limit_bytes
    # The container holds the program and the harness.
    assert plan.container_memory_bytes >= limits.memory_bytes + SETTINGS.harness_memory_mb * MiB
    assert plan.deadline_s * 1000 >= limits.wall_ms


def test_only_python_jobs_ask_for_the_fork_server() -> None:
    for language in LANGUAGES:
        assert plan_job(one_test("code", language), SETTINGS).job.fork_server == (language == "python")
    assert not plan_job(one_test("code"), SandboxSettings(python_fork_server=False)).job.fork_server


def test_native_programs_get_an_address_space_limit() -> None:
    limits = plan_job(one_test("int main(void) {}", "c", memory_limit_mb=64), SETTINGS).job.run.limits
    assert limits.address_space_bytes == limits.memory_bytes >= 64 * MiB


def test_java_plan() -> None:
    plan = plan_job(two_tests("java", time_limit_ms=1000, memory_limit_mb=128), SETTINGS)
    run, compile_ = plan.job.run, plan.job.compile
    assert compile_ is not None and compile_.argv[0] == "javac"
    assert compile_.limits.cpu_ms == SETTINGS.compile_time_limit_ms
    assert "-Xmx128m" in run.argv
    assert run.limits.address_space_bytes is None  # the heap flag bounds it instead
    assert run.limits.cpu_ms == 2000  # the JVM's time factor
    assert plan.container_memory_bytes >= SETTINGS.compile_memory_mb * MiB
    assert plan.deadline_s * 1000 >= compile_.limits.wall_ms + 2 * run.limits.wall_ms


def test_every_test_output_fits_the_transcript_bound() -> None:
    plan = plan_job(two_tests(), SETTINGS)
    full = protocol.TestReport(
        "t0", "output_limit", None, 9, 1, b"x" * SETTINGS.output_limit_bytes, b"y" * SETTINGS.output_limit_bytes, True
    )
    line = protocol.encode_event(full)
    assert len(line) <= plan.max_event_bytes
    assert 2 * len(line) + len(protocol.encode_event(protocol.Done())) <= plan.max_transcript_bytes


def report(name: str, status: str = "ok") -> protocol.TestReport:
    return protocol.TestReport(name, status, 0, None, 3, b"out", b"", False)


def transcript(*events: protocol.Event, ending: str = "done", stderr: bytes = b"") -> Transcript:
    return Transcript(list(events), ending, stderr)  # type: ignore[arg-type]


@pytest.fixture
def python_plan() -> JobPlan:
    return plan_job(two_tests(), SETTINGS)


@pytest.fixture
def c_plan() -> JobPlan:
    return plan_job(two_tests("c"), SETTINGS)


def test_a_complete_transcript(python_plan: JobPlan) -> None:
    result = to_result(
        python_plan, transcript(CHECKED, report("run"), report("run", "time_limit"), protocol.Done()), False
    )
    assert result.compile is not None and result.compile.ok
    assert [(t.name, t.status, t.stdout) for t in result.tests] == [
        ("run", "ok", b"out"),
        ("run", "time_limit", b"out"),
    ]


@pytest.mark.parametrize(
    ("ending", "oom_killed", "status"),
    [("deadline", False, "time_limit"), ("eof", True, "memory_limit"), ("eof", False, "runtime_error")],
)
def test_tests_never_reported_are_the_programs_doing(
    python_plan: JobPlan, ending: str, oom_killed: bool, status: str
) -> None:
    result = to_result(python_plan, transcript(CHECKED, report("run"), ending=ending), oom_killed)
    assert [t.status for t in result.tests] == ["ok", status]
    assert result.tests[1].stderr


def test_a_stop_during_compilation_is_a_failed_compilation(c_plan: JobPlan) -> None:
    result = to_result(c_plan, transcript(ending="deadline"), False)
    assert result.compile is not None and not result.compile.ok
    assert result.tests == []


def test_a_failed_compilation_runs_no_test(c_plan: JobPlan) -> None:
    failed = protocol.CompileReport(ok=False, output=b"main.c:1: error \xff", time_ms=40)
    result = to_result(c_plan, transcript(failed, protocol.Done()), False)
    assert result.compile is not None
    assert (result.compile.ok, result.compile.output) == (False, "main.c:1: error \ufffd")
    assert result.tests == []


@pytest.mark.parametrize(
    ("events", "stderr", "code"),
    [
        # Never image_stale, which pauses every worker: that is the host's own check to make.
        ((protocol.Failure(protocol.FAILURE_VERSION_MISMATCH, "v2"),), b"", "sandbox_protocol"),
        ((protocol.Failure(protocol.FAILURE_HARNESS_ERROR, "Traceback"),), b"", "sandbox_protocol"),
        ((), b"Traceback (most recent call last)", "sandbox_protocol"),
    ],
    ids=["version", "harness-error", "harness-crash"],
)
def test_harness_failures_are_infrastructure(
    python_plan: JobPlan, events: tuple[protocol.Event, ...], stderr: bytes, code: str
) -> None:
    with pytest.raises(InfraError) as caught:
        to_result(python_plan, transcript(*events, ending="eof" if stderr else "failure", stderr=stderr), False)
    assert caught.value.code == code


def test_a_tampered_transcript_is_the_programs_doing(python_plan: JobPlan) -> None:
    result = to_result(python_plan, transcript(protocol.Started(), CHECKED, report("run"), ending="tampered"), False)
    assert [t.status for t in result.tests] == ["ok", "runtime_error"]
    assert b"interfered with the sandbox" in result.tests[1].stderr
    assert result.tests[1].stdout == b""


@pytest.mark.parametrize(
    ("reported", "usage", "status"),
    [
        ("ok", TestUsage(cpu_ms=10, memory_bytes=1 << 20, oom_kills=0), "ok"),
        ("ok", TestUsage(cpu_ms=10, memory_bytes=1 << 20, oom_kills=1), "memory_limit"),
        ("time_limit", TestUsage(cpu_ms=10, memory_bytes=1 << 20, oom_kills=1), "memory_limit"),
        ("ok", TestUsage(cpu_ms=10, memory_bytes=2 << 30, oom_kills=0), "memory_limit"),
        ("runtime_error", TestUsage(cpu_ms=60_000, memory_bytes=0, oom_kills=0), "time_limit"),
        ("output_limit", TestUsage(cpu_ms=60_000, memory_bytes=2 << 30, oom_kills=3), "output_limit"),
    ],
)
def test_the_cgroups_count_only_ever_makes_a_verdict_stricter(
    python_plan: JobPlan, reported: str, usage: TestUsage, status: str
) -> None:
    events = (CHECKED, report("run"), report("run", reported), protocol.Done())
    transcript = Transcript(list(events), "done", b"", [None, usage])
    first, second = to_result(python_plan, transcript, False).tests
    assert (first.status, second.status) == ("ok", status)
