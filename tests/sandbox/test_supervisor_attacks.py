"""A program cannot speak for the harness, reach it, or leave data for a later test in the
container's counters (issue 9, findings 1-5).

Each attack here worked against the sandbox as it was with Docker's init as PID 1: a program wrote
forged protocol lines into /proc/1/fd/1, parked a hidden input in /proc/1/fd/0, ptraced PID 1 into
running a payload that outlived its test, and read a hidden test's fork failures back from the
cgroup's pids.events. Every attempt is made in every language that can make it.
"""

from __future__ import annotations

import ast
import base64
import dataclasses
import json
from textwrap import dedent

import docker
import pytest

from runner.docker_executor import DockerExecutor
from runner.executor import ExecResult
from runner.sandbox_settings import SandboxSettings
from tests.sandbox.conftest import INSTANCE, Run, assert_nothing_left, one_test

pytestmark = pytest.mark.docker


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def forged_lines(secret: str) -> str:
    """Protocol lines of every type, plain and with a MAC-shaped prefix, carrying the secret."""
    events = [
        {"type": "started"},
        {"type": "compile", "ok": True, "output": _b64(f"FORGED {secret}"), "time_ms": 1},
        *(
            {
                "type": "test",
                "name": name,
                "status": "ok",
                "exit_code": 0,
                "signal": None,
                "time_ms": 1,
                "stdout": _b64(f"FORGED {secret}"),
                "stderr": "",
                "truncated": False,
                "images": [],
            }
            for name in ("t0", "t1", "t2")
        ),
        {"type": "done"},
        {"type": "failure", "code": "version_mismatch", "message": f"FORGED {secret}"},
        {"type": "failure", "code": "harness_error", "message": f"FORGED {secret}"},
    ]
    plain = [json.dumps(event) for event in events]
    return "".join(f"{line}\n" for prefix in ("", "0" * 64 + " ", "- ") for line in (prefix + p for p in plain))


# Every process the program can see, every descriptor of each, read and write; ptrace of each; and
# every file under the cgroup mount. Prints what worked: nothing may.
PYTHON_SWEEP = dedent("""
    import ctypes, json, os, sys
    libc = ctypes.CDLL(None, use_errno=True)
    secret = sys.stdin.read().strip()
    forged = FORGED.replace('SECRET', secret).encode()
    me = os.getpid()
    found = {'opened': [], 'traced': [], 'cgroup': [], 'pid1': open('/proc/1/stat').read().split()[1]}
    for pid in sorted(int(p) for p in os.listdir('/proc') if p.isdigit()):
        if pid == me:
            continue
        try:
            fds = os.listdir(f'/proc/{pid}/fd')
        except OSError:
            fds = ['0', '1', '2']
        for fd in fds:
            for flags in (os.O_WRONLY | os.O_NONBLOCK, os.O_RDONLY | os.O_NONBLOCK):
                try:
                    handle = os.open(f'/proc/{pid}/fd/{fd}', flags)
                except OSError:
                    continue
                found['opened'].append(f'{pid}/{fd}')
                try:
                    os.write(handle, forged) if flags & os.O_WRONLY else os.read(handle, 100)
                except OSError:
                    pass
                os.close(handle)
        for request in (16, 0x4206):  # PTRACE_ATTACH, PTRACE_SEIZE
            if libc.ptrace(request, pid, None, None) == 0:
                found['traced'].append(pid)
    for root, dirs, files in os.walk('/sys/fs/cgroup'):
        found['cgroup'] += [os.path.join(root, name) for name in files]
    print(secret, json.dumps(found))
""")

