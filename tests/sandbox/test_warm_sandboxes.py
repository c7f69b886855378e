"""Warm sandboxes on the real engine: a student's container serves their next job, holds nothing of
the last one, never serves another student, and is discarded after any anomaly and by policy."""

from __future__ import annotations

import asyncio
import re
import secrets

import docker
import pytest

from runner.docker_executor import DockerExecutor
from runner.executor import ExecRequest, ExecResult, TestInput
from runner.sandbox_settings import SandboxSettings
from tests.sandbox.conftest import INSTANCE, poll, sandbox_containers

pytestmark = pytest.mark.docker

# Parks its stdin in every place a program can reach, then searches them all (so the test sees the
# search works: the parking job must find its own secret). With an empty stdin it only searches.
PROBE = r"""
import ctypes, os, re, socket, sys, time

PATTERN = re.compile(rb"LEAKPROBE-[0-9a-f]{32}")
libc = ctypes.CDLL(None, use_errno=True)
IPC_CREAT = 0o1000


def park(secret):
    data = secret.encode()
    for folder in ("/work", "/work/run", "/tmp", "/dev/shm", "/dev/mqueue"):
        try:
            with open(os.path.join(folder, "probe-" + secret), "wb") as out:
                out.write(data)
        except OSError as exc:
            print("no file in", folder, exc)
    os.makedirs("/tmp/deep/er/still", exist_ok=True)
    with open("/tmp/deep/er/still/" + secret, "wb") as out:
        out.write(data)
    try:
        os.setxattr("/work", "user.probe", data)
    except OSError as exc:
        print("no xattr", exc)
    # System V: a message queue, a shared memory segment and a semaphore set.
    queue = libc.msgget(0x4C52, IPC_CREAT | 0o666)
    message = ctypes.create_string_buffer(8 + len(data))
    ctypes.memmove(ctypes.addressof(message), (1).to_bytes(8, "little"), 8)
    ctypes.memmove(ctypes.addressof(message) + 8, data, len(data))
    libc.msgsnd(queue, message, len(data), 0)
    segment = libc.shmget(0x4C53, 4096, IPC_CREAT | 0o666)
    libc.shmat.restype = ctypes.c_void_p
    address = libc.shmat(segment, None, 0)
    ctypes.memmove(address, data, len(data))
    libc.semget(int(secret[10:14], 16), 1, IPC_CREAT | 0o666)
    # POSIX: a message queue.
    libc.mq_open.restype = ctypes.c_int
    mq = libc.mq_open(b"/probe-" + data[:20], os.O_CREAT | os.O_RDWR, 0o666, None)
    if mq >= 0:
        libc.mq_send(mq, data, len(data), 0)
    # A daemon (double fork, own session) holding it in its memory, its environment, its command
    # line and an abstract Unix socket that answers with it.
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.environ["PROBE"] = secret
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind("\0probe-" + secret)
            sock.listen()
            os.execvp("python3", ["python3", "-c", "import time; time.sleep(3600)", secret])
        os._exit(0)
    time.sleep(0.3)


def search():
    found = set()
    for folder in ("/work", "/tmp", "/dev/shm", "/dev/mqueue"):
        for root, dirs, files in os.walk(folder):
            for name in dirs + files:
                found.add(("name", name))
                try:
                    with open(os.path.join(root, name), "rb") as source:
                        found.add(("file", source.read(200)))
                except OSError:
                    pass
    try:
        for name in os.listxattr("/work"):
            found.add(("xattr", os.getxattr("/work", name)))
    except OSError:
        pass
    for kind in ("msg", "shm", "sem"):
        with open("/proc/sysvipc/" + kind) as table:
            rows = table.read().splitlines()[1:]
        found.add((kind, len(rows)))
        if rows and kind == "msg":
            queue = int(rows[0].split()[1])
            buffer = ctypes.create_string_buffer(8 + 200)
            size = libc.msgrcv(queue, buffer, 200, 0, 0o4000)  # IPC_NOWAIT
            found.add(("msgrcv", buffer.raw[8 : 8 + max(size, 0)]))
        if rows and kind == "shm":
            libc.shmat.restype = ctypes.c_void_p
            address = libc.shmat(int(rows[0].split()[1]), None, 0o10000)  # SHM_RDONLY
            if address not in (None, ctypes.c_void_p(-1).value):
                found.add(("shmat", ctypes.string_at(address, 64)))
        if rows and kind == "sem":
            found.add(("semkey", rows[0].split()[0]))
    with open("/proc/net/unix") as table:
        found.add(("unix", table.read()))
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            for part in ("cmdline", "environ"):
                try:
                    with open(f"/proc/{pid}/{part}", "rb") as source:
                        found.add((part, source.read()))
                except OSError:
                    pass
    found.add(("env", repr(dict(os.environ))))
    # This process's own memory: what it inherited (a fork server's, say) would be here.
    with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", 0) as memory:
        for line in maps:
            span, perms = line.split()[:2]
            if not perms.startswith("r") or "[vvar]" in line or "[vsyscall]" in line:
                continue
            start, end = (int(x, 16) for x in span.split("-"))
            try:
                memory.seek(start)
                found.update(("memory", m) for m in PATTERN.findall(memory.read(end - start)))
            except (OSError, OverflowError, ValueError):
                pass
    return found


secret = sys.stdin.read().strip()
if secret:
    park(secret)
seen = search()
print(sorted(set(m.decode() for _, v in seen for m in PATTERN.findall(v if isinstance(v, bytes) else str(v).encode()))))
"""


