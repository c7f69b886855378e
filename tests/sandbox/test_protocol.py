"""The wire protocol, both directions, without Docker."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest

from sandbox import protocol
from sandbox.protocol import (
    Command,
    CompileReport,
    Done,
    Failure,
    Job,
    JobFile,
    Limits,
    ProtocolError,
    VersionMismatch,
)

LIMITS = Limits(
    cpu_ms=1000,
    wall_ms=4000,
    memory_bytes=256 << 20,
    address_space_bytes=None,
    file_size_bytes=1 << 20,
    open_files=64,
    output_bytes=1 << 20,
)
JOB = Job(
    key=bytes(range(protocol.KEY_BYTES)),
    source_name="main.py",
    source="print('héllo 🎉')\n".encode(),
    run=Command(("python3", "main.py"), LIMITS),
    tests=("first", "zweite ü"),
    env={"LANG": "C.UTF-8"},
    compile=Command(("gcc", "main.c"), LIMITS),
    files=(JobFile("data.bin", bytes(range(256))),),
    memory_markers=("MemoryError",),
    fork_server=True,
)


def test_a_job_survives_the_round_trip() -> None:
    assert protocol.read_job(io.BytesIO(protocol.encode_job(JOB)), max_bytes=1 << 20) == JOB


def test_a_job_frame_needs_no_end_of_file() -> None:
    # The harness reads exactly the announced length: whatever follows stays unread.
    stream = io.BytesIO(protocol.encode_job(JOB) + b"trailing")
    assert protocol.read_job(stream, max_bytes=1 << 20) == JOB
    assert stream.read() == b"trailing"


@pytest.mark.parametrize(
    "event",
    [
        CompileReport(ok=False, output=b"main.c:1: error \xff", time_ms=120),
        protocol.TestReport("t1", "ok", 0, None, 12, b"\x00\xff\xfe", "ünï".encode(), False),
        protocol.TestReport("t2", "time_limit", None, 9, 3000, b"", b"", True),
        Done(),
        protocol.Started(),
        Failure("harness_error", "Traceback ..."),
    ],
)
def test_events_survive_the_round_trip(event: protocol.Event) -> None:
    line = protocol.encode_event(event)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert protocol.decode_event(line) == event


def test_another_version_is_a_version_mismatch() -> None:
    version = protocol.PROTOCOL_VERSION
    frame = protocol.encode_job(JOB).replace(b"LABRUNNER-JOB %d " % version, b"LABRUNNER-JOB %d " % (version + 1), 1)
    with pytest.raises(VersionMismatch):
        protocol.read_job(io.BytesIO(frame), max_bytes=1 << 20)


@pytest.mark.parametrize(
    "frame",
    [
        b"\n",
        b"HELLO 1 10\n0123456789",
        b"LABRUNNER-JOB 1 x\n",
        b"LABRUNNER-JOB 1 100\n{}",  # cut short
        b"LABRUNNER-JOB 1 2\n{}",  # valid JSON, not a job
        b"LABRUNNER-JOB 1 3\n[1]",
    ],
)
def test_malformed_frames_are_rejected(frame: bytes) -> None:
    with pytest.raises(ProtocolError):
        protocol.read_job(io.BytesIO(frame), max_bytes=1 << 20)


def test_end_of_file_before_a_frame_means_no_more_jobs() -> None:
    stream = io.BytesIO(protocol.encode_job(JOB))
    assert protocol.read_job(stream, max_bytes=1 << 20) == JOB
    assert protocol.read_job(stream, max_bytes=1 << 20) is None


def test_an_oversized_job_is_rejected_before_it_is_read() -> None:
    frame = protocol.encode_job(JOB)
    with pytest.raises(ProtocolError, match="limit"):
        protocol.read_job(io.BytesIO(frame), max_bytes=100)


@pytest.mark.parametrize(
    "line",
    [
        b"not json",
        b'{"type": "mystery"}',
        b'{"type": "test", "name": "t", "status": "accepted", "exit_code": 0, "signal": null,'
        b' "time_ms": 1, "stdout": "", "stderr": "", "truncated": false}',
        b'{"type": "compile", "ok": true, "output": "!!not base64!!", "time_ms": 1}',
        b'{"type": "compile", "ok": true, "output": "", "time_ms": true}',
        b'{"type": "failure", "code": 3, "message": "x"}',
        b"[]",
    ],
)
def test_malformed_events_are_rejected(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        protocol.decode_event(line)


def test_signed_lines_verify_in_order_and_only_with_the_key() -> None:
    signer = protocol.EventSigner(JOB.key)
    lines = [signer.line(event)[:-1] for event in (protocol.Started(), Done())]
    verifier = protocol.EventVerifier(JOB.key)
    assert [verifier.event(line) for line in lines] == [protocol.Started(), Done()]
    with pytest.raises(protocol.ForgedLine):
        protocol.EventVerifier(bytes(protocol.KEY_BYTES)).event(lines[0])
    with pytest.raises(protocol.ForgedLine):
        protocol.EventVerifier(JOB.key).event(lines[1])  # right line, wrong place
    tampered = lines[0].replace(b"started", b"done___")
    with pytest.raises(protocol.ForgedLine):
        protocol.EventVerifier(JOB.key).event(tampered)


def test_a_job_without_a_proper_key_is_rejected() -> None:
    frame = protocol.encode_job(replace(JOB, key=b"short"))
    with pytest.raises(ProtocolError, match="key"):
        protocol.read_job(io.BytesIO(frame), max_bytes=1 << 20)


@pytest.mark.parametrize("stdin", [b"", b"\xff\x00binary\x80", "ünïcode\n".encode(), b"x" * 100_000])
def test_a_tests_input_survives_its_frame(stdin: bytes) -> None:
    stream = io.BytesIO(protocol.encode_input(stdin) + protocol.encode_input(b"next"))
    assert protocol.read_input(stream, max_bytes=1 << 20) == stdin
    assert protocol.read_input(stream, max_bytes=1 << 20) == b"next"


@pytest.mark.parametrize(
    "frame",
    [b"", b"LABRUNNER-JOB 3 1\nx", b"LABRUNNER-INPUT x\n", b"LABRUNNER-INPUT 10\nshort", b"LABRUNNER-INPUT 9999\n"],
)
def test_malformed_input_frames_are_rejected(frame: bytes) -> None:
    with pytest.raises(ProtocolError):
        protocol.read_input(io.BytesIO(frame), max_bytes=1000)
