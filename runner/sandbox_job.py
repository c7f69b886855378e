"""The host's half of a sandbox job, without any I/O.

`plan_job` turns an ExecRequest into the protocol job the harness runs, with every limit spelled out,
and sizes the container and the host's deadline around it. `to_result` turns what came back into
an ExecResult, deciding for tests the harness never reported on (the sandbox stopped, or the host
ran out of patience): those are the program's doing, never an infrastructure failure.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
from dataclasses import dataclass
from typing import Literal, cast

from runner import engine, graphics
from runner.cgroup_meter import TestUsage
from runner.executor import CompileOutcome, ExecRequest, ExecResult, Image, InfraError, TestOutcome, TestStatus
from runner.grading import decode
from runner.languages import LANGUAGES
from runner.sandbox_settings import MiB, SandboxSettings
from sandbox import protocol
from sandbox.graphics import png

# The environment every program (and compiler) sees: nothing from the host, nothing secret.
PROGRAM_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": protocol.TMP_DIR,
    "TMPDIR": protocol.TMP_DIR,
    "LANG": "C.UTF-8",
    "PYTHONIOENCODING": "utf-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "MPLBACKEND": "Agg",
    "SDL_VIDEODRIVER": "dummy",
    "SDL_AUDIODRIVER": "dummy",
    # pygame greets on stdout at import, which would spoil every pygame program's output.
    "PYGAME_HIDE_SUPPORT_PROMPT": "1",
    # One CPU per sandbox: BLAS threads would only fight over it, and each reserves address space
    # that counts against RLIMIT_AS; so do glibc's per-thread malloc arenas.
    "OPENBLAS_NUM_THREADS": "1",
    "MALLOC_ARENA_MAX": "2",
}

# base64 grows data by 4/3; each event line adds some JSON around it.
_B64 = 4 / 3
_EVENT_OVERHEAD = 4096
_TRANSCRIPT_SLACK = 64 * 1024
# Room in an event for each picture's fields beside its data.
_IMAGE_OVERHEAD = 512
# A graphical test's CPU limit is its wall time and this much more: the harness's wall deadline,
# which keeps what the program drew, must come first.
_GRAPHICAL_CPU_SLACK_MS = 1000
# Per graphical test, for the host's job deadline: the virtual display's start and the pictures'
# collection.
_GRAPHICAL_TEST_SLACK_MS = 6000

# tampered: a line came that the harness did not sign, or out of its order.
Ending = Literal["done", "failure", "eof", "deadline", "tampered"]


@dataclass(frozen=True)
class JobPlan:
    job: protocol.Job
    frame: bytes  # the job, encoded for the harness's stdin
    inputs: tuple[bytes, ...]  # each test's stdin, sent in its own frame when the harness is ready
    container_memory_bytes: int  # while compiling (compilers get more than programs)
    run_memory_bytes: int  # from the first test on: the program's budget and the harness's
    deadline_s: float  # for the whole job, from the moment the job is sent
    max_transcript_bytes: int  # all the harness may legitimately write for this job
    max_event_bytes: int  # its longest possible line
    # What the harness itself may add during a test to the cgroup's figures for it: holding and
    # encoding the program's output (memory), setting up and reporting the test (CPU).
    test_memory_slack_bytes: int = 0
    test_cpu_slack_ms: int = 0


@dataclass(frozen=True)
class Transcript:
    """What one sandbox said, and how the conversation ended."""

    events: list[protocol.Event]
    ending: Ending
    harness_stderr: bytes  # the harness's own stderr, capped: diagnostics only
    # What the container's cgroup counted during each reported test, in order; None without a meter.
    usages: list[TestUsage | None] = dataclasses.field(default_factory=list)


def _wall_ms(cpu_ms: int, settings: SandboxSettings) -> int:
    return round(cpu_ms * settings.wall_time_factor) + settings.wall_time_slack_ms


def plan_job(request: ExecRequest, settings: SandboxSettings) -> JobPlan:
    language = LANGUAGES[request.language]
    memory_mb = request.memory_limit_mb
    budget_mb = memory_mb + language.runtime_overhead_mb
    cpu_ms = math.ceil(request.time_limit_ms * language.time_factor)
    run_limits = protocol.Limits(
        cpu_ms=cpu_ms,
        wall_ms=_wall_ms(cpu_ms, settings),
        memory_bytes=budget_mb * MiB,
        address_space_bytes=budget_mb * MiB if language.address_space_limit else None,
        file_size_bytes=settings.file_size_mb * MiB,
        open_files=settings.open_files,
        output_bytes=settings.output_limit_bytes,
    )
    compile_command = None
    # A syntax check gets the program's memory: the container is not resized around it.
    compile_memory_mb = budget_mb if language.parse_only else settings.compile_memory_mb
    compile_argv = language.compile_argv(compile_memory_mb)
    if compile_argv is not None:
        compile_command = protocol.Command(
            argv=compile_argv,
            limits=protocol.Limits(
                cpu_ms=settings.compile_time_limit_ms,
                wall_ms=_wall_ms(settings.compile_time_limit_ms, settings),
                memory_bytes=compile_memory_mb * MiB,
                # Compilers are trusted code on the student's input; the container bounds them.
                address_space_bytes=None,
                file_size_bytes=settings.file_size_mb * MiB,
                open_files=settings.open_files,
                output_bytes=settings.compile_output_limit_bytes,
            ),
        )
    job_graphics = None
    if request.graphical and language.id == "python":  # the graphics shim is a Python module
        job_graphics = protocol.Graphics(
            max_images=settings.graphics_max_frames,
            max_dimension=settings.graphics_max_dimension,
            max_image_bytes=settings.graphics_max_image_bytes,
            display=graphics.needs_display(request.code),
        )
        if request.live:
            job_graphics = dataclasses.replace(
                job_graphics,
                max_dimension=settings.live_frame_max_dimension,
                live_frame_ms=round(1000 / settings.live_frames_per_s),
            )
        elif request.graphical_time:
            wall_ms = round(settings.graphical_wall_time_s * 1000)
            run_limits = dataclasses.replace(run_limits, cpu_ms=wall_ms + _GRAPHICAL_CPU_SLACK_MS, wall_ms=wall_ms)
    if request.live:
        # The session's limits: a person may take minutes over an input() prompt. CPU time cannot
        # pass the wall time, and an idle session is stopped by the host long before either.
        wall_ms = round(settings.live_wall_time_s * 1000)
        run_limits = dataclasses.replace(
            run_limits, cpu_ms=wall_ms, wall_ms=wall_ms, output_bytes=settings.live_output_limit_bytes
        )
    job = protocol.Job(
        key=secrets.token_bytes(protocol.KEY_BYTES),
        source_name=language.source_name,
        source=request.code.encode("utf-8", errors="replace"),
        run=protocol.Command(argv=language.run_argv(memory_mb), limits=run_limits),
        tests=tuple(t.name for t in request.tests),
        env=dict(PROGRAM_ENV),
        compile=compile_command,
        files=tuple(protocol.JobFile(name=f.name, data=f.data) for f in request.files),
        memory_markers=language.memory_markers,
        graphics=job_graphics,
        fork_server=settings.python_fork_server and language.id == "python",
        live=request.live,
    )
    frame = protocol.encode_job(job)
    compile_mb = settings.compile_memory_mb if compile_command and not language.parse_only else 0
    inputs = tuple(t.stdin for t in request.tests)
    # The cgroup is the program's exact memory bound, so it gets only the harness on top (its
    # baseline plus the job and one test's input it holds decoded and writes out). Files a program
    # writes to the tmpfs mounts live in memory and count against its limit.
    largest_input = max((len(stdin) for stdin in inputs), default=0)
    harness_mb = settings.harness_memory_mb + math.ceil(3 * (len(frame) + largest_input) / MiB)
    extra_mb = 0
    text_event = math.ceil(2 * settings.output_limit_bytes * _B64) + _EVENT_OVERHEAD
    compile_event = math.ceil(settings.compile_output_limit_bytes * _B64) + _EVENT_OVERHEAD
    compile_wall = compile_command.limits.wall_ms if compile_command else 0
    test_slack_ms = 0
    event_images = all_images = 0
    if job_graphics is not None:
        # The display and the pictures' files live in the container; the harness holds one test's
        # pictures three times over (bytes, base64, the JSON line).
        extra_mb = settings.graphics_memory_mb + math.ceil(3 * job_graphics.max_image_bytes / MiB)
        # One test's pictures may take the whole budget; all tests' together take it once.
        images_b64 = math.ceil(job_graphics.max_image_bytes * _B64)
        per_test = (job_graphics.max_images + 1) * _IMAGE_OVERHEAD
        event_images = images_b64 + per_test
        all_images = images_b64 + len(job.tests) * per_test
        test_slack_ms = _GRAPHICAL_TEST_SLACK_MS
    test_ms = run_limits.wall_ms + test_slack_ms
    return JobPlan(
        job=job,
        frame=frame,
        inputs=inputs,
        container_memory_bytes=(max(budget_mb, compile_mb) + harness_mb + extra_mb) * MiB,
        run_memory_bytes=(budget_mb + harness_mb + extra_mb) * MiB,
        deadline_s=(compile_wall + len(job.tests) * test_ms + settings.job_slack_ms) / 1000,
        max_transcript_bytes=compile_event + len(job.tests) * text_event + all_images + _TRANSCRIPT_SLACK,
        max_event_bytes=max(text_event + event_images, compile_event),
        # The virtual display and the pictures' files count too, for a graphical program.
        test_memory_slack_bytes=(settings.harness_test_memory_mb + extra_mb) * MiB + 3 * (text_event + event_images),
        test_cpu_slack_ms=settings.harness_test_cpu_ms,
    )


def _stopped_reason(ending: Ending, oom_killed: bool) -> tuple[TestStatus, str]:
    if ending == "tampered":
        return "runtime_error", "the program interfered with the sandbox's supervisor, so the job was stopped"
    if ending == "deadline":
        return "time_limit", "the job ran past its time and the sandbox was stopped"
    if oom_killed:
        return "memory_limit", "the sandbox ran out of memory and was stopped"
    return "runtime_error", "the sandbox stopped before this finished (its supervisor was killed)"


def to_result(plan: JobPlan, transcript: Transcript, oom_killed: bool) -> ExecResult:
    """The ExecResult for a finished conversation; InfraError when the harness itself failed."""
    compile_report: protocol.CompileReport | None = None
    reports: list[protocol.TestReport] = []
    for event in transcript.events:
        if isinstance(event, protocol.Failure):
            # Never a reason to pause the runner: whether the image is stale is the host's own
            # check to make (the image's tag), not the sandbox's word.
            raise InfraError(engine.SANDBOX_PROTOCOL, f"the sandbox harness failed ({event.code}): {event.message}")
        if isinstance(event, protocol.CompileReport):
            compile_report = event
        elif isinstance(event, protocol.TestReport):
            reports.append(event)
    if transcript.ending == "eof" and transcript.harness_stderr.strip():
        # Programs cannot write to the harness's stderr: anything there is the harness crashing.
        crash = decode(transcript.harness_stderr)[-2000:]
        raise InfraError(engine.SANDBOX_PROTOCOL, f"the sandbox harness crashed: {crash}")
    job = plan.job
    status, reason = _stopped_reason(transcript.ending, oom_killed)

    compile_outcome: CompileOutcome | None = None
    if job.compile is not None:
        if compile_report is None:
            return ExecResult(CompileOutcome(ok=False, output=f"[compilation stopped: {reason}]", time_ms=0), [])
        compile_outcome = CompileOutcome(
            ok=compile_report.ok, output=decode(compile_report.output), time_ms=compile_report.time_ms
        )
        if not compile_report.ok:
            return ExecResult(compile_outcome, [])

    images = _checked_images(reports, job.graphics)
    usages = [*transcript.usages, *[None] * (len(reports) - len(transcript.usages))]
    tests = [
        _measured(
            TestOutcome(
                name=r.name,
                status=cast(TestStatus, r.status),  # decode_event checked it is one of them
                exit_code=r.exit_code,
                stdout=r.stdout,
                stderr=r.stderr,
                time_ms=r.time_ms,
                truncated=r.truncated,
                signal=r.signal,
                images=test_images,
            ),
            usage,
            plan,
        )
        for r, test_images, usage in zip(reports, images, usages, strict=True)
    ]
    tests += [
        TestOutcome(name=name, status=status, exit_code=None, stdout=b"", stderr=f"[{reason}]\n".encode(), time_ms=0)
        for name in job.tests[len(reports) :]
    ]
    return ExecResult(compile_outcome, tests)


def _measured(test: TestOutcome, usage: TestUsage | None, plan: JobPlan) -> TestOutcome:
    """The test judged again on what the container's cgroup counted during it, which sees what the
    harness cannot: an OOM kill of any process, the memory of all processes and tmpfs files
    together, the CPU of processes nobody reaped. Only ever a stricter verdict; and it is this
    test's own count, so nothing another test did can change it."""
    if usage is None or test.status == "output_limit":
        return test
    limits = plan.job.run.limits
    if usage.oom_kills > 0 or usage.memory_bytes > limits.memory_bytes + plan.test_memory_slack_bytes:
        if test.status != "memory_limit":
            note = "[the program used more memory than its limit allows]\n"
            return dataclasses.replace(test, status="memory_limit", stderr=test.stderr + note.encode())
        return test
    cpu_ms = usage.cpu_ms - plan.test_cpu_slack_ms
    if plan.job.graphics is None and test.status != "time_limit" and cpu_ms > limits.cpu_ms:
        note = "[the program used more CPU time than its limit allows]\n"
        return dataclasses.replace(test, status="time_limit", time_ms=cpu_ms, stderr=test.stderr + note.encode())
    return test


