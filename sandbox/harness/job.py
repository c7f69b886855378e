"""One job, start to end: compile once, then each test in a clean container state."""

from __future__ import annotations

import signal
from collections.abc import Iterator

from sandbox import protocol
from sandbox.harness import forkserver, graphics, integrity, live, live_view, process, reaper, workspace
from sandbox.harness.host_channel import HostChannel
from sandbox.protocol import (
    BUILD_DIR,
    RUN_DIR,
    CompileReport,
    Done,
    Event,
    Failure,
    Job,
    Limits,
    Started,
    TestReport,
)

# A failing program whose peak memory came this close to its budget ran out of memory: under
# RLIMIT_AS the failing allocation itself never shows in the peak.
_NEAR_MEMORY_LIMIT = 0.9


def run_job(job: Job, host: HostChannel, server: forkserver.ForkServer | None) -> Iterator[Event]:
    """The job's events, Started first once the sandbox is set up. Each test's stdin is read from
    the host only once the previous event is out, so the host decides when each input enters the
    sandbox; a live job's input comes in live frames while it runs. Python tests start through
    `server` when there is one."""
    try:
        yield from _run_job(job, host, server)
    except integrity.Tampered as exc:
        # Every program inherits the harness's limits and priorities: none may run with what a
        # program wrote there. The run that did it goes unreported, as do all after it.
        yield Failure(protocol.FAILURE_TAMPERED, str(exc))


def _run_job(job: Job, host: HostChannel, server: forkserver.ForkServer | None) -> Iterator[Event]:
    reaper.kill_strays(None if server is None else server.spared())
    integrity.check()  # the last program of an earlier job, in the same container, ran before
    workspace.reset_scratch()
    workspace.write_build_dir(BUILD_DIR, job)
    if server is not None:
        # Before Started: the host measures the first test from its input on, and the zygote's
        # start-up is no test's.
        server.ensure(RUN_DIR)
    yield Started()
    if job.compile is not None:
        report = _compile(job, server)
        integrity.check()
        yield report
        if not report.ok:
            yield Done()
            return
    artifacts = workspace.snapshot(BUILD_DIR)
    if job.live:
        yield from _run_live(job, host, artifacts, server)
    else:
        yield from _run_tests(job, host, artifacts, server)
    yield Done()


def _run_live(
    job: Job, host: HostChannel, artifacts: list[workspace.Artifact], server: forkserver.ForkServer | None
) -> Iterator[Event]:
    if len(job.tests) != 1:
        raise protocol.ProtocolError("a live job runs one program")
    workspace.reset_scratch()
    if server is not None:
        server.ensure(RUN_DIR)
    workspace.lay_out(RUN_DIR, artifacts)
    env, view = job.env, None
    if job.graphics is not None:
        view, view_env, notes = live_view.start(job.graphics, job.run.limits.wall_ms)
        env = {**job.env, **view_env}
        for note in notes:
            yield protocol.Output("stderr", f"[{note}]\n".encode())
    try:
        outcome, stopped = yield from live.run(
            job.run.argv,
            cwd=RUN_DIR,
            env=env,
            limits=job.run.limits,
            next_message=host.next_live,
            control_fd=host.fileno(),
            view=view,
            fork_server=server,
        )
    finally:
        if view is not None:
            # The virtual display goes with the program (live.run leaves no stray but when the
            # program could not even start), and the view's ends of it with them.
            reaper.kill_strays(None if server is None else server.spared())
            view.close()
    status = protocol.STATUS_STOPPED if stopped else classify(outcome, job.run.limits, job.memory_markers)
    workspace.reset_scratch()
    integrity.check()
    # The output went out as it came; the report says how the program ended.
    yield TestReport(
        name=job.tests[0],
        status=status,
        exit_code=outcome.exit_code,
        signal=outcome.signal,
        time_ms=outcome.wall_ms if outcome.wall_exceeded or stopped else outcome.cpu_ms,
        stdout=b"",
        stderr=_spawn_note(outcome),
        truncated=outcome.output_exceeded,
    )