C_PROBE = dedent("""
    #include <dirent.h>
    #include <fcntl.h>
    #include <stdio.h>
    #include <string.h>
    #include <sys/ptrace.h>
    #include <unistd.h>
    static const char forged[] = FORGED;
    int main(void) {
        int opened = 0, entries = 0;
        const char *paths[] = {"/proc/1/fd/0", "/proc/1/fd/1", "/proc/1/fd/2"};
        for (int i = 0; i < 3; i++) {
            int fd = open(paths[i], O_WRONLY | O_NONBLOCK);
            if (fd >= 0) { opened++; write(fd, forged, strlen(forged)); close(fd); }
            fd = open(paths[i], O_RDONLY | O_NONBLOCK);
            if (fd >= 0) { opened++; close(fd); }
        }
        long traced = ptrace(PTRACE_ATTACH, 1, 0, 0) == 0;
        DIR *dir = opendir("/sys/fs/cgroup");
        struct dirent *entry;
        while (dir && (entry = readdir(dir))) if (entry->d_name[0] != '.') entries++;
        printf("opened=%d traced=%ld cgroup=%d\\n", opened, traced, entries);
        return 0;
    }
""")

JAVA_PROBE = dedent("""
    import java.io.*;
    public class Main {
        public static void main(String[] args) {
            int opened = 0;
            for (String fd : new String[] {"0", "1", "2"}) {
                try (FileOutputStream out = new FileOutputStream("/proc/1/fd/" + fd)) {
                    out.write(FORGED.getBytes());
                    opened++;
                } catch (IOException e) { }
            }
            String[] entries = new File("/sys/fs/cgroup").list();
            System.out.println("opened=" + opened + " cgroup=" + (entries == null ? 0 : entries.length));
        }
    }
""")

JAVASCRIPT_PROBE = dedent("""
    const fs = require('fs');
    let opened = 0;
    for (const fd of ['0', '1', '2']) {
        try {
            const handle = fs.openSync('/proc/1/fd/' + fd, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
            fs.writeSync(handle, FORGED);
            opened++;
        } catch (e) {}
    }
    console.log('opened=' + opened + ' cgroup=' + fs.readdirSync('/sys/fs/cgroup').length);
""")


def _with_forged(template: str, secret: str = "SECRET") -> str:
    return template.replace("FORGED", json.dumps(forged_lines(secret)))


def assert_untouched(result: ExecResult) -> None:
    """No forged word reached the result, and every test was reported by the harness itself."""
    for test in result.tests:
        assert b"FORGED" not in test.stdout + test.stderr, test
        assert b"interfered" not in test.stderr, test
    if result.compile is not None:
        assert "FORGED" not in result.compile.output


async def test_python_can_reach_no_process_descriptor_ptrace_or_cgroup(run: Run) -> None:
    result = await run(_with_forged(PYTHON_SWEEP), stdins=[b"secret-1\n", b"secret-2\n", b"secret-3\n"])
    assert_untouched(result)
    for index, test in enumerate(result.tests, start=1):
        secret, found = test.stdout.decode().split(" ", 1)
        assert secret == f"secret-{index}"
        # PID 1 is the harness itself, not an init a program could reach.
        assert json.loads(found) == {"opened": [], "traced": [], "cgroup": [], "pid1": "(python3)"}, test


@pytest.mark.parametrize(
    ("language", "template", "expected"),
    [
        ("c", C_PROBE, b"opened=0 traced=0 cgroup=0\n"),
        ("cpp", C_PROBE, b"opened=0 traced=0 cgroup=0\n"),
        ("java", JAVA_PROBE, b"opened=0 cgroup=0\n"),
        ("javascript", JAVASCRIPT_PROBE, b"opened=0 cgroup=0\n"),
    ],
)
async def test_every_language_is_kept_off_the_harness(run: Run, language: str, template: str, expected: bytes) -> None:
    result = await run(_with_forged(template), language, stdins=[b"", b""], time_limit_ms=3000)
    assert_untouched(result)
    assert [(t.status, t.stdout) for t in result.tests] == [("ok", expected)] * 2, result


