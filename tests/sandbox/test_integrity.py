"""The harness's check of its own limits and priorities, run on the host without Docker.

In the sandbox the seccomp profile keeps programs from changing them at all, so here the readings
are faked: a change that got past the profile must still stop the job.
"""

from __future__ import annotations

import dataclasses
import os
import resource
from collections.abc import Callable

import pytest

from sandbox.harness import integrity


@pytest.fixture
def start(monkeypatch: pytest.MonkeyPatch) -> integrity.State:
    monkeypatch.setattr(integrity, "_recorded", None)
    integrity.record()
    return integrity.recorded()


def test_the_state_it_started_in_passes(start: integrity.State) -> None:
    integrity.check()
    assert start.nice == os.getpriority(os.PRIO_PROCESS, 0)
    assert start.rlimits[resource.RLIMIT_MSGQUEUE] == resource.getrlimit(resource.RLIMIT_MSGQUEUE)
    assert len(start.rlimits) == 16  # Linux's RLIM_NLIMITS: RLIMIT_LOCKS too, which Python does not name


def with_rlimit(state: integrity.State, number: int, limit: tuple[int, int]) -> integrity.State:
    rlimits = list(state.rlimits)
    rlimits[number] = limit
    return dataclasses.replace(state, rlimits=tuple(rlimits))


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda s: with_rlimit(s, resource.RLIMIT_MSGQUEUE, (83 << 10, 83 << 10)), "RLIMIT_MSGQUEUE"),
        (lambda s: with_rlimit(s, resource.RLIMIT_STACK, (s.rlimits[3][0], 1 << 20)), "RLIMIT_STACK"),
        (lambda s: with_rlimit(s, 10, (3, 3)), "resource limit 10"),  # RLIMIT_LOCKS
        (lambda s: dataclasses.replace(s, nice=s.nice + 3), "nice"),
        (lambda s: dataclasses.replace(s, affinity=s.affinity ^ {0}), "affinity"),
        (lambda s: dataclasses.replace(s, policy=os.SCHED_BATCH), "policy"),
        (lambda s: dataclasses.replace(s, priority=1), "priority"),
    ],
)
def test_any_change_is_reported_as_tampering(
    start: integrity.State,
    monkeypatch: pytest.MonkeyPatch,
    change: Callable[[integrity.State], integrity.State],
    named: str,
) -> None:
    monkeypatch.setattr(integrity, "read", lambda: change(start))
    with pytest.raises(integrity.Tampered) as caught:
        integrity.check()
    assert str(caught.value).endswith(f": {named}")


def test_without_a_record_nothing_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(integrity, "_recorded", None)
    with pytest.raises(RuntimeError):
        integrity.check()
