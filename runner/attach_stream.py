"""Reading a sandbox's attach stream: Docker's frames, then the harness's protocol lines.

With no TTY, Docker multiplexes a container's stdout and stderr into frames: an 8-byte header
(stream id, three zero bytes, big-endian payload length), then the payload. The harness writes
protocol lines to stdout; its stderr only ever carries a crash report. Every buffer here is
bounded: the host never takes the container's word for how much it will say.

Each line must be the harness's signed word, and come in the order the job asks for: started, the
compile report (compiled languages), one report per test in the job's order, done. The first line
that is not ends the conversation as "tampered": only a program that got at the stream can cause
it, so nothing after it is believed.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterator

from runner import engine
from runner.cgroup_meter import TestUsage
from runner.executor import InfraError
from runner.sandbox_job import Ending, JobPlan, Transcript
from sandbox import protocol

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">BxxxL")
STDOUT = 1
STDERR = 2
_STDERR_KEEP = 16 * 1024


class StreamDemux:
    """Splits the raw attach stream into (stream id, payload) frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        self._buffer += data
        while len(self._buffer) >= _HEADER.size:
            stream, size = _HEADER.unpack_from(self._buffer)
            end = _HEADER.size + size
            if len(self._buffer) < end:
                return
            payload = bytes(self._buffer[_HEADER.size : end])
            del self._buffer[:end]
            yield stream, payload


class LineSplitter:
    """Cuts a byte stream into lines, none longer than max_line_bytes."""

    def __init__(self, max_line_bytes: int) -> None:
        self._max = max_line_bytes
        self._partial = bytearray()
        self._scanned = 0  # bytes of _partial already known to hold no newline

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._partial += data
        while (newline := self._partial.find(b"\n", self._scanned)) != -1:
            line = bytes(self._partial[:newline])
            del self._partial[: newline + 1]
            self._scanned = 0
            yield line
        self._scanned = len(self._partial)
        if self._scanned > self._max:
            raise InfraError(engine.SANDBOX_PROTOCOL, f"the sandbox sent a line over {self._max} bytes")


class TranscriptBuilder:
    """Collects one job's events from raw attach-stream bytes, within the plan's bounds."""

    def __init__(self, plan: JobPlan, measure: Callable[[], TestUsage | None] | None = None) -> None:
        """measure(): what the container's cgroup counted for the test just reported."""
        self._measure = measure
        self.usages: list[TestUsage | None] = []
        self._max_bytes = plan.max_transcript_bytes
        self._received = 0
        self._demux = StreamDemux()
        self._lines = LineSplitter(plan.max_event_bytes)
        self._verifier = protocol.EventVerifier(plan.job.key)
        self._order = _Order(plan.job)
        self.events: list[protocol.Event] = []
        self.harness_stderr = bytearray()
        # Tests whose stdin the harness now waits for (it asks for one at a time).
        self.inputs_wanted: list[int] = []

    def feed(self, data: bytes) -> Transcript | None:
        """Take more bytes; returns the transcript once the harness said its last word, or once
        a line came that the harness did not send."""
        self._received += len(data)
        if self._received > self._max_bytes:
            raise InfraError(engine.SANDBOX_PROTOCOL, f"the sandbox sent more than {self._max_bytes} bytes")
        for stream, payload in self._demux.feed(data):
            if stream == STDERR:
                self.harness_stderr += payload[: max(0, _STDERR_KEEP - len(self.harness_stderr))]
            elif stream == STDOUT:
                for line in self._lines.feed(payload):
                    try:
                        event = self._verifier.event(line)
                        self._order.check(event)
                    except protocol.ForgedLine:
                        return self.finish("tampered")
                    except protocol.ProtocolError as exc:
                        raise InfraError(engine.SANDBOX_PROTOCOL, f"the sandbox broke the protocol: {exc}") from exc
                    if isinstance(event, protocol.Failure) and event.code == protocol.FAILURE_TAMPERED:
                        # The harness's word that a program changed its state: as good as a forgery.
                        log.warning("the sandbox was tampered with: %s", event.message)
                        return self.finish("tampered")
                    self.events.append(event)
                    if isinstance(event, protocol.TestReport):
                        self.usages.append(self._measure() if self._measure else None)
                    if (index := self._order.input_wanted()) is not None:
                        self.inputs_wanted.append(index)
                    if isinstance(event, protocol.Done | protocol.Failure):
                        return self.finish("done" if isinstance(event, protocol.Done) else "failure")
        return None

    def finish(self, ending: Ending) -> Transcript:
        return Transcript(list(self.events), ending, bytes(self.harness_stderr), list(self.usages))


class _Order:
    """What the harness may say next, for one job."""

    def __init__(self, job: protocol.Job) -> None:
        self._job = job
        self._started = False
        self._compiled = job.compile is None
        self._compile_failed = False
        self._tests_reported = 0
        self._asked = 0  # inputs handed out so far

    def input_wanted(self) -> int | None:
        """The test whose stdin the harness waits for after the last event checked, if any."""
        if not self._started or not self._compiled or self._compile_failed or self._asked > self._tests_reported:
            return None
        if self._tests_reported >= len(self._job.tests):
            return None
        self._asked += 1
        return self._tests_reported

    def check(self, event: protocol.Event) -> None:
        """Raises ForgedLine when event is not what may come now."""
        if isinstance(event, protocol.Failure):
            return  # the harness may give up at any point
        if not self._started:
            self._started = isinstance(event, protocol.Started)
            if not self._started:
                raise protocol.ForgedLine("the harness must say it started first")
            return
        tests = self._job.tests
        if isinstance(event, protocol.CompileReport) and not self._compiled:
            self._compiled = True
            self._compile_failed = not event.ok
        elif isinstance(event, protocol.TestReport) and self._compiled and not self._compile_failed:
            if event.status == protocol.STATUS_STOPPED:
                raise protocol.ProtocolError("only a live program is stopped by the host")
            if self._tests_reported >= self._asked or event.name != tests[self._tests_reported]:
                raise protocol.ForgedLine(f"a report on {event.name!r} out of order")
            self._tests_reported += 1
        elif isinstance(event, protocol.Done):
            if not (self._compile_failed or (self._compiled and self._tests_reported == len(tests))):
                raise protocol.ForgedLine("done before the job was")
        else:
            raise protocol.ForgedLine(f"{type(event).__name__} out of order")
