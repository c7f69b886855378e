"""Hostile programs are contained: the limits hold, the host stays healthy, tests stay isolated
from each other, and no container or process is left behind (the `run` fixture checks that
after every job)."""

from __future__ import annotations

import ast
import asyncio
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from textwrap import dedent

import docker
import pytest

from runner.docker_executor import DockerExecutor
from runner.executor import InputFile
from runner.sandbox_settings import SandboxSettings
from tests.sandbox.conftest import INSTANCE, SANDBOX_UID, Run, assert_nothing_left, one_test

pytestmark = pytest.mark.docker

OUTPUT_CAP = SandboxSettings().output_limit_bytes


async def still_alive(run: Run) -> None:
    assert (await run("print('alive')")).tests[0].stdout == b"alive\n"


async def test_fork_bomb(run: Run) -> None:
    bomb = "#include <unistd.h>\nint main(void) { for (;;) fork(); }\n"
    result = await run(bomb, "c", [b"", b""], time_limit_ms=500)
    assert [t.status for t in result.tests] == ["time_limit"] * 2
    await still_alive(run)


async def test_memory_bomb_across_processes(run: Run) -> None:
    # Each child stays under the per-process address-space limit; together they exhaust the
    # container. The kernel's OOM killer takes children, never the harness, and the parent left
    # waiting for them is reported as out of memory, not out of time.
    bomb = dedent("""
        import os, time
        for _ in range(12):
            if os.fork() == 0:
                block = b'x' * (100 << 20)
                time.sleep(30)
                os._exit(0)
        for _ in range(12):
            os.wait()
    """)
    result = await run(bomb, memory_limit_mb=128, time_limit_ms=1000)
    assert result.tests[0].status == "memory_limit", result.tests[0]
    await still_alive(run)


async def test_sleeping_forever_is_stopped_at_the_wall_deadline(run: Run) -> None:
    result = await run("import time\ntime.sleep(10 ** 6)\n", time_limit_ms=500)
    [test] = result.tests
    assert test.status == "time_limit"
    # Stopped at the wall deadline (a multiple of the CPU limit plus slack), reported as such.
    assert 2000 <= test.time_ms < 5000


async def test_ignoring_signals_does_not_help(run: Run) -> None:
    stubborn = dedent("""
        import signal
        for sig in (signal.SIGTERM, signal.SIGXCPU, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        while True:
            pass
    """)
    result = await run(stubborn, time_limit_ms=500)
    assert result.tests[0].status == "time_limit"


@pytest.mark.parametrize(
    ("code", "stream"),
    [
        ("import sys\nwhile True:\n    sys.stdout.buffer.write(b'x' * 65536)\n", "stdout"),
        ("while True:\n    print('spam')\n", "stdout"),
        ("import sys\nwhile True:\n    sys.stderr.write('e' * 1000)\n", "stderr"),
        ("import sys\nsys.stdout.write('a' * (100 << 20))\n", "stdout"),
    ],
    ids=["bytes", "lines", "stderr", "one-100MB-line"],
)
async def test_output_flood_is_capped(run: Run, code: str, stream: str) -> None:
    result = await run(code, memory_limit_mb=256, time_limit_ms=3000)
    [test] = result.tests
    assert (test.status, test.truncated) == ("output_limit", True)
    assert len(getattr(test, stream)) == OUTPUT_CAP


async def test_many_files(run: Run) -> None:
    spam = dedent("""
        import os, sys
        if sys.stdin.read() == 'spam':
            n = 0
            try:
                while True:
                    open(f'f{n}', 'w').close()
                    n += 1
            except OSError as exc:
                print(exc.errno, n > 10_000)
        else:
            print(os.listdir('.'))
    """)
    result = await run(spam, stdins=[b"spam", b"check"], time_limit_ms=5000)
    first, second = result.tests
    assert first.stdout == b"28 True\n", first  # out of inodes: ENOSPC
    assert second.stdout == b"['main.py']\n", second


async def test_filling_the_disk(run: Run) -> None:
    fill = dedent("""
        import os, sys
        if sys.stdin.read() == 'fill':
            for where in ('.', '/tmp'):
                n = 0
                try:
                    while True:
                        with open(f'{where}/big{n}', 'wb') as f:
                            for _ in range(16):
                                f.write(bytes(1 << 20))
                        n += 1
                except OSError as exc:
                    print(where, exc.errno)
        else:
            free = [os.statvfs(p).f_bavail * os.statvfs(p).f_frsize >> 20 for p in ('.', '/tmp')]
            print(sorted(os.listdir('.')), os.listdir('/tmp'), min(free) > 48)
    """)
    result = await run(fill, stdins=[b"fill", b"check"], memory_limit_mb=64, time_limit_ms=5000)
    first, second = result.tests
    # ENOSPC (28): the sandbox's own tmpfs is full, not the host's disk.
    assert (first.status, first.stdout) == ("ok", b". 28\n/tmp 28\n"), first
    assert second.stdout == b"['main.py'] [] True\n", second