@pytest.mark.parametrize(
    "sandbox_settings",
    [SandboxSettings(instance=INSTANCE, pool_size=0, python_fork_server=on) for on in (True, False)],
    ids=["fork server", "plain"],
)
async def test_a_survivor_cannot_be_planted_through_ptrace(run: Run, sandbox_settings: SandboxSettings) -> None:
    # The review's payload: attach to every process, make it execve a program that lives on and
    # passes one test's input to the next over an abstract Unix socket.
    plant = dedent("""
        import ctypes, os, socket, sys
        libc = ctypes.CDLL(None, use_errno=True)
        data = sys.stdin.read().strip()
        # Before it does anything: the fork server's zygote, if there is one.
        print('others', [p for p in os.listdir('/proc') if p.isdigit() and int(p) not in (1, os.getpid())])
        if data.startswith('secret'):
            attached = [p for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()
                        and libc.ptrace(16, int(p), None, None) == 0]
            print('attached', attached)
        else:
            relay = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                relay.connect('\\0labrunner-relay')
                print('relay', relay.recv(100))
            except OSError:
                print('relay none')
    """)
    result = await run(plant, stdins=[b"secret-ptrace", b"check"])
    first, second = result.tests
    others, attached = first.stdout.splitlines()
    assert len(ast.literal_eval(others.decode().removeprefix("others "))) == int(sandbox_settings.python_fork_server)
    assert attached == b"attached []", first
    # Nothing but what was there before the first test.
    assert second.stdout == others + b"\nrelay none\n", second


async def test_the_harness_cannot_be_signalled_from_inside(run: Run) -> None:
    # As PID 1 of its namespace, the kernel drops every signal a program sends it, SIGKILL included.
    killer = dedent("""
        import os, signal
        for sig in (signal.SIGKILL, signal.SIGSTOP, signal.SIGTERM, signal.SIGSEGV):
            try:
                os.kill(1, sig)
            except OSError as exc:
                print(sig.name, exc.errno)
        print('still here')
    """)
    result = await run(killer, stdins=[b"", b""])
    assert [(t.status, t.stdout) for t in result.tests] == [("ok", b"still here\n")] * 2, result


async def test_cgroup_counters_carry_nothing_into_the_next_test(run: Run) -> None:
    # The review's channel: a hidden test makes ord(secret[0]) forks fail, a later test reads
    # pids.events. The counters are not there to read.
    courier = dedent("""
        import glob, os, sys
        data = sys.stdin.read().strip()
        if data.startswith('secret'):
            children = []
            for _ in range(ord(data[-1])):
                try:
                    pid = os.fork()
                except OSError:
                    continue
                if pid == 0:
                    import time; time.sleep(5); os._exit(0)
                children.append(pid)
            print('forked', len(children) > 0)
        else:
            print(sorted(glob.glob('/sys/fs/cgroup/**/*', recursive=True)))
    """)
    result = await run(courier, stdins=[b"secret-S", b"check"], time_limit_ms=2000)
    first, second = result.tests
    assert first.stdout == b"forked True\n", first
    assert second.stdout == b"[]\n", second


async def test_out_of_memory_is_still_told_apart_without_the_cgroup(run: Run) -> None:
    hog = "block = []\nwhile True:\n    block.append(bytearray(16 << 20))\n"
    result = await run(hog, memory_limit_mb=64, stdins=[b"", b""])
    assert [t.status for t in result.tests] == ["memory_limit", "memory_limit"], result


async def test_cpu_handed_down_a_chain_of_forks_still_counts(run: Run) -> None:
    # RLIMIT_CPU bounds each process alone: a program that moves its work to a fresh fork every
    # 0.8 s never meets it. The test's CPU time is that of every process it started.
    chain = dedent("""
        import os, sys, time
        r, w = os.pipe()
        spent = 0.0
        if os.fork() == 0:
            while spent < 2.5:
                started = time.process_time()
                while time.process_time() - started < 0.8 and spent < 2.5:
                    pass
                spent += time.process_time() - started
                if spent < 2.5 and os.fork() != 0:
                    os._exit(0)
            os.write(w, b'done')
            os._exit(0)
        os.close(w)
        print(os.read(r, 10).decode())
    """)
    result = await run(chain, time_limit_ms=1000)
    [test] = result.tests
    assert test.status == "time_limit" and test.time_ms >= 2000, test


