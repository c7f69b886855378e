"""A program cannot pass its own failure off as a lost sandbox (runner.sandbox_container:
Launcher.stopped_oom_killed).

A stream that ends before the harness's last word while the container still runs is the host's
failure: the job is run again, on the host's bill, and ends `failed` after its retries. So no
program may end the stream with its container running, or keep a container running after the
harness died. The engine ends a container's attach stream only once the container stopped (its
PID 1, the harness, died and the kernel killed everything else in its namespace with it), and
nothing a program can reach holds the stream or the harness: each attack below ends as the
program's own verdict, never as an InfraError.
"""

from __future__ import annotations

import asyncio
from textwrap import dedent

import pytest

from runner.docker_executor import DockerExecutor
from runner.executor import ExecRequest, TestInput
from tests.sandbox.conftest import Run

pytestmark = pytest.mark.docker

# Programs are first in line for the OOM killer (oom_score_adj 1000), but a process may lower its
# own score back to the 0 it started from. Memory parked in System V segments no process holds is
# nobody's to free, so the OOM killer's only choice left is the biggest process at score 0: the
# harness.
KILL_THE_HARNESS = dedent("""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmat.restype = ctypes.c_void_p
    libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
    libc.shmdt.argtypes = [ctypes.c_void_p]
    with open('/proc/self/oom_score_adj', 'w') as adj:
        adj.write('0')
    SEGMENT = 1 << 20
    while True:
        address = libc.shmat(libc.shmget(0, SEGMENT, 0o1000 | 0o600), None, 0)
        ctypes.memset(address, 1, SEGMENT)
        libc.shmdt(address)
""")
OUT_OF_MEMORY = b"[the sandbox ran out of memory and was stopped]\n"


async def test_a_harness_killed_for_memory_a_program_parked_is_memory_limit(run: Run) -> None:
    """The stream ends because the container stopped: the program's doing, judged on the
    engine's OOM word, never sandbox_lost."""
    result = await run(KILL_THE_HARNESS, stdins=[b"", b""], memory_limit_mb=64)
    assert [(t.status, t.stderr) for t in result.tests] == [("memory_limit", OUT_OF_MEMORY)] * 2, result


async def test_processes_cannot_keep_the_sandbox_up_once_the_harness_died(run: Run) -> None:
    """Daemons in their own sessions, stopped ones, and zombies die with the harness: the kernel
    kills the whole namespace with its PID 1, so the container stops and the stream's end is the
    program's doing. (The fixture checks no process outlived the container.)"""
    linger = dedent("""
        import os, signal, subprocess, time
        with open('/proc/self/oom_score_adj', 'w') as adj:
            adj.write('0')  # the children too, so the OOM killer spares them for the harness
        for _ in range(4):
            subprocess.Popen(['sleep', '1000'], start_new_session=True, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stopped = subprocess.Popen(['sleep', '1000'], start_new_session=True)
        os.kill(stopped.pid, signal.SIGSTOP)
        if os.fork() == 0:  # a zombie: its parent below never waits for it
            os._exit(0)
        if os.fork() == 0:
            os.setsid()
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            os.execvp('python3', ['python3', '-c', KILL])
        time.sleep(60)
    """).replace("KILL", repr(KILL_THE_HARNESS))
    result = await run(linger, stdins=[b"", b""], memory_limit_mb=64, time_limit_ms=5000)
    assert [(t.status, t.stderr) for t in result.tests] == [("memory_limit", OUT_OF_MEMORY)] * 2, result


async def test_a_program_cannot_end_the_stream_while_its_sandbox_runs(run: Run) -> None:
    """Everything a program can do to the harness and the streams: write into the harness's
    stdout or close its stdin, signal it and every other process it may (the fork server's zygote
    too), close its own descriptors, then sleep. The harness stops it at its wall deadline and
    reports; the stream never ends early."""
    attack = dedent("""
        import os, signal
        seen = []
        for name, flags in (('fd/1', os.O_WRONLY), ('fd/2', os.O_WRONLY), ('fd/0', os.O_RDONLY)):
            try:
                os.close(os.open(f'/proc/1/{name}', flags | os.O_NONBLOCK))
                seen.append('opened')
            except OSError:
                seen.append('denied')
        for sig in (signal.SIGSTOP, signal.SIGKILL, signal.SIGTERM, signal.SIGPIPE):
            os.kill(1, sig)  # the kernel drops them: PID 1 has no handler
        seen.append(open('/proc/1/stat').read().rpartition(')')[2].split()[0])
        print(seen, flush=True)
        os.kill(-1, signal.SIGSTOP)  # every other process of the uid but PID 1
        for fd in (0, 1, 2):
            os.close(fd)
        signal.pause()
    """)
    result = await run(attack, stdins=[b"", b""], time_limit_ms=500)
    seen = b"['denied', 'denied', 'denied', 'S']\n"  # PID 1 still sleeping, not stopped
    assert [(t.status, t.stdout) for t in result.tests] == [("time_limit", seen)] * 2, result


async def test_a_harness_killed_in_one_sandbox_leaves_other_jobs_alone(executor: DockerExecutor) -> None:
    """One student's harness dies while another student's job runs beside it: the other job's
    verdict and its warm sandbox are untouched."""

    def job(code: str, owner: str) -> ExecRequest:
        return ExecRequest(language="python", code=code, tests=[TestInput("t0", b"")], memory_limit_mb=64, owner=owner)

    bystander = "import time\ntime.sleep(1.5)\nprint('fine')\n"
    attacked, beside = await asyncio.gather(
        executor.execute(job(KILL_THE_HARNESS, "attacker")), executor.execute(job(bystander, "bystander"))
    )
    assert [(t.status, t.stderr) for t in attacked.tests] == [("memory_limit", OUT_OF_MEMORY)]
    assert [(t.status, t.stdout) for t in beside.tests] == [("ok", b"fine\n")]
    again = await executor.execute(job("print('again')", "bystander"))
    assert again.sandbox_id == beside.sandbox_id  # its warm sandbox was kept
    assert [(t.status, t.stdout) for t in again.tests] == [("ok", b"again\n")]