@pytest.fixture
def host_listener() -> Iterator[socket.socket]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        yield listener


async def test_no_network(run: Run, host_listener: socket.socket) -> None:
    port = host_listener.getsockname()[1]
    probe = dedent(f"""
        import socket
        print(sorted(name for _, name in socket.if_nameindex()))
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect(('127.0.0.1', {port}))
            print('connected')
        except OSError:
            print('refused')
    """)
    result = await run(probe)
    assert result.tests[0].stdout == b"['lo']\nrefused\n"
    with pytest.raises(BlockingIOError):
        host_listener.accept()


async def test_host_files_are_out_of_reach(run: Run, tmp_path: Path) -> None:
    marker = Path("/tmp") / f"labrunner-host-marker-{uuid.uuid4().hex}"
    marker.write_text("host secret")
    probe = dedent(f"""
        import os
        print(os.path.exists({str(marker)!r}), os.path.exists({str(tmp_path)!r}))
        print(os.path.exists('/var/run/docker.sock'), os.path.exists('/work/main'))
        try:
            open('/etc/shadow').read()
            print('shadow readable')
        except OSError as exc:
            print(type(exc).__name__)
        status = dict(line.split(':\\t') for line in open('/proc/self/status') if ':\\t' in line)
        print(os.getuid(), os.getgid(), status['CapEff'].strip(), status['NoNewPrivs'].strip())
    """)
    try:
        result = await run(probe)
    finally:
        marker.unlink()
    assert result.tests[0].stdout.decode().splitlines() == [
        "False False",
        "False False",
        "PermissionError",
        f"{SANDBOX_UID} {SANDBOX_UID} 0000000000000000 1",
    ]


async def test_planted_symlinks_go_nowhere(run: Run) -> None:
    plant = dedent("""
        import os, sys
        if sys.stdin.read() == 'plant':
            os.symlink('/etc/passwd', 'link')
            os.replace('link', 'main.py')
            os.symlink('/', '/tmp/root')
            os.symlink('/etc', '/work/build2')
            os.mkdir('/work/deep')
            os.symlink('/proc/1/root', '/work/deep/init-root')
            print('planted')
        else:
            print(sorted(os.listdir('.')), os.listdir('/tmp'), sorted(os.listdir('/work')),
                  os.path.islink('main.py'))
    """)
    result = await run(plant, stdins=[b"plant", b"check"])
    first, second = result.tests
    assert first.stdout == b"planted\n", first
    assert second.stdout == b"['main.py'] [] ['run'] False\n", second


@pytest.mark.parametrize(
    "sandbox_settings",
    [SandboxSettings(instance=INSTANCE, pool_size=0, python_fork_server=on) for on in (True, False)],
    ids=["fork server", "plain"],
)
async def test_no_process_outlives_its_test(run: Run, sandbox_settings: SandboxSettings) -> None:
    # Before the program starts anything, the only other process (the harness aside) is the fork
    # server's zygote, if there is one; after the test, not one more.
    linger = dedent("""
        import os, subprocess, sys, time
        mine = {os.getpid(), os.getppid(), 1}
        print([p for p in os.listdir('/proc') if p.isdigit() and int(p) not in mine])
        if sys.stdin.read() == 'spawn':
            subprocess.Popen(['sleep', '1000'], start_new_session=True, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if os.fork() == 0:  # a daemon, double-forked away from the program
                os.setsid()
                if os.fork() == 0:
                    while True:
                        time.sleep(0.01)
                os._exit(0)
            print('spawned')
    """)
    result = await run(linger, stdins=[b"spawn", b"check"])
    first, second = result.tests
    before, spawned = first.stdout.splitlines()
    assert (first.status, spawned) == ("ok", b"spawned"), first
    assert len(ast.literal_eval(before.decode())) == int(sandbox_settings.python_fork_server), first
    assert second.stdout == before + b"\n", second


async def test_one_test_leaves_nothing_for_the_next(run: Run) -> None:
    snoop = dedent("""
        import os, sys
        data = sys.stdin.read()
        places = ['note', '/tmp/note', '/dev/shm/note', os.path.expanduser('~/note')]
        if data.startswith('secret'):
            for place in places:
                with open(place, 'w') as f:
                    f.write(data)
            print('written')
            with open('data.txt', 'a') as f:
                f.write('tampered')
        else:
            print([os.path.exists(p) for p in places], open('data.txt').read())
    """)
    result = await run(snoop, stdins=[b"secret-one", b"check"], files=[InputFile("data.txt", b"original")])
    first, second = result.tests
    # Input files are read-only copies: appending fails in the first test...
    assert (first.status, first.stdout) == ("runtime_error", b"written\n"), first
    assert b"PermissionError" in first.stderr
    # ...and nothing written anywhere survives into the second.
    assert second.stdout == b"[False, False, False, False] original\n", second


