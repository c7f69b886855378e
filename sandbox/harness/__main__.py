"""Entry point inside the container: `python3 -m sandbox.harness`, jobs one after the other, then exit.

The harness is the container's PID 1 (the host starts it without an init): no process a program
can reach stands between it and the host's attach stream, the kernel drops every signal a program
sends it, and orphans come to it to be reaped. A container serves the jobs of one user only (the
host sees to that); between two jobs the harness restores the clean state it restores between two
tests, so a warm sandbox widens no boundary.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import BinaryIO

from sandbox import protocol
from sandbox.harness import forkserver, integrity, live, shield
from sandbox.harness.host_channel import HostChannel
from sandbox.harness.job import run_job

_TRACEBACK_CHARS = 4000


def _send(out: BinaryIO, line: bytes) -> None:
    out.write(line)
    out.flush()


def main() -> int:
    out = sys.stdout.buffer
    try:
        shield.shield_harness()
        if os.getpid() != 1:
            # Under an init, a process of the program's uid would hold the attach stream.
            raise protocol.ProtocolError("the harness must run as the container's PID 1 (start it without an init)")
        integrity.record()  # before any program ran
    except protocol.ProtocolError as exc:
        _send(out, protocol.unsigned_line(protocol.Failure(protocol.FAILURE_BAD_JOB, str(exc))))
        return 2
    server: forkserver.ForkServer | None = None
    host = HostChannel()
    while True:
        try:
            job = host.next_job()
        except protocol.VersionMismatch as exc:
            _send(out, protocol.unsigned_line(protocol.Failure(protocol.FAILURE_VERSION_MISMATCH, str(exc))))
            return 2
        except protocol.ProtocolError as exc:
            _send(out, protocol.unsigned_line(protocol.Failure(protocol.FAILURE_BAD_JOB, str(exc))))
            return 2
        if job is None:
            # The host let go. It reads the last test's cgroup figures after the report arrives,
            # so the harness stays until then: an exited container's cgroup is gone.
            return 0
        server = forkserver.ForkServer.for_job(server, job.fork_server, job.run.argv, job.env)
        if not _serve(out, job, host, server):
            return 1
        if job.live:
            live.await_end(host.next_live)


def _serve(out: BinaryIO, job: protocol.Job, host: HostChannel, server: forkserver.ForkServer | None) -> bool:
    """One job's events, signed with its own key; False when the harness itself failed."""
    signer = protocol.EventSigner(job.key)
    try:
        for event in run_job(job, host, server):
            _send(out, signer.line(event))
    except Exception:  # any fault of the harness is reported, never a silent exit
        message = traceback.format_exc()[-_TRACEBACK_CHARS:]
        _send(out, signer.line(protocol.Failure(protocol.FAILURE_HARNESS_ERROR, message)))
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