def _secret() -> str:
    return "LEAKPROBE-" + secrets.token_hex(16)


@pytest.fixture
def sandbox_settings() -> SandboxSettings:
    return SandboxSettings(instance=INSTANCE, pool_size=0)


async def _job(
    executor: DockerExecutor, owner: str, code: str, stdins: tuple[bytes, ...] = (b"",), **limits: int
) -> ExecResult:
    tests = [TestInput(f"t{i}", stdin) for i, stdin in enumerate(stdins)]
    return await executor.execute(ExecRequest("python", code, tests, owner=owner, **limits))


def _found(result: ExecResult, test: int = -1) -> list[str]:
    outcome = result.tests[test]
    assert outcome.status == "ok", (outcome.status, outcome.stderr.decode())
    return re.findall(r"LEAKPROBE-[0-9a-f]{32}", outcome.stdout.decode())


async def test_a_students_next_job_runs_in_the_same_container_and_finds_nothing_of_the_last(
    executor: DockerExecutor,
) -> None:
    secret = _secret()
    # The submission: a visible test, then the hidden one whose input is the secret.
    parked = await _job(executor, "alice", PROBE, (b"", secret.encode()), time_limit_ms=5000)
    assert _found(parked, 0) == []
    assert _found(parked, 1) == [secret], "the probe could not find what it parked: it proves nothing"
    searched = await _job(executor, "alice", PROBE, time_limit_ms=5000)
    assert searched.sandbox_id == parked.sandbox_id, "the second job did not run warm"
    assert _found(searched) == []
    assert secret.encode() not in searched.tests[0].stdout + searched.tests[0].stderr


async def test_no_container_serves_two_students(executor: DockerExecutor) -> None:
    served: dict[str, set[str]] = {}
    for _ in range(3):
        for owner in ("alice", "bob", "carol"):
            secret = _secret()
            result = await _job(executor, owner, PROBE, (secret.encode(),), time_limit_ms=5000)
            assert result.sandbox_id is not None
            served.setdefault(result.sandbox_id, set()).add(owner)
            # Each finds what it parked just now, and nothing of its own or anyone else's earlier jobs.
            assert _found(result) == [secret]
    assert all(len(owners) == 1 for owners in served.values()), served
    assert len(served) == 3, "each student should have kept one warm container"
    assert executor.warm_counts().idle == 3


async def test_a_job_without_an_owner_never_stays(executor: DockerExecutor, docker_client: docker.DockerClient) -> None:
    await executor.execute(ExecRequest("python", "print(1)", [TestInput("run", b"")]))
    await executor.settle()
    assert executor.warm_counts().idle == 0
    assert sandbox_containers(docker_client) == []


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("while True: pass", "time_limit"),
        ("import time\ntime.sleep(60)", "time_limit"),
        ("x = bytearray(400 * 1024 * 1024)\nprint(len(x))", "memory_limit"),
        ("import sys\nwhile True: sys.stdout.write('x' * 65536)", "output_limit"),
    ],
    ids=["cpu", "wall", "oom", "output-flood"],
)
async def test_an_anomaly_retires_the_sandbox(
    executor: DockerExecutor, docker_client: docker.DockerClient, code: str, status: str
) -> None:
    first = await _job(executor, "dave", "print('warm')")
    stopped = await _job(executor, "dave", code, time_limit_ms=500, memory_limit_mb=64)
    assert stopped.sandbox_id == first.sandbox_id
    assert stopped.tests[0].status == status
    await executor.settle()
    assert executor.warm_counts().idle == 0
    assert [c["Id"] for c in sandbox_containers(docker_client)] == []
    after = await _job(executor, "dave", "print('fresh')")
    assert after.sandbox_id != stopped.sandbox_id
    assert after.tests[0].stdout == b"fresh\n"


