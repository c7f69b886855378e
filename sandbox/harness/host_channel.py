"""What the host sends the harness, read from the container's stdin without read-ahead.

Job frames, test inputs and a live job's frames share one stream, and a live job's frames are
waited for with select() beside the program's pipes: a buffered reader could hold bytes select()
never sees, or swallow the start of the next job's frame. So every read takes exactly the bytes of
one frame from the unbuffered descriptor.
"""

from __future__ import annotations

import sys
from typing import BinaryIO, cast

from sandbox import protocol

_MAX_JOB_BYTES = 1 << 30
# A live frame carries a line a person typed or a key they pressed: small.
_MAX_LIVE_BYTES = 1 << 20


class HostChannel:
    def __init__(self, stream: BinaryIO | None = None) -> None:
        # FileIO, not its buffer: readline() takes a byte at a time, read(n) at most n.
        self._stream = stream if stream is not None else cast(BinaryIO, sys.stdin.buffer.raw)  # type: ignore[attr-defined]

    def fileno(self) -> int:
        return self._stream.fileno()

    def next_job(self) -> protocol.Job | None:
        return protocol.read_job(self._stream, _MAX_JOB_BYTES)

    def next_input(self) -> bytes:
        return protocol.read_input(self._stream, _MAX_JOB_BYTES)

    def next_live(self) -> protocol.LiveMessage:
        return protocol.read_live(self._stream, _MAX_LIVE_BYTES)
