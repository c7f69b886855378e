"""The fork server (sandbox/harness/zygote.py): programs cannot tell it from a plain
`python3 -B main.py`, and a program cannot reach a later test through the zygote.

Each conformance program runs twice through the real sandbox, with the fork server and without,
and must give byte-identical stdout, stderr, exit code, signal and verdict. The boundary tests have
a first test tamper with the zygote and a second one show that nothing of it came through.

What a program can still tell, and is not compared: the tests of one job share the zygote's
hash seed and memory layout (str hashes, set order and id() values repeat from test to test,
where fresh interpreters each draw their own); the zygote's leftovers are out of sys.modules but
not gone (gc.get_objects() counts about 600 more objects, gc.get_stats() differ, the extension
modules it loaded stay mapped in /proc/self/maps); start-up's CPU time and page faults are not
the program's (time.process_time(), getrusage()); and a graphical test's /proc/self/environ is
the job's environment, without the display and shim variables its os.environ has.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from textwrap import dedent

import docker
import pytest

from runner import sandbox_container
from runner.docker_executor import DockerExecutor
from runner.executor import ExecRequest, TestInput, TestOutcome
from runner.sandbox_settings import SandboxSettings
from tests.sandbox.conftest import INSTANCE, assert_nothing_left, profile_allowing_them_on_any_process

pytestmark = pytest.mark.docker

Seen = tuple[str, int | None, int | None, bytes, bytes, bool, int]

# What a program can see of its own process and interpreter: every line must match.
INTROSPECTION = dedent("""
    import gc, os, signal, sys, resource, warnings
    print(__name__, __file__, repr(__doc__), __package__, __spec__, __cached__)
    print(type(__loader__).__name__, __loader__.name, __loader__.path, __builtins__)
    print(sorted(globals()))
    print(sys.argv, sys.orig_argv, sys.executable)
    print(sys.path)
    print(sys.flags)
    print(sorted(sys.modules))
    print(sorted(sys.path_importer_cache))
    print(sys.getrecursionlimit(), sys.getswitchinterval(), gc.isenabled(), gc.get_threshold())
    print(warnings.filters)
    print(os.getcwd(), os.getppid(), os.getsid(0) == os.getpid(), os.getpgid(0) == os.getpid())
    print(dict(os.environ))
    print(open('/proc/self/environ', 'rb').read())
    print(open('/proc/self/cmdline', 'rb').read())
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        print(stream.name, stream.encoding, stream.errors, stream.line_buffering, stream.write_through,
              type(stream.buffer).__name__, getattr(stream.buffer, 'buffer_size', None), stream.isatty())
    print([(s, str(signal.getsignal(s))) for s in sorted(signal.valid_signals()) if s not in (32, 33)])
    print([resource.getrlimit(getattr(resource, n)) for n in sorted(dir(resource)) if n.startswith('RLIMIT_')])
    print(os.nice(0), sorted(os.sched_getaffinity(0)), os.sched_getscheduler(0))
    print(open('/proc/self/oom_score_adj').read().strip())
    status = dict(line.split(':', 1) for line in open('/proc/self/status'))
    print({key: status[key].strip() for key in ('SigBlk', 'SigIgn', 'SigCgt', 'Cpus_allowed_list', 'NoNewPrivs')})
    print(sorted(os.listdir('/proc/self/fd')))
    print(sys._getframe().f_back, len(__import__('inspect').stack()))