async def test_a_program_killing_its_own_processes_is_no_anomaly(
    executor: DockerExecutor, docker_client: docker.DockerClient
) -> None:
    first = await _job(executor, "erin", "print('warm')")
    await _job(executor, "erin", "import os, signal\nos.kill(-1, signal.SIGKILL)")
    after = await _job(executor, "erin", "print('still mine')")
    assert after.sandbox_id == first.sandbox_id
    assert after.tests[0].stdout == b"still mine\n"
    assert len(sandbox_containers(docker_client)) == 1


async def test_policy_limits_end_warm_sandboxes(docker_client: docker.DockerClient) -> None:
    settings = SandboxSettings(instance=INSTANCE, pool_size=0, warm_max_jobs=2, warm_idle_s=1.0)
    executor = DockerExecutor(docker_client, settings)
    try:
        one = await _job(executor, "fred", "print(1)")
        two = await _job(executor, "fred", "print(2)")
        three = await _job(executor, "fred", "print(3)")
        assert one.sandbox_id == two.sandbox_id != three.sandbox_id, "warm_max_jobs=2 was not kept"
        # Idle past warm_idle_s: removed by the executor on its own.
        await poll(lambda: executor.warm_counts().idle == 0 or None, timeout_s=10)
        await executor.settle()
        await poll(lambda: sandbox_containers(docker_client) == [] or None, timeout_s=10)
    finally:
        await executor.close()


async def test_idle_warm_sandboxes_fit_the_memory_budget(docker_client: docker.DockerClient) -> None:
    # An idle sandbox holds 12-15 MB (its harness and zygote): an 18 MB budget keeps one, the most recently used.
    settings = SandboxSettings(instance=INSTANCE, pool_size=0, warm_total_memory_mb=18)
    executor = DockerExecutor(docker_client, settings)
    try:
        first = await _job(executor, "gina", "print(1)")
        await _job(executor, "hank", "print(2)")
        counts = executor.warm_counts()
        assert counts.idle == 1 and counts.memory_bytes <= 18 * 1024 * 1024, counts
        again = await _job(executor, "gina", "print(3)")
        assert again.sandbox_id != first.sandbox_id, "the least recently used sandbox was kept"
        # A sandbox holding more than warm_max_memory_mb after its job is not kept at all.
        small = SandboxSettings(instance=INSTANCE, pool_size=0, warm_max_memory_mb=1)
        strict = DockerExecutor(docker_client, small)
        try:
            await _job(strict, "ivan", "print(4)")
            assert strict.warm_counts().idle == 0
        finally:
            await strict.close()
    finally:
        await executor.close()
    await asyncio.sleep(0)
    assert sandbox_containers(docker_client) == []


async def test_a_prewarmed_sandbox_serves_the_users_first_job(
    executor: DockerExecutor, docker_client: docker.DockerClient
) -> None:
    await executor.start()
    executor.prewarm("jane")
    executor.prewarm("jane")  # asked twice (a login, then a page): started once
    await poll(lambda: executor.warm_counts().idle == 1 or None)
    started = {c["Id"] for c in sandbox_containers(docker_client)}
    assert len(started) == 1
    result = await _job(executor, "jane", "print('first')")
    assert result.sandbox_id in started
    # Another user never gets it.
    other = await _job(executor, "kurt", "print('mine')")
    assert other.sandbox_id not in started


async def test_a_job_with_hidden_tests_is_the_last_its_container_serves(executor: DockerExecutor) -> None:
    # The PID counter survives every clean-up: a hidden test that forks k processes would move the
    # next job's PIDs by k. So after hidden tests the owner's next job gets another container.
    forks = "import os, sys\nfor _ in range(int(sys.stdin.read() or 0)):\n    os.fork() or os._exit(0)\n"
    visible = await executor.execute(
        ExecRequest("python", forks, [TestInput("t", b"3")], owner="lena", time_limit_ms=5000)
    )
    kept = await _job(executor, "lena", "import os\nprint(os.getpid())")
    assert kept.sandbox_id == visible.sandbox_id, "a submission of visible tests only keeps its container"
    hidden = await executor.execute(
        ExecRequest("python", forks, [TestInput("t", b"37")], owner="lena", time_limit_ms=5000, hidden_tests=True)
    )
    assert hidden.sandbox_id == kept.sandbox_id
    after = await _job(executor, "lena", "import os\nprint(os.getpid())")
    assert after.sandbox_id != hidden.sandbox_id
    assert executor.warm_counts().idle == 1
