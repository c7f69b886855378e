"""The harness's own resource limits and scheduling attributes, which every program inherits.

Programs run as the harness's uid, and the kernel lets a process of the same uid set another's
resource limits, nice value, CPU affinity and scheduling policy. The seccomp profile allows that
only on the caller itself (sandbox/recipe/derive-seccomp.py); this is the check behind it. The
harness records its own at its start and compares at the start of every job and after every
program (compiler or test run), once nothing of it is alive: a change means a program got past the
profile, and the next program would inherit what it wrote there, perhaps a hidden test's input.
So the harness runs nothing more and tells the host the sandbox was tampered with
(sandbox/harness/job.py), which ends the job as the program's doing.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import resource
from dataclasses import dataclass

# Reversed, so RLIMIT_NOFILE wins over its alias RLIMIT_OFILE. (Python names no RLIMIT_LOCKS.)
_RLIMIT_NAMES = {
    getattr(resource, name): name
    for name in sorted((name for name in dir(resource) if name.startswith("RLIMIT_")), reverse=True)
}


@dataclass(frozen=True)
class State:
    rlimits: tuple[tuple[int, int], ...]  # (soft, hard) of every limit there is, by number
    nice: int
    affinity: frozenset[int]
    policy: int  # with SCHED_RESET_ON_FORK when that is set
    priority: int  # the real-time priority of the policy


def read() -> State:
    return State(
        rlimits=_rlimits(),
        nice=os.getpriority(os.PRIO_PROCESS, 0),
        affinity=frozenset(os.sched_getaffinity(0)),
        policy=os.sched_getscheduler(0),
        priority=os.sched_getparam(0).sched_priority,
    )


def _rlimits() -> tuple[tuple[int, int], ...]:
    limits: list[tuple[int, int]] = []
    while True:
        try:
            limits.append(resource.getrlimit(len(limits)))
        except ValueError:  # past the last one the system has
            return tuple(limits)


_recorded: State | None = None


def record() -> None:
    """At the harness's start, before any program ran."""
    global _recorded
    _recorded = read()


def recorded() -> State:
    if _recorded is None:
        raise RuntimeError("the harness's state was not recorded at its start")
    return _recorded


def changes(before: State, now: State) -> list[str]:
    """What differs, by name."""
    found = [
        _RLIMIT_NAMES.get(number, f"resource limit {number}")
        for number, (old, new) in enumerate(itertools.zip_longest(before.rlimits, now.rlimits))
        if old != new
    ]
    found += [
        field.name
        for field in dataclasses.fields(State)
        if field.name != "rlimits" and getattr(before, field.name) != getattr(now, field.name)
    ]
    return found


class Tampered(Exception):
    """The harness is no longer as it started: a program changed it."""


def check() -> None:
    """Raises Tampered when the harness is no longer as it started. Call it with no program
    running, so nothing changes it between the check and the next program's start."""
    if changed := changes(recorded(), read()):
        raise Tampered(f"the harness's own attributes changed since it started: {', '.join(changed)}")
