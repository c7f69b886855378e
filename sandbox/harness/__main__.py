"""Entry point inside the container: `python3 -m sandbox.harness`, one job, then exit."""

from __future__ import annotations

import sys
import traceback
from typing import BinaryIO

from sandbox import protocol
from sandbox.harness import shield
from sandbox.harness.job import run_job

_MAX_JOB_BYTES = 1 << 30
_TRACEBACK_CHARS = 4000


def _emit(out: BinaryIO, event: protocol.Event) -> None:
    out.write(protocol.encode_event(event))
    out.flush()


def main() -> int:
    out = sys.stdout.buffer
    try:
        shield.shield_harness()
        job = protocol.read_job(sys.stdin.buffer, _MAX_JOB_BYTES)
    except protocol.VersionMismatch as exc:
        _emit(out, protocol.Failure(protocol.FAILURE_VERSION_MISMATCH, str(exc)))
        return 2
    except protocol.ProtocolError as exc:
        _emit(out, protocol.Failure(protocol.FAILURE_BAD_JOB, str(exc)))
        return 2
    try:
        for event in run_job(job):
            _emit(out, event)
    except Exception:  # any fault of the harness is reported, never a silent exit
        _emit(out, protocol.Failure(protocol.FAILURE_HARNESS_ERROR, traceback.format_exc()[-_TRACEBACK_CHARS:]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
