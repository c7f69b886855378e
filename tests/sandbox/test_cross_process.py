"""A program cannot change the harness's attributes for the next test to read back.

Programs run as the harness's uid, and for a process of the same uid the kernel allows, without
ptrace, setting another's resource limits (prlimit), nice value (setpriority, also for a whole
process group or uid), CPU affinity, scheduling policy and I/O priority. Every program inherits
these from the harness, which forks it: a hidden test set PID 1's hard RLIMIT_MSGQUEUE to a
number made of its input, and the next (visible) test read it back with getrlimit. The profile
now allows these calls only on the caller itself (pid 0); see sandbox/recipe/derive-seccomp.py.
"""

from __future__ import annotations

import json
import platform
from textwrap import dedent

import pytest

from runner import sandbox_container
from tests.sandbox.conftest import Run, profile_allowing_them_on_any_process

pytestmark = [
    pytest.mark.docker,
    # The probes call ioprio_get/ioprio_set and sched_setattr by number (Python has no wrapper).
    pytest.mark.skipif(platform.machine() != "x86_64", reason="system call numbers of x86_64"),
]

EPERM = 1

# Shared by the probes: what a program inherits from the harness, and each call's errno.
PRELUDE = dedent("""
    import ctypes, json, os, resource, sys
    libc = ctypes.CDLL(None, use_errno=True)
    IOPRIO_SET, IOPRIO_GET, SCHED_SETATTR = 251, 252, 314
    WHO_PROCESS, WHO_PGRP, WHO_USER = 1, 2, 3
    BEST_EFFORT = 2 << 13

    def errno_of(call, *args):
        try:
            result = call(*args)
        except OSError as exc:
            return exc.errno
        return ctypes.get_errno() if result == -1 else 0

    def sched_setattr(pid, policy):
        # size, policy, flags (2 words), nice (the caller's: lowering it takes a privilege)
        attr = (ctypes.c_uint32 * 14)(56, policy, 0, 0, os.getpriority(os.PRIO_PROCESS, 0))
        return libc.syscall(SCHED_SETATTR, pid, attr, 0)

    def inherited():
        names = sorted(name for name in dir(resource) if name.startswith('RLIMIT_'))
        return {
            'rlimits': {name: resource.getrlimit(getattr(resource, name)) for name in names},
            'nice': os.getpriority(os.PRIO_PROCESS, 0),
            'affinity': sorted(os.sched_getaffinity(0)),
            'policy': os.sched_getscheduler(0),
            'ioprio': libc.syscall(IOPRIO_GET, WHO_PROCESS, 0),
        }
""")

# A hidden test's input, written into PID 1's attributes; a visible test reads what it inherited.
COURIER = PRELUDE + dedent("""
    data = sys.stdin.read().strip()
    if data.startswith('secret'):
        value = ord(data[-1])
        print(json.dumps({
            'prlimit': errno_of(resource.prlimit, 1, resource.RLIMIT_MSGQUEUE, (value << 10, value << 10)),
            'prlimit_memlock': errno_of(resource.prlimit, 1, resource.RLIMIT_MEMLOCK, (value << 12,) * 2),
            'renice': errno_of(os.setpriority, os.PRIO_PROCESS, 1, value % 10),
            'affinity': errno_of(os.sched_setaffinity, 1, {0}),
            'scheduler': errno_of(os.sched_setscheduler, 1, os.SCHED_BATCH, os.sched_param(0)),
            'ioprio': errno_of(libc.syscall, IOPRIO_SET, WHO_PROCESS, 1, BEST_EFFORT | value % 8),
        }, sort_keys=True))
    else:
        print(json.dumps(inherited(), sort_keys=True))
""")


async def test_a_hidden_input_does_not_reach_the_next_test_through_the_harness(run: Run) -> None:
    result = await run(COURIER, stdins=[b"check", b"secret-S", b"check"])
    before, hidden, after = result.tests
    assert [t.status for t in result.tests] == ["ok"] * 3, result
    # What the next program inherits is what the first one did: nothing of the hidden input.
    assert json.loads(after.stdout) == json.loads(before.stdout), (before.stdout, after.stdout)
    assert json.loads(hidden.stdout) == dict.fromkeys(
        ("prlimit", "prlimit_memlock", "renice", "affinity", "scheduler", "ioprio"), EPERM
    ), hidden


async def test_renicing_every_process_of_the_uid_does_not_reach_the_harness(run: Run) -> None:
    # PRIO_USER with who 0 is every process of the caller's uid in its PID namespace: PID 1 too.
    courier = PRELUDE + dedent("""
        if sys.stdin.read().startswith('secret'):
            print(errno_of(os.setpriority, os.PRIO_USER, 0, 17), errno_of(os.setpriority, os.PRIO_PGRP, 0, 17))
        else:
            print(os.getpriority(os.PRIO_PROCESS, 0))
    """)
    result = await run(courier, stdins=[b"check", b"secret", b"check"])
    before, hidden, after = result.tests
    assert after.stdout == before.stdout == b"10\n", result
    assert hidden.stdout == b"1 1\n", hidden


