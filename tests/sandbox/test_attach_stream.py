"""Reading the attach stream: Docker's frames and the harness's lines, without Docker."""

from __future__ import annotations

import hashlib
import hmac
import struct

import pytest

from runner.attach_stream import LineSplitter, StreamDemux, TranscriptBuilder
from runner.executor import ExecRequest, InfraError, TestInput
from runner.sandbox_job import JobPlan, Transcript, plan_job, to_result
from runner.sandbox_settings import SandboxSettings
from sandbox import protocol


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def test_frames_split_anywhere_come_out_whole() -> None:
    raw = frame(1, b"out") + frame(2, b"err") + frame(1, b"") + frame(1, b"more")
    demux = StreamDemux()
    got = [item for i in range(len(raw)) for item in demux.feed(raw[i : i + 1])]
    assert got == [(1, b"out"), (2, b"err"), (1, b""), (1, b"more")]


def test_lines_are_cut_at_newlines_only() -> None:
    lines = LineSplitter(max_line_bytes=100)
    assert list(lines.feed(b"one\ntw")) == [b"one"]
    assert list(lines.feed(b"o\n\nthree")) == [b"two", b""]
    assert list(lines.feed(b"\n")) == [b"three"]


def test_an_endless_line_is_refused() -> None:
    lines = LineSplitter(max_line_bytes=10)
    with pytest.raises(InfraError) as caught:
        for _ in range(3):
            list(lines.feed(b"x" * 6))
    assert caught.value.code == "sandbox_protocol"


def plan(language: str = "python", tests: int = 2) -> JobPlan:
    code = "int main(void) { return 0; }\n" if language == "c" else "print(1)\n"
    return plan_job(
        ExecRequest(language=language, code=code, tests=[TestInput(f"t{i}", b"") for i in range(tests)]),
        SandboxSettings(),
    )


# What a Python job's syntax check reports when the code parses.
CHECKED = protocol.CompileReport(ok=True, output=b"", time_ms=1)


def report(name: str) -> protocol.TestReport:
    return protocol.TestReport(name, "ok", 0, None, 5, b"\xffout", b"", False)


def signed(job_plan: JobPlan, *events: protocol.Event) -> list[bytes]:
    signer = protocol.EventSigner(job_plan.job.key)
    return [signer.line(event) for event in events]


def feed_lines(job_plan: JobPlan, lines: list[bytes]) -> Transcript | None:
    builder = TranscriptBuilder(job_plan)
    transcript = None
    for line in lines:
        transcript = builder.feed(frame(1, line))
        if transcript is not None:
            break
    return transcript


def test_a_transcript_ends_with_the_harness_last_word() -> None:
    job_plan = plan(tests=1)
    started, checked, test_line, done = signed(job_plan, protocol.Started(), CHECKED, report("t0"), protocol.Done())
    builder = TranscriptBuilder(job_plan)
    assert builder.feed(frame(1, started + checked + test_line[:10])) is None
    assert builder.feed(frame(2, b"a warning") + frame(1, test_line[10:])) is None
    transcript = builder.feed(frame(1, done))
    assert transcript is not None
    assert (transcript.events, transcript.ending, transcript.harness_stderr) == (
        [protocol.Started(), CHECKED, report("t0"), protocol.Done()],
        "done",
        b"a warning",
    )


def test_a_compiled_job_reports_compile_then_tests_in_order() -> None:
    job_plan = plan("c")
    compiled = protocol.CompileReport(ok=True, output=b"", time_ms=1)
    lines = signed(job_plan, protocol.Started(), compiled, report("t0"), report("t1"), protocol.Done())
    transcript = feed_lines(job_plan, lines)
    assert transcript is not None and transcript.ending == "done"


def test_a_failed_compilation_ends_at_done() -> None:
    job_plan = plan("c")
    failed = protocol.CompileReport(ok=False, output=b"error", time_ms=1)
    transcript = feed_lines(job_plan, signed(job_plan, protocol.Started(), failed, protocol.Done()))
    assert transcript is not None and transcript.ending == "done"


def test_a_signed_failure_ends_the_transcript() -> None:
    job_plan = plan()
    lines = signed(job_plan, protocol.Started(), protocol.Failure("harness_error", "no"))
    transcript = feed_lines(job_plan, lines)
    assert transcript is not None and transcript.ending == "failure"


def test_the_harness_reporting_tampering_ends_the_job_as_the_programs_doing() -> None:
    job_plan = plan(tests=3)
    tampered = protocol.Failure(protocol.FAILURE_TAMPERED, "RLIMIT_MSGQUEUE changed")
    transcript = feed_lines(job_plan, signed(job_plan, protocol.Started(), CHECKED, report("t0"), tampered))
    assert transcript is not None and transcript.ending == "tampered"
    assert transcript.events == [protocol.Started(), CHECKED, report("t0")]
    # Not a failure of the sandbox (which would be retried): the tests after it are stopped.
    result = to_result(job_plan, transcript, oom_killed=False)
    assert [(t.name, t.status) for t in result.tests] == [
        ("t0", "ok"),
        ("t1", "runtime_error"),
        ("t2", "runtime_error"),
    ]
    assert b"interfered with the sandbox's supervisor" in result.tests[1].stderr