async def test_extended_attributes_on_the_work_dir_do_not_carry_over(run: Run) -> None:
    note = dedent("""
        import os, sys
        data = sys.stdin.read().strip()
        if data.startswith('secret'):
            os.setxattr('/work', 'user.note', data.encode())
            print('set')
        else:
            try:
                print(os.getxattr('/work', 'user.note'))
            except OSError as exc:
                print('none', exc.errno)
    """)
    result = await run(note, stdins=[b"secret-xattr", b"check"])
    first, second = result.tests
    assert first.stdout == b"set\n", first
    assert second.stdout == b"none 61\n", second  # ENODATA


MANY_CHILDREN_C = dedent("""
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>
    #include <unistd.h>
    int main(void) {
        int p[2];
        char got[30];
        pipe(p);
        for (int i = 0; i < 30; i++) {
            if (fork() == 0) {
                char *block = malloc(8 << 20);
                memset(block, i + 1, 8 << 20);
                write(p[1], block + 12345, 1);  /* uses the block: not optimised away */
                pause();
            }
        }
        for (int n = 0; n < 30;) n += read(p[0], got, 30 - n);
        puts("30 children x 8 MB alive");
        return 0;
    }
""")


async def test_a_compiled_program_gets_its_own_budget_not_the_compilers(run: Run) -> None:
    # The container is sized for the compiler (hundreds of MB); RLIMIT_AS bounds each process
    # alone. Once compiled, the container shrinks to the program's budget.
    result = await run(MANY_CHILDREN_C, "c", memory_limit_mb=16, time_limit_ms=1000)
    [test] = result.tests
    # (The children may all report in: the OOM killer takes those already holding their memory,
    # which makes room for the rest. What matters is the verdict.)
    assert test.status == "memory_limit", test


async def test_a_later_tests_input_is_not_in_the_sandbox_during_an_earlier_test(run: Run) -> None:
    # The harness's memory figures are readable by every program (PID 1's status); they grew with
    # every input the job carried, hidden ones included. Inputs now arrive one test at a time.
    probe = dedent("""
        import sys
        data = sys.stdin.read()
        if data == 'first':
            fields = dict(line.split(':', 1) for line in open('/proc/1/status'))
            print(fields['VmData'].split()[0], fields['VmHWM'].split()[0])
        else:
            print(len(data))
    """)
    small = await run(probe, stdins=[b"first", b"x" * 10])
    large = await run(probe, stdins=[b"first", b"x" * (3 << 20)])
    assert (small.tests[1].stdout, large.tests[1].stdout) == (b"10\n", b"%d\n" % (3 << 20))
    small_data, small_peak = map(int, small.tests[0].stdout.split())
    large_data, large_peak = map(int, large.tests[0].stdout.split())
    # A 3 MB input held by the harness shows as 3-12 MB here; allocator noise is far below 1 MB.
    assert abs(large_data - small_data) < 1024 and abs(large_peak - small_peak) < 1024, (small, large)


async def test_system_calls_no_program_needs_are_refused(run: Run) -> None:
    # Docker's default profile allows these; the sandbox's own profile does not (EPERM).
    probe = dedent("""
        import ctypes, mmap, os
        libc = ctypes.CDLL(None, use_errno=True)
        def errno_of(result):
            return ctypes.get_errno() if result == -1 else 0
        params = ctypes.create_string_buffer(120)
        found = {
            'io_uring_setup': errno_of(libc.syscall(425, 8, params)),
            'ptrace': errno_of(libc.ptrace(0, 0, None, None)),  # PTRACE_TRACEME
            'readahead': errno_of(libc.readahead(0, ctypes.c_long(0), ctypes.c_size_t(4096))),
        }
        fd = os.open('/usr/bin/python3', os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            found['fadvise64'] = 0
        except OSError as exc:
            found['fadvise64'] = exc.errno
        area = mmap.mmap(fd, 4096, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        start = ctypes.c_void_p(ctypes.addressof(ctypes.c_char.from_buffer(area)))
        found['mincore'] = errno_of(libc.mincore(start, 4096, ctypes.create_string_buffer(1)))
        print(sorted(found.items()))
    """)
    result = await run(probe)
    expected = sorted({name: 1 for name in ("io_uring_setup", "ptrace", "readahead", "fadvise64", "mincore")}.items())
    assert result.tests[0].stdout == f"{expected}\n".encode(), result.tests[0]


