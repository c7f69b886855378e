"""Reading the attach stream: Docker's frames and the harness's lines, without Docker."""

from __future__ import annotations

import struct

import pytest

from runner.attach_stream import LineSplitter, StreamDemux, TranscriptBuilder
from runner.executor import InfraError
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


def test_a_transcript_ends_with_the_harness_last_word() -> None:
    report = protocol.TestReport("t", "ok", 0, None, 5, b"\xffout", b"", False)
    builder = TranscriptBuilder(max_bytes=10_000, max_line_bytes=1000)
    line = protocol.encode_event(report)
    assert builder.feed(frame(1, line[:10])) is None
    assert builder.feed(frame(2, b"a warning") + frame(1, line[10:])) is None
    transcript = builder.feed(frame(1, protocol.encode_event(protocol.Done())))
    assert transcript is not None
    assert (transcript.events, transcript.ending, transcript.harness_stderr) == (
        [report, protocol.Done()],
        "done",
        b"a warning",
    )


def test_a_failure_also_ends_the_transcript() -> None:
    builder = TranscriptBuilder(max_bytes=10_000, max_line_bytes=1000)
    transcript = builder.feed(frame(1, protocol.encode_event(protocol.Failure("bad_job", "no"))))
    assert transcript is not None and transcript.ending == "failure"


def test_more_than_the_plan_allows_is_refused() -> None:
    builder = TranscriptBuilder(max_bytes=100, max_line_bytes=1000)
    with pytest.raises(InfraError) as caught:
        builder.feed(frame(2, b"x" * 200))
    assert caught.value.code == "sandbox_protocol"


def test_garbage_on_stdout_is_a_protocol_error() -> None:
    builder = TranscriptBuilder(max_bytes=1000, max_line_bytes=1000)
    with pytest.raises(InfraError) as caught:
        builder.feed(frame(1, b"Hello from the pygame community\n"))
    assert caught.value.code == "sandbox_protocol"