def test_an_unsigned_failure_counts_only_before_the_harness_started() -> None:
    job_plan = plan()
    unsigned = protocol.unsigned_line(protocol.Failure("bad_job", "no"))
    transcript = feed_lines(job_plan, [unsigned])
    assert transcript is not None and transcript.ending == "failure"
    # Once the harness has started, programs run: an unsigned line can only be theirs.
    transcript = feed_lines(job_plan, [*signed(job_plan, protocol.Started()), unsigned])
    assert transcript is not None and transcript.ending == "tampered"
    assert transcript.events == [protocol.Started()]


def forged_transcripts() -> dict[str, tuple[JobPlan, list[bytes]]]:
    python, c = plan(), plan("c")
    wrong_key = protocol.EventSigner(bytes(protocol.KEY_BYTES))
    started = signed(python, protocol.Started())
    stale = protocol.Failure(protocol.FAILURE_VERSION_MISMATCH, "forged")
    return {
        # What a program writes into the stream, as the review did through /proc/1/fd/1.
        "plain event line": (python, [*started, protocol.encode_event(report("t0"))]),
        "unsigned version mismatch": (python, [*started, protocol.unsigned_line(stale)]),
        "another key": (python, [*started, wrong_key.line(report("t0"))]),
        "replayed line": (python, [*started, *started]),
        "garbage": (python, [*started, b"Hello from the pygame community\n"]),
        "nothing signed first": (python, signed(python, report("t0"))),
        "tests out of order": (python, signed(python, protocol.Started(), report("t1"))),
        "a test not asked for": (python, signed(python, protocol.Started(), report("t0"), report("t0"))),
        "done too early": (python, signed(python, protocol.Started(), report("t0"), protocol.Done())),
        "a test before compiling": (c, signed(c, protocol.Started(), report("t0"))),
        "compiled twice": (
            c,
            signed(
                c,
                protocol.Started(),
                protocol.CompileReport(ok=True, output=b"", time_ms=1),
                protocol.CompileReport(ok=True, output=b"x", time_ms=1),
            ),
        ),
    }


@pytest.mark.parametrize("case", forged_transcripts())
def test_a_line_the_harness_did_not_send_in_its_place_ends_the_conversation(case: str) -> None:
    job_plan, lines = forged_transcripts()[case]
    transcript = feed_lines(job_plan, lines)
    assert transcript is not None and transcript.ending == "tampered"


def test_more_than_the_plan_allows_is_refused() -> None:
    builder = TranscriptBuilder(plan())
    with pytest.raises(InfraError) as caught:
        builder.feed(frame(2, b"x" * (builder_limit(plan()) + 1)))
    assert caught.value.code == "sandbox_protocol"


def builder_limit(job_plan: JobPlan) -> int:
    return job_plan.max_transcript_bytes


def test_a_signed_line_that_does_not_parse_is_the_harness_failing() -> None:
    job_plan = plan()
    key = job_plan.job.key
    body = b"not json"
    mac = hmac.new(key, b"1\n" + body, hashlib.sha256).hexdigest().encode()
    with pytest.raises(InfraError) as caught:
        feed_lines(job_plan, [*signed(job_plan, protocol.Started()), mac + b" " + body + b"\n"])
    assert caught.value.code == "sandbox_protocol"


def test_each_tests_input_is_asked_for_only_once_the_harness_is_ready_for_it() -> None:
    python = plan()
    builder = TranscriptBuilder(python)
    started, checked, first, second = signed(python, protocol.Started(), CHECKED, report("t0"), report("t1"))
    builder.feed(frame(1, started))
    assert builder.inputs_wanted == []  # not before the syntax check
    builder.feed(frame(1, checked))
    assert builder.inputs_wanted == [0]
    builder.feed(frame(1, first))
    assert builder.inputs_wanted == [0, 1]
    builder.feed(frame(1, second))
    assert builder.inputs_wanted == [0, 1]  # no third test

    compiled, failed = plan("c"), plan("c")
    for job_plan, ok, wanted in ((compiled, True, [0]), (failed, False, [])):
        builder = TranscriptBuilder(job_plan)
        started_line = signed(job_plan, protocol.Started())[0]
        builder.feed(frame(1, started_line))
        assert builder.inputs_wanted == []  # not before compiling
        signer = protocol.EventSigner(job_plan.job.key)
        signer.line(protocol.Started())
        builder.feed(frame(1, signer.line(protocol.CompileReport(ok=ok, output=b"", time_ms=1))))
        assert builder.inputs_wanted == wanted
