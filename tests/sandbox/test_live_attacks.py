"""Attacks on a live session from the student's program inside the sandbox, and from the person at
its console, through the real sandbox: each refused, and kept refused by its test."""

from __future__ import annotations

import json
import time
from textwrap import dedent

import docker

from runner.docker_executor import DockerExecutor
from runner.executor import ExecRequest, TestInput
from sandbox import protocol
from tests.sandbox.conftest import assert_nothing_left, sandbox_containers
from tests.sandbox.live_console import OWNER, Console, live_request
from tests.sandbox.test_supervisor_attacks import PYTHON_SWEEP, forged_lines

# The sweep of every process's descriptors, ptrace and the cgroup (as in a batch job), then the
# program's own terminal turned on the harness: the controlling terminal it could take, the input
# it could push into it (TIOCSTI), every other terminal device it could open.
LIVE_SWEEP = PYTHON_SWEEP.replace("secret = sys.stdin.read().strip()", "secret = input('secret? ').strip()").replace(
    "FORGED", json.dumps(forged_lines("SECRET"))
).replace("print(secret, json.dumps(found))", "") + dedent("""
    import fcntl, termios, glob
    print(*forged.decode().splitlines(), sep='\\n', flush=True)
    try:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # its own terminal, as its controlling one
    except OSError:
        pass
    pushed = 0
    for ch in b'INJECTED\\n':
        try:
            fcntl.ioctl(0, termios.TIOCSTI, bytes([ch]))
            pushed += 1
        except OSError:
            break
    found['pushed'] = pushed
    mine = os.ttyname(0)
    found['terminals'] = []
    # (/dev/tty is the controlling terminal: its own, when TIOCSCTTY made it so.)
    for path in glob.glob('/dev/pts/*') + ['/dev/console']:
        if path in (mine, '/dev/pts/ptmx'):
            continue
        try:
            os.close(os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK))
            found['terminals'].append(path)
        except OSError:
            pass
    print(secret, json.dumps(found), flush=True)
    if pushed:
        print('own input:', input(), flush=True)
    """)


async def test_a_live_program_reaches_nothing_of_the_harness_and_its_forged_lines_stay_output(
    executor: DockerExecutor,
) -> None:
    console = Console(await executor.open_live(live_request(LIVE_SWEEP)))
    await console.wait_for(b"secret? ")
    await console.session.send(protocol.TypeIn(b"typed-secret\n"))
    ended = await console.end(timeout_s=60)
    assert ended.ending == "finished", (ended, console.stdout[-2000:], console.stderr[-2000:])
    # The forged protocol lines came out as the program's output, nothing more.
    assert b"FORGED" in console.stdout
    report = next(line for line in console.stdout.splitlines() if line.startswith(b"typed-secret "))
    found = json.loads(report.split(b" ", 1)[1])
    assert (found["opened"], found["traced"], found["cgroup"], found["terminals"]) == ([], [], [], []), found
    # TIOCSTI, where the kernel allows it at all, reaches the program's own input and nothing else.
    if found["pushed"]:
        assert b"own input: INJECTED\n" in console.stdout


LEAVER = dedent("""
    import os, signal, time
    # Twenty daemons, each in its own session, ignoring every signal it may ignore, holding the
    # terminal; files in every writable scratch place; then the program ends well.
    for _ in range(20):
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGTTOU, signal.SIGTTIN):
                    signal.signal(sig, signal.SIG_IGN)
                while True:
                    time.sleep(1)
            os._exit(0)
    for path in ('/tmp/left', '/dev/shm/left', os.path.expanduser('~/left'), 'left'):
        try:
            with open(path, 'w') as handle:
                handle.write('carried')
        except OSError:
            pass
    print('left', flush=True)
""")

LOOKER = dedent("""
    import os
    me = os.getpid()
    others = []
    for pid in os.listdir('/proc'):
        if pid.isdigit() and int(pid) not in (1, me, os.getppid()):
            try:
                others.append(open(f'/proc/{pid}/cmdline', 'rb').read().replace(b'\\0', b' ').decode())
            except OSError:
                pass
    files = [p for p in ('/tmp/left', '/dev/shm/left', os.path.expanduser('~/left'), 'left') if os.path.exists(p)]
    print(sorted(others), files)
""")


async def test_a_live_program_that_ended_well_leaves_nothing_for_the_next_job(executor: DockerExecutor) -> None:
    look = ExecRequest(language="python", code=LOOKER, tests=[TestInput("t", b"")], owner=OWNER)
    before = await executor.execute(look)  # the warm sandbox as it is clean (its fork server's zygote)
    assert before.tests[0].stdout.endswith(b" []\n"), before
    console = Console(await executor.open_live(live_request(LEAVER)))
    assert console.session.sandbox_id == before.sandbox_id
    ended = await console.end(timeout_s=30)
    assert ended.ending == "finished" and console.stdout == b"left\n", (ended, console.stdout, console.stderr)
    after = await executor.execute(look)
    assert after.sandbox_id == before.sandbox_id  # the warm one: the state the live session restored
    assert after.tests[0].stdout == before.tests[0].stdout, (before.tests[0], after.tests[0])


async def test_a_program_that_closed_its_terminal_still_takes_typing_and_stop(
    executor: DockerExecutor, docker_client: docker.DockerClient
) -> None:
    code = "import os, time\nprint('closing', flush=True)\nfor fd in (0, 1, 2):\n    os.close(fd)\ntime.sleep(600)\n"
    console = Console(await executor.open_live(live_request(code)))
    await console.wait_for(b"closing")
    for _ in range(50):
        await console.session.send(protocol.TypeIn(b"y" * 3000 + b"\n"))
    stop_pressed = time.monotonic()
    await console.session.stop()
    ended = await console.end()
    assert ended.ending == "stopped" and time.monotonic() - stop_pressed < 5, ended
    await executor.settle()
    assert sandbox_containers(docker_client) == []


async def test_typing_faster_than_the_program_reads_never_blocks_its_stop(
    executor: DockerExecutor, docker_client: docker.DockerClient
) -> None:
    # The program reads nothing; the person (a script) sends far more than the harness holds.
    code = "import time\nprint('not reading', flush=True)\ntime.sleep(600)\n"
    console = Console(await executor.open_live(live_request(code)))
    await console.wait_for(b"not reading")
    for _ in range(400):
        await console.session.send(protocol.TypeIn(b"z" * 4000))  # no newline: one endless line
    await console.session.send(protocol.CloseStdin())
    stop_pressed = time.monotonic()
    await console.session.stop()
    ended = await console.end()
    assert ended.ending == "stopped" and time.monotonic() - stop_pressed < 5, ended
    await executor.settle()
    assert sandbox_containers(docker_client) == []
    assert_nothing_left(docker_client)


async def test_a_live_run_never_gets_the_sandbox_that_ran_hidden_tests(executor: DockerExecutor) -> None:
    hidden = await executor.execute(
        ExecRequest(
            language="python", code="print(input())", tests=[TestInput("t", b"x\n")], owner=OWNER, hidden_tests=True
        )
    )
    assert hidden.tests[0].status == "ok", hidden
    console = Console(await executor.open_live(live_request("print('live')\n")))
    ended = await console.end()
    assert ended.ending == "finished"
    assert console.session.sandbox_id != hidden.sandbox_id