""")

# name -> (program, stdin of each test)
PROGRAMS: dict[str, tuple[str, Sequence[bytes]]] = {
    "introspection": (INTROSPECTION, [b""]),
    "hello": ("print('hello')\n", [b""]),
    "a_plus_b": ("a, b = map(int, input().split())\nprint(a + b)\n", [b"1 2\n", b"40 2\n"]),
    "nested_traceback": ("def f(x):\n    return g(x) + 1\n\ndef g(x):\n    return 1 / x\n\nprint(f(2))\nf(0)\n", [b""]),
    "syntax_error": ("print('unreached')\nx = (1,\nprint(x]\n", [b""]),
    "indentation_error": ("def f():\nreturn 1\n", [b""]),
    "name_error_at_top_level": ("print('before')\nprint(undefined_name)\n", [b""]),
    "import_error_in_own_module": (
        "with open('helper.py', 'w') as out:\n    out.write('def boom():\\n    raise KeyError(42)\\n')\n"
        "import helper\nhelper.boom()\n",
        [b""],
    ),
    "exit_0": ("import sys\nprint('a')\nsys.exit(0)\n", [b""]),
    "exit_3": ("import sys\nprint('a')\nsys.exit(3)\n", [b""]),
    "exit_255": ("import sys\nsys.exit(255)\n", [b""]),
    "exit_256": ("import sys\nsys.exit(256)\n", [b""]),
    "exit_text": ("import sys\nprint('out')\nsys.exit('some text')\n", [b""]),
    "exit_none": ("import sys\nsys.exit(None)\n", [b""]),
    "quit_and_exit": ("print('q')\nquit(5)\n", [b""]),
    "exit_builtin": ("print('e')\nexit()\n", [b""]),
    "os_exit_loses_buffered_output": (
        "import os\nprint('lost: stdout is a pipe, so block-buffered')\nos._exit(7)\n",
        [b""],
    ),
    "input_until_eof": ("while True:\n    line = input('> ')\n    print(line.upper())\n", [b"one\ntwo\nthree\n"]),
    "recursion_limit": (
        "import sys\ndepth = 0\ndef f():\n    global depth\n    depth += 1\n    f()\n"
        "try:\n    f()\nexcept RecursionError as exc:\n    print(depth, exc)\n"
        "def g(n):\n    return g(n + 1)\ng(0)\n",
        [b""],
    ),
    "threads": (
        "import threading, time\n"
        "def late():\n    time.sleep(0.3)\n    print('late thread', flush=False)\n"
        "def boom():\n    raise ValueError('in a thread')\n"
        "threading.Thread(target=late).start()\n"
        "threading.Thread(target=boom, name='worker').start()\n"
        "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
        "print('main done')\n",
        [b""],
    ),
    "atexit": (
        "import atexit, sys\n"
        "atexit.register(print, 'registered first, runs last')\n"
        "class Boom:\n    def __call__(self):\n        1 / 0\n    def __repr__(self):\n        return 'Boom()'\n"
        "atexit.register(Boom())\n"
        "atexit.register(sys.stdout.write, 'registered last, runs first\\n')\n"
        "print('main')\n",
        [b""],
    ),
    "sigterm_self": ("import os, signal\nprint('before', flush=True)\nos.kill(os.getpid(), signal.SIGTERM)\n", [b""]),
    "signal_handler": (
        "import os, signal\n"
        "signal.signal(signal.SIGUSR1, lambda s, f: print('caught', s, f.f_code.co_name))\n"
        "os.kill(os.getpid(), signal.SIGUSR1)\nprint('after')\n",
        [b""],
    ),
    "sigalrm": ("import signal, time\nprint('waiting', flush=True)\nsignal.alarm(1)\ntime.sleep(10)\n", [b""]),
    "keyboard_interrupt": ("import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(5)\n", [b""]),
    "stdout_stderr_interleaving": (
        "import sys\nfor i in range(5):\n    print('out', i)\n    print('err', i, file=sys.stderr)\n"
        # The parent waits, so the child's copy of the buffer is always flushed first.
        "import os\npid = os.fork()\nif pid == 0:\n    print('child inherits the unflushed buffer')\n"
        "else:\n    os.waitpid(pid, 0)\n",
        [b""],
    ),
    "lots_of_output": ("import sys\nfor i in range(60000):\n    print(i, 'x' * 10)\nsys.stdout.flush()\n", [b""]),
    "output_over_the_cap": ("import sys\nsys.stdout.write('y' * (3 << 20))\n", [b""]),
    "unicode": (
        "import sys\nprint('héllo wörld ✓ 日本語 🐍')\nsys.stderr.write('lone surrogate: \\udcff\\n')\n"
        "print('\\udcff')\n",
        [b""],
    ),
    "failing_flush_at_exit": ("import os\nprint('never written')\nos.close(1)\n", [b""]),
    "broken_pipe": ("import os\nr, w = os.pipe()\nos.close(r)\nos.write(w, b'x')\n", [b""]),
    "stdin_bytes": (
        "import sys\ndata = sys.stdin.buffer.read()\nprint(len(data), data[:20], data[-5:])\n",
        [b"\x00\xff" * 300000],
    ),
    "warnings": ("import warnings\nwarnings.warn('careful')\nwarnings.warn('old', DeprecationWarning)\n", [b""]),
    "subprocess_python": (
        "import subprocess, sys\n"
        "print(subprocess.run([sys.executable, '-c', 'import sys; print(sorted(sys.modules), sys.path)'],"
        " capture_output=True, text=True).stdout)\n",
        [b""],
    ),
}


@pytest.fixture
async def executors(docker_client: docker.DockerClient) -> AsyncIterator[dict[bool, DockerExecutor]]:
    made = {
        on: DockerExecutor(docker_client, SandboxSettings(instance=INSTANCE, pool_size=0, python_fork_server=on))
        for on in (True, False)
    }
    yield made
    for executor in made.values():
        await executor.close()
    assert_nothing_left(docker_client)


def seen(test: TestOutcome) -> Seen:
    return (test.status, test.exit_code, test.signal, test.stdout, test.stderr, test.truncated, len(test.images))


async def run_both(
    executors: dict[bool, DockerExecutor], docker_client: docker.DockerClient, request: ExecRequest
) -> dict[bool, list[TestOutcome]]:
    results = {}
    for on, executor in executors.items():
        results[on] = (await executor.execute(request)).tests
        await executor.settle()
        assert_nothing_left(docker_client)
    return results


def request(code: str, stdins: Sequence[bytes], **options: object) -> ExecRequest:
    tests = [TestInput(f"t{i}", stdin) for i, stdin in enumerate(stdins)]
    return ExecRequest(language="python", code=code, tests=tests, time_limit_ms=2000, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", PROGRAMS)
async def test_a_program_cannot_tell_the_fork_server_from_plain_python(
    executors: dict[bool, DockerExecutor], docker_client: docker.DockerClient, name: str
) -> None:
    code, stdins = PROGRAMS[name]
    results = await run_both(executors, docker_client, request(code, stdins))
    assert [seen(t) for t in results[True]] == [seen(t) for t in results[False]]


GRAPHICAL = dedent("""
    import sys
    import matplotlib.pyplot as plt
    plt.plot([1, 4, 9])
    plt.show()
    import pygame
    screen = pygame.display.set_mode((40, 30))
    for shade in (0, 120, 240):
        screen.fill((shade, 0, 0))
        pygame.display.flip()
    import turtle
    turtle.forward(50)
    print(sys.path, sorted(sys.modules))
    turtle.done()
    print('end')