def _checked_images(reports: list[protocol.TestReport], limits: protocol.Graphics | None) -> list[list[Image]]:
    """Each report's pictures, once they are shown to be what the harness promises: whole PNGs
    (an APNG only where it says so) within the job's size, count and byte limits."""
    out: list[list[Image]] = []
    total = 0
    for report in reports:
        if not report.images:
            out.append([])
            continue
        if limits is None:
            raise InfraError(engine.SANDBOX_PROTOCOL, "the sandbox sent pictures for a program that is not graphical")
        if len(report.images) > limits.max_images + 1:  # the animation comes on top
            raise InfraError(engine.SANDBOX_PROTOCOL, "the sandbox sent more pictures than allowed")
        out.append([checked_image(image, limits) for image in report.images])
        total += sum(len(image.data) for image in report.images)
    if limits is not None and total > limits.max_image_bytes:
        raise InfraError(engine.SANDBOX_PROTOCOL, "the sandbox sent more bytes of pictures than allowed")
    return out


def checked_image(image: protocol.Image, limits: protocol.Graphics) -> Image:
    try:
        header = png.read_header(image.data)
    except ValueError as exc:
        raise InfraError(engine.SANDBOX_PROTOCOL, f"the sandbox sent a broken picture: {exc}") from exc
    if (
        (header.width, header.height) != (image.width, image.height)
        or max(header.width, header.height) > limits.max_dimension
        or header.animated != (image.media_type == protocol.MEDIA_APNG)
    ):
        raise InfraError(engine.SANDBOX_PROTOCOL, "the sandbox sent a picture that is not what it says")
    return Image(image.media_type, image.label, image.width, image.height, image.data)