async def test_machine_wide_counters_read_as_empty(run: Run) -> None:
    # The second review moved a hidden input exactly from one job to the next through
    # /proc/vmstat's pglazyfree (madvise(MADV_FREE) on N pages adds N).
    probe = dedent("""
        import os
        paths = ['/proc/vmstat', '/proc/meminfo', '/proc/stat', '/proc/zoneinfo', '/proc/loadavg',
                 '/proc/diskstats', '/proc/interrupts', '/proc/sys/fs/file-nr']
        sizes = {}
        for path in paths:
            try:
                sizes[path] = len(open(path).read())
            except OSError as exc:
                sizes[path] = exc.errno
        print(sizes)
    """)
    [test] = (await run(probe)).tests
    sizes = eval(test.stdout)  # a dict literal the program printed
    assert all(size in (0, 2, 13) for size in sizes.values()), sizes  # empty, or no such file / denied
    assert sizes["/proc/vmstat"] == 0 and sizes["/proc/meminfo"] == 0, sizes


async def test_cpu_of_children_nobody_reaps_still_counts(run: Run) -> None:
    # A parent that ignores SIGCHLD has its children reaped by the kernel: their CPU time reaches
    # no one's rusage. The host reads the container's own CPU count for the test.
    orphaned = dedent("""
        import os, signal, time
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        for _ in range(3):
            if os.fork() == 0:
                started = time.process_time()
                while time.process_time() - started < 0.7:
                    pass
                os._exit(0)
            time.sleep(0.75)
        # With SIGCHLD ignored, wait() only blocks until every child is gone (the kernel reaps
        # them, no rusage reaches anyone): on a busy machine the last one finishes its CPU first.
        try:
            os.wait()
        except ChildProcessError:
            pass
        print('done')
    """)
    [test] = (await run(orphaned, time_limit_ms=1000)).tests
    assert test.status == "time_limit" and test.time_ms >= 1500, test


@pytest.mark.parametrize(
    ("language", "code"),
    [
        ("python", "block = bytearray(150 << 20)\nblock[::4096] = b'x' * len(block[::4096])\nprint('held')\n"),
        (
            "c",
            dedent("""
                #include <stdio.h>
                #include <stdlib.h>
                #include <string.h>
                #include <sys/wait.h>
                #include <unistd.h>
                int main(void) {
                    int p[2];
                    char got[3];
                    pipe(p);
                    for (int i = 0; i < 3; i++) {
                        if (fork() == 0) {
                            char *block = malloc(20 << 20);
                            memset(block, 1, 20 << 20);
                            write(p[1], block + 12345, 1);  /* uses the block: not optimised away */
                            sleep(1);
                            _exit(0);
                        }
                    }
                    for (int n = 0; n < 3;) n += read(p[0], got, 3 - n);
                    while (wait(NULL) > 0) {}
                    puts("held");
                    return 0;
                }
            """),
        ),
    ],
)
async def test_memory_past_the_limit_is_memory_limit_even_when_the_program_ends_well(
    run: Run, language: str, code: str
) -> None:
    # The container keeps room for the harness on top of the program's budget; a program that
    # fills that room (one big process, or several each under RLIMIT_AS) is past its limit.
    limit = 64 if language == "python" else 16
    [test] = (await run(code, language, memory_limit_mb=limit, time_limit_ms=2000)).tests
    assert test.status == "memory_limit", test


async def test_a_graphical_import_the_teacher_did_not_ask_for_keeps_the_time_limit(
    executor: DockerExecutor, docker_client: docker.DockerClient
) -> None:
    burn = dedent("""
        if False:
            import turtle
        import time
        started = time.process_time()
        while time.process_time() - started < 2.5:
            pass
    """)
    request = one_test(burn, time_limit_ms=1000)
    kept = await executor.execute(dataclasses.replace(request, graphical=True, graphical_time=False))
    assert kept.tests[0].status == "time_limit", kept
    lifted = await executor.execute(dataclasses.replace(request, graphical=True, graphical_time=True))
    assert lifted.tests[0].status == "ok", lifted
    await executor.settle()
    assert_nothing_left(docker_client)
