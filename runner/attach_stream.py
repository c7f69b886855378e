"""Reading a sandbox's attach stream: Docker's frames, then the harness's protocol lines.

With no TTY, Docker multiplexes a container's stdout and stderr into frames: an 8-byte header
(stream id, three zero bytes, big-endian payload length), then the payload. The harness writes
protocol lines to stdout; its stderr only ever carries a crash report. Every buffer here is
bounded: the host never takes the container's word for how much it will say.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from runner import engine
from runner.executor import InfraError
from runner.sandbox_job import Ending, Transcript
from sandbox import protocol

_HEADER = struct.Struct(">BxxxL")
_STDOUT = 1
_STDERR = 2
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

    def __init__(self, max_bytes: int, max_line_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._received = 0
        self._demux = StreamDemux()
        self._lines = LineSplitter(max_line_bytes)
        self.events: list[protocol.Event] = []
        self.harness_stderr = bytearray()

    def feed(self, data: bytes) -> Transcript | None:
        """Take more bytes; returns the transcript once the harness said its last word."""
        self._received += len(data)
        if self._received > self._max_bytes:
            raise InfraError(engine.SANDBOX_PROTOCOL, f"the sandbox sent more than {self._max_bytes} bytes")
        for stream, payload in self._demux.feed(data):
            if stream == _STDERR:
                self.harness_stderr += payload[: max(0, _STDERR_KEEP - len(self.harness_stderr))]
            elif stream == _STDOUT:
                for line in self._lines.feed(payload):
                    try:
                        event = protocol.decode_event(line)
                    except protocol.ProtocolError as exc:
                        raise InfraError(engine.SANDBOX_PROTOCOL, f"the sandbox broke the protocol: {exc}") from exc
                    self.events.append(event)
                    if isinstance(event, protocol.Done | protocol.Failure):
                        return self.finish("done" if isinstance(event, protocol.Done) else "failure")
        return None

    def finish(self, ending: Ending) -> Transcript:
        return Transcript(events=list(self.events), ending=ending, harness_stderr=bytes(self.harness_stderr))