""")


async def test_a_graphical_program_draws_the_same(
    executors: dict[bool, DockerExecutor], docker_client: docker.DockerClient
) -> None:
    results = await run_both(executors, docker_client, request(GRAPHICAL, [b"", b""], graphical=True))
    assert [seen(t) for t in results[True]] == [seen(t) for t in results[False]]
    assert all(t.status == "ok" and t.images for t in results[True]), results[True]


# The zygote is the only other process running `python3 -B main.py`.
FIND_ZYGOTE = dedent("""
    import os
    def zygotes():
        found = []
        for pid in (int(p) for p in os.listdir('/proc') if p.isdigit()):
            try:
                cmdline = open(f'/proc/{pid}/cmdline', 'rb').read()
            except OSError:
                continue
            if pid != os.getpid() and cmdline == b'python3\\0-B\\0main.py\\0':
                found.append(pid)
        return found
""")


async def test_the_fork_server_forks_the_programs(
    executors: dict[bool, DockerExecutor], docker_client: docker.DockerClient
) -> None:
    # A program cannot tell, but the sandbox can: the zygote is there, and the same one each test.
    code = FIND_ZYGOTE + "print(zygotes())\n"
    results = await run_both(executors, docker_client, request(code, [b"", b""]))
    first, second = (json.loads(t.stdout) for t in results[True])
    assert len(first) == 1 and first == second, results[True]
    assert [t.stdout for t in results[False]] == [b"[]\n"] * 2


# The first test does one thing to the zygote and reports what the kernel let it do; the second
# prints what it inherited. Under the fork server the second must see what it sees without one.
TAMPER = FIND_ZYGOTE + dedent("""
    import ctypes, resource, signal, sys
    libc = ctypes.CDLL(None, use_errno=True)
    IOPRIO_SET = 251  # x86_64
    def attack(pid, how):
        if how == 'prlimit':
            # Values a program still runs under: each could carry a few bits of a hidden input.
            for limit, value in ((resource.RLIMIT_AS, 1 << 31), (resource.RLIMIT_STACK, 4 << 20),
                                 (resource.RLIMIT_NPROC, 1000), (resource.RLIMIT_MEMLOCK, 4096)):
                resource.prlimit(pid, limit, (value, value))
        elif how == 'renice':
            os.setpriority(os.PRIO_PROCESS, pid, 19)
        elif how == 'affinity':
            os.sched_setaffinity(pid, {0})
        elif how == 'scheduler':
            os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
        elif how == 'ioprio':
            if libc.syscall(IOPRIO_SET, 1, pid, (3 << 13) | 0) != 0:
                raise OSError(ctypes.get_errno(), 'ioprio_set')
        elif how in ('SIGSTOP', 'SIGKILL'):
            os.kill(pid, getattr(signal, how))
        elif how == 'other signals':
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGSEGV):
                os.kill(pid, sig)
        elif how == 'read':
            for name in ('mem', 'environ', 'fd', 'cwd', 'root', 'maps', 'fd/3'):
                try:
                    if os.path.isdir(f'/proc/{pid}/{name}'):
                        os.listdir(f'/proc/{pid}/{name}')
                    else:
                        open(f'/proc/{pid}/{name}', 'rb').read(1)
                    print('read', name)
                except OSError:
                    pass
            if libc.ptrace(16, pid, None, None) == 0:
                print('attached')
        elif how == 'write':
            for name in ('mem', 'fd/0', 'fd/1', 'fd/3', 'oom_score_adj', 'comm', 'coredump_filter'):
                try:
                    with open(f'/proc/{pid}/{name}', 'wb') as out:
                        out.write(b'1')
                    print('wrote', name)
                except OSError:
                    pass
    def inherited():
        limits = [resource.getrlimit(getattr(resource, n)) for n in sorted(dir(resource)) if n.startswith('RLIMIT_')]
        ioprio = libc.syscall(252, 1, 0)
        return [limits, os.nice(0), sorted(os.sched_getaffinity(0)), os.sched_getscheduler(0), ioprio]
    how = sys.stdin.read()
    if how == 'check':
        print(inherited())
        print(sum(range(10 ** 5)))
        print(zygotes())
    else:
        print(zygotes())
        for pid in zygotes():
            try:
                attack(pid, how)
                print('done')
            except OSError as exc:
                print('refused', exc.errno)