def _run_tests(
    job: Job,
    host: HostChannel,
    artifacts: list[workspace.Artifact],
    server: forkserver.ForkServer | None,
) -> Iterator[TestReport]:
    image_budget = job.graphics.max_image_bytes if job.graphics else 0
    for index, name in enumerate(job.tests):
        stdin = host.next_input()
        workspace.reset_scratch()
        if server is not None:
            server.ensure(RUN_DIR)  # a new one when the last was discarded
        workspace.lay_out(RUN_DIR, artifacts)
        env = job.env
        session = None
        if job.graphics is not None:
            # An equal share of what is left: a test that drew little leaves more to the next.
            allowance = image_budget // (len(job.tests) - index)
            session = graphics.start(job.graphics, index, allowance, job.run.limits.wall_ms)
            env = {**job.env, **session.env}
        outcome = process.run(
            job.run.argv, cwd=RUN_DIR, env=env, stdin=stdin, limits=job.run.limits, fork_server=server
        )
        status = classify(outcome, job.run.limits, job.memory_markers)
        images: list[protocol.Image] = []
        notes: list[str] = []
        if session is not None:
            # The virtual display goes with its test, however the program ended (process.run
            # leaves no stray behind except when the program could not even start).
            reaper.kill_strays(None if server is None else server.spared())
            images, notes = graphics.collect(session)
            image_budget -= sum(len(image.data) for image in images)
            if images and status == protocol.STATUS_TIME_LIMIT:
                # A window that never closes is how many graphical programs end: what it drew is
                # the result, judged like a program that ended by itself.
                status = protocol.STATUS_OK
                notes.append(f"stopped after {job.run.limits.wall_ms / 1000:g} s — here is what it drew")
        # Nothing of this test stays while it is reported: the host measures the next test's
        # memory from a clean container.
        workspace.reset_scratch()
        integrity.check()
        yield TestReport(
            name=name,
            status=status,
            exit_code=outcome.exit_code,
            signal=outcome.signal,
            # CPU time is what the limit is on; a program stopped at the wall deadline (asleep,
            # blocked) reports how long it was given instead.
            time_ms=outcome.wall_ms if outcome.wall_exceeded else outcome.cpu_ms,
            stdout=outcome.stdout,
            stderr=outcome.stderr + _spawn_note(outcome) + "".join(f"[{note}]\n" for note in notes).encode(),
            truncated=outcome.output_exceeded,
            images=tuple(images),
        )


def _compile(job: Job, server: forkserver.ForkServer | None) -> CompileReport:
    """Compile (or only parse) the source. A Python job's syntax check leaves the zygote, started
    before it, to its tests."""
    assert job.compile is not None
    limits = job.compile.limits
    outcome = process.run(
        job.compile.argv,
        cwd=BUILD_DIR,
        env=job.env,
        stdin=b"",
        limits=limits,
        merge_stderr=True,
        stop_on_overflow=False,
        spare=server,
    )
    stopped: str | None = None
    if outcome.wall_exceeded or outcome.cpu_ms > limits.cpu_ms or outcome.signal == signal.SIGXCPU:
        stopped = f"compilation stopped: it took longer than {limits.cpu_ms / 1000:g} s"
    elif killed_by_kernel(outcome, limits):
        stopped = "compilation stopped: the compiler ran out of memory"
    notes = [note for note in (stopped,) if note]
    if outcome.output_exceeded:
        notes.append(f"compiler output truncated at {limits.output_bytes} bytes")
    output = outcome.stdout + _spawn_note(outcome) + "".join(f"\n[{note}]\n" for note in notes).encode()
    ok = outcome.exit_code == 0 and stopped is None
    return CompileReport(ok=ok, output=output, time_ms=outcome.cpu_ms)


def killed_by_kernel(outcome: process.Outcome, limits: Limits) -> bool:
    """Whether a SIGKILL the harness did not send ended the program: within its CPU time (past it,
    RLIMIT_CPU's hard limit sends one), that is the memory cgroup's OOM killer.

    The harness cannot count OOM kills itself: the cgroup's counters are hidden from everything in
    the sandbox, because a program could carry data across tests in them.
    """
    return (
        outcome.signal == signal.SIGKILL
        and not outcome.wall_exceeded
        and not outcome.output_exceeded
        and outcome.cpu_ms <= limits.cpu_ms
    )


def classify(outcome: process.Outcome, limits: Limits, memory_markers: tuple[str, ...]) -> str:
    """The test status: the limit that stopped the program, else how it ended. (The host judges
    again on the cgroup's counts, which see OOM kills of any process and the CPU of all.)"""
    if outcome.output_exceeded:
        return protocol.STATUS_OUTPUT_LIMIT
    if killed_by_kernel(outcome, limits):
        return protocol.STATUS_MEMORY_LIMIT
    if outcome.wall_exceeded:
        return protocol.STATUS_TIME_LIMIT
    if outcome.signal == signal.SIGXCPU or outcome.cpu_ms > limits.cpu_ms:
        return protocol.STATUS_TIME_LIMIT
    if outcome.exit_code == 0:
        return protocol.STATUS_OK
    if outcome.max_rss_bytes >= _NEAR_MEMORY_LIMIT * limits.memory_bytes or any(
        marker.encode() in outcome.stderr for marker in memory_markers
    ):
        return protocol.STATUS_MEMORY_LIMIT
    return protocol.STATUS_RUNTIME_ERROR


def _spawn_note(outcome: process.Outcome) -> bytes:
    return b"" if outcome.spawn_error is None else f"[could not start: {outcome.spawn_error}]\n".encode()
