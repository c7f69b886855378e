"""What a program's process gets before the program's first instruction: its resource limits and
its place behind the harness. Applied by the harness's own forked child before exec, and by the
fork server's child before it runs the program: both paths must give a program the same process.

Imports only `math`, `os` and `resource`: the fork server's zygote imports this module too, and
removes everything it imported before a program runs.
"""

from __future__ import annotations

import math
import os
import resource

# A program starts as the kernel OOM killer's first pick when the container runs out of memory.
# It owns its /proc files, so it can lower its own score again and get the harness killed instead:
# the host then reads OOMKilled from the engine and judges the same memory_limit, for that job only
# (tests/sandbox/test_attacks_lost_stream.py).
_OOM_SCORE_ADJ = b"1000"
# Programs run niced within the container's CPU share, so the harness, which keeps the wall
# deadline, is never starved by them (a fork bomb is 128 runnable processes).
_PROGRAM_NICENESS = 10


def apply_limits(cpu_ms: int, address_space_bytes: int | None, file_size_bytes: int, open_files: int) -> None:
    cpu_seconds = max(1, math.ceil(cpu_ms / 1000))
    # The soft limit sends SIGXCPU; the hard one a second later is a SIGKILL for programs that
    # catch SIGXCPU.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    if address_space_bytes is not None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space_bytes, address_space_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_bytes, file_size_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def step_back() -> None:
    """First in line for the OOM killer (unless the program undoes it), last for the CPU. The
    process must be dumpable: its /proc files are root's otherwise."""
    with open("/proc/self/oom_score_adj", "wb") as adj:
        adj.write(_OOM_SCORE_ADJ)
    os.nice(_PROGRAM_NICENESS)