""")

ATTACKS = (
    "prlimit",
    "renice",
    "affinity",
    "scheduler",
    "ioprio",
    "SIGSTOP",
    "SIGKILL",
    "other signals",
    "read",
    "write",
)


# Attacks that change what the zygote's children would inherit, or stop or end it: that zygote
# must never fork again. Any other attack leaves it as it was, and in service.
ZYGOTE_LOST = ("prlimit", "renice", "affinity", "scheduler", "ioprio", "SIGSTOP", "SIGKILL")


# The sandbox's seccomp profile refuses these on any process but the caller: the zygote's own check
# behind it is tested with the profile as it was before (tests/sandbox/test_cross_process.py
# checks the refusal).
PAST_THE_PROFILE = ("prlimit", "renice", "affinity", "scheduler", "ioprio")


@pytest.mark.parametrize("how", ATTACKS)
async def test_a_test_cannot_reach_the_next_through_the_zygote(
    executors: dict[bool, DockerExecutor], docker_client: docker.DockerClient, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if how in PAST_THE_PROFILE:
        lenient = profile_allowing_them_on_any_process()
        monkeypatch.setattr(sandbox_container, "seccomp_profile", lambda: lenient)
    results = await run_both(executors, docker_client, request(TAMPER, [how.encode(), b"check", b"check"]))
    attacker, *checks = results[True]
    zygotes, *said = attacker.stdout.decode().splitlines()
    [attacked] = json.loads(zygotes)
    # Whatever it tried (the kernel may refuse some of it), it read and wrote nothing of the zygote.
    assert attacker.status == "ok" and said in (["done"], ["refused 1"]), attacker
    assert said == ["done"] or how not in ("read", "write"), attacker
    # What the next tests inherited is what a program started afresh inherits, and verdicts hold.
    assert [(t.status, t.stdout.splitlines()[:2]) for t in checks] == [
        (t.status, t.stdout.splitlines()[:2]) for t in results[False][1:]
    ]
    assert all(t.status == "ok" and not t.stderr for t in checks), checks
    served = [json.loads(t.stdout.splitlines()[2]) for t in checks]
    if how in ZYGOTE_LOST:
        assert attacked not in served[0] + served[1] and served[1], served
        if how in ("SIGSTOP", "SIGKILL"):
            assert served[0] == served[1] != [], served  # replaced before the next test began
    else:
        assert served == [[attacked], [attacked]]


async def test_a_warm_sandbox_keeps_its_zygote_for_the_owners_next_job(docker_client: docker.DockerClient) -> None:
    executor = DockerExecutor(docker_client, SandboxSettings(instance=INSTANCE, pool_size=0))
    code = FIND_ZYGOTE + "print(zygotes())\n"
    try:
        first, second = [
            await executor.execute(ExecRequest("python", code, [TestInput("run", b"")], owner="mia")) for _ in range(2)
        ]
        assert first.sandbox_id == second.sandbox_id
        zygotes = [json.loads(result.tests[0].stdout) for result in (first, second)]
        assert len(zygotes[0]) == 1 and zygotes[0] == zygotes[1], zygotes
    finally:
        await executor.close()
    assert_nothing_left(docker_client)