async def test_each_call_on_another_process_is_refused(run: Run) -> None:
    # On PID 1, and on the program's own pid given as a number: the filter sees only the
    # arguments, so a program names itself with 0 (as glibc's setrlimit and Python's do).
    probe = PRELUDE + dedent("""
        found = {}
        for name, pid in (('harness', 1), ('own pid', os.getpid())):
            found[name] = [
                errno_of(resource.prlimit, pid, resource.RLIMIT_MSGQUEUE, resource.getrlimit(resource.RLIMIT_MSGQUEUE)),
                errno_of(os.setpriority, os.PRIO_PROCESS, pid, 15),
                errno_of(os.sched_setaffinity, pid, os.sched_getaffinity(0)),
                errno_of(os.sched_setscheduler, pid, os.SCHED_OTHER, os.sched_param(0)),
                errno_of(os.sched_setparam, pid, os.sched_param(0)),
                errno_of(sched_setattr, pid, os.SCHED_OTHER),
                errno_of(libc.syscall, IOPRIO_SET, WHO_PROCESS, pid, BEST_EFFORT | 4),
            ]
        found['groups'] = [
            errno_of(libc.syscall, IOPRIO_SET, WHO_PGRP, 0, BEST_EFFORT | 4),
            errno_of(libc.syscall, IOPRIO_SET, WHO_USER, os.getuid(), BEST_EFFORT | 4),
        ]
        print(json.dumps(found))
    """)
    [test] = (await run(probe)).tests
    assert json.loads(test.stdout) == {"harness": [EPERM] * 7, "own pid": [EPERM] * 7, "groups": [EPERM] * 2}, test


async def test_a_program_still_sets_its_own_limits_priority_and_affinity(run: Run) -> None:
    probe = PRELUDE + dedent("""
        cpu = min(os.sched_getaffinity(0))
        resource.setrlimit(resource.RLIMIT_STACK, (4 << 20, resource.getrlimit(resource.RLIMIT_STACK)[1]))
        old = resource.prlimit(0, resource.RLIMIT_MSGQUEUE, (4096, 4096))
        print(resource.getrlimit(resource.RLIMIT_STACK)[0] == 4 << 20, resource.getrlimit(resource.RLIMIT_MSGQUEUE))
        print(os.nice(5), os.getpriority(os.PRIO_PROCESS, 0))
        os.sched_setaffinity(0, {cpu})
        print(os.sched_getaffinity(0) == {cpu})
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
        os.sched_setparam(0, os.sched_param(0))
        print(os.sched_getscheduler(0) == os.SCHED_BATCH, errno_of(sched_setattr, 0, os.SCHED_OTHER))
        print(errno_of(libc.syscall, IOPRIO_SET, WHO_PROCESS, 0, BEST_EFFORT | 6))
        print(libc.syscall(IOPRIO_GET, WHO_PROCESS, 0) == BEST_EFFORT | 6)
        # Reading another process's attributes carries nothing into it.
        print(resource.prlimit(1, resource.RLIMIT_MSGQUEUE) == old, os.getpriority(os.PRIO_PROCESS, 1))
        print(os.sched_getaffinity(1) >= {cpu})
    """)
    c_probe = dedent("""
        #include <stdio.h>
        #include <sys/resource.h>
        #include <unistd.h>
        int main(void) {
            struct rlimit limit = {1 << 20, 1 << 20};
            int set = setrlimit(RLIMIT_MEMLOCK, &limit);
            getrlimit(RLIMIT_MEMLOCK, &limit);
            printf("%d %ld %d\\n", set, (long)limit.rlim_max, nice(3));
            return 0;
        }
    """)
    [test] = (await run(probe)).tests
    assert test.stdout == b"True (4096, 4096)\n15 15\nTrue\nTrue 0\n0\nTrue\nTrue 0\nTrue\n", test
    [test] = (await run(c_probe, "c")).tests
    assert test.stdout == b"0 1048576 13\n", test


async def test_a_change_that_got_past_the_profile_stops_the_job(
    run: Run, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The harness's own check, behind the profile: it finds its limits changed once the hidden
    # test's program is gone, and neither reports that test nor runs another.
    lenient = profile_allowing_them_on_any_process()
    monkeypatch.setattr(sandbox_container, "seccomp_profile", lambda: lenient)
    result = await run(COURIER, stdins=[b"check", b"secret-S", b"check", b"check"])
    before, *stopped = result.tests
    assert before.status == "ok", result
    assert [(t.status, t.stdout) for t in stopped] == [("runtime_error", b"")] * 3, stopped
    assert all(b"interfered with the sandbox's supervisor" in t.stderr for t in stopped), stopped
    [warning] = [r.getMessage() for r in caplog.records if "tampered" in r.getMessage()]
    # (And the affinity, on a machine with more than one CPU.)
    assert {"RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "nice", "policy"} <= set(warning.rpartition(": ")[2].split(", "))