async def test_system_v_ipc_does_not_carry_one_tests_input_into_the_next(run: Run) -> None:
    # Message queues, shared memory and semaphores outlive their process: a hidden test's input
    # parked in a queue would be printed by a later, visible test.
    courier = dedent("""
        import ctypes, sys
        libc = ctypes.CDLL(None, use_errno=True)
        KEY, IPC_CREAT, IPC_NOWAIT = 0x4C52, 0o1000, 0o4000
        data = sys.stdin.read().strip().encode()
        queue = libc.msgget(KEY, IPC_CREAT | 0o600)
        shm = libc.shmget(KEY + 1, 4096, IPC_CREAT | 0o600)
        sem = libc.semget(KEY + 2, 1, IPC_CREAT | 0o600)
        if data.startswith(b'secret'):
            message = ctypes.create_string_buffer(ctypes.sizeof(ctypes.c_long) + 64)
            ctypes.c_long.from_buffer(message).value = 1
            message[ctypes.sizeof(ctypes.c_long):ctypes.sizeof(ctypes.c_long) + len(data)] = data
            print('sent', libc.msgsnd(queue, message, 64, IPC_NOWAIT))
        else:
            message = ctypes.create_string_buffer(ctypes.sizeof(ctypes.c_long) + 64)
            got = libc.msgrcv(queue, message, 64, 0, IPC_NOWAIT)
            print('received', got, message.raw[ctypes.sizeof(ctypes.c_long):].rstrip(b'\\0')[:20])
    """)
    result = await run(courier, stdins=[b"secret-ipc", b"check"])
    first, second = result.tests
    assert first.stdout == b"sent 0\n", first
    assert second.stdout == b"received -1 b''\n", second


async def test_the_harness_is_out_of_reach(run: Run) -> None:
    # Programs run as the harness's own uid, yet can neither read its memory (the job, with
    # every test's input) nor write into its output stream.
    probe = dedent("""
        import os
        ppid = os.getppid()
        seen = []
        for name, mode in (('mem', 'rb'), ('environ', 'rb'), ('fd/0', 'rb'), ('fd/1', 'wb')):
            try:
                open(f'/proc/{ppid}/{name}', mode).close()
                seen.append('open')
            except OSError:
                seen.append('denied')
        print(seen)
    """)
    result = await run(probe)
    assert result.tests[0].stdout == b"['denied', 'denied', 'denied', 'denied']\n"


async def test_killing_the_harness_is_not_in_a_programs_power(run: Run) -> None:
    # The harness is PID 1 of the container's namespace: the kernel drops a SIGKILL from inside.
    result = await run("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint('done')\n", stdins=[b"", b""])
    assert [(t.status, t.stdout) for t in result.tests] == [("ok", b"done\n")] * 2


async def test_bytes_that_are_not_utf8_pass_unchanged(run: Run) -> None:
    echo = dedent("""
        import sys
        data = sys.stdin.buffer.read()
        sys.stdout.buffer.write(data + b'\\xff\\xfe\\x80')
        sys.stderr.buffer.write(b'\\xc3\\x28')
    """)
    result = await run(echo, stdins=[b"\x00\xff\x80raw"])
    [test] = result.tests
    assert (test.status, test.stdout, test.stderr) == ("ok", b"\x00\xff\x80raw\xff\xfe\x80", b"\xc3\x28")


UNICODE_GREETING = {
    "python": dedent("""
        # Grüße, 世界
        name = input()
        print(f'héllo {name} — 漢字 🎉')
    """),
    "c": dedent("""
        #include <stdio.h>
        #include <string.h>
        /* Grüße, 世界 */
        int main(void) {
            char name[64];
            if (!fgets(name, sizeof name, stdin)) return 1;
            name[strcspn(name, "\\n")] = 0;
            printf("héllo %s — 漢字 🎉\\n", name);
        }
    """),
    "java": dedent("""
        import java.io.*;
        // Grüße, 世界
        public class Main {
            public static void main(String[] args) throws IOException {
                String name = new BufferedReader(new InputStreamReader(System.in, "UTF-8")).readLine();
                System.out.println("héllo " + name + " — 漢字 🎉");
            }
        }
    """),
    "javascript": dedent("""
        // Grüße, 世界
        const name = require('fs').readFileSync(0, 'utf8').trim();
        console.log(`héllo ${name} — 漢字 🎉`);
    """),
}


@pytest.mark.parametrize("language", UNICODE_GREETING)
async def test_unicode_source_and_input(run: Run, language: str) -> None:
    result = await run(UNICODE_GREETING[language], language, ["Zoë 🙂\n".encode()], time_limit_ms=2000)
    [test] = result.tests
    assert (test.status, test.stdout.decode()) == ("ok", "héllo Zoë 🙂 — 漢字 🎉\n"), test


async def test_jobs_run_side_by_side(executor: DockerExecutor, docker_client: docker.DockerClient) -> None:
    requests = [one_test(f"print({n} * 2)") for n in range(3)]
    results = await asyncio.gather(*(executor.execute(request) for request in requests))
    assert [r.tests[0].stdout for r in results] == [b"0\n", b"2\n", b"4\n"]
    await executor.settle()
    assert_nothing_left(docker_client)
