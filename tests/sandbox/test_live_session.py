"""Live runs through the real sandbox: typed input, streamed output, Stop, the idle and wall
limits, and the sandbox afterwards (kept warm only when the program ended by itself)."""

from __future__ import annotations

import time

import docker
import pytest

from runner.docker_executor import DockerExecutor
from runner.executor import ExecRequest, TestInput
from runner.sandbox_settings import SandboxSettings
from sandbox import protocol
from tests.sandbox.conftest import assert_nothing_left, sandbox_containers
from tests.sandbox.live_console import OWNER, Console, executor_with, live_request


async def test_each_answer_is_typed_after_its_prompt_came(executor: DockerExecutor) -> None:
    code = (
        'name = input("Your name? ")\n'
        'print(f"Hello, {name}!")\n'
        'age = int(input("Your age? "))\n'
        'print(f"Next year you will be {age + 1}.")\n'
    )
    console = Console(await executor.open_live(live_request(code)))
    # The prompt has no newline: it must come out while the program waits in input().
    await console.wait_for(b"Your name? ")
    assert b"Hello" not in console.stdout
    await console.session.send(protocol.TypeIn(b"Ada\n"))
    await console.wait_for(b"Hello, Ada!\nYour age? ")
    await console.session.send(protocol.TypeIn(b"11\n"))
    ended = await console.end()
    assert console.stdout == b"Your name? Hello, Ada!\nYour age? Next year you will be 12.\n"
    assert (ended.ending, ended.exit_code) == ("finished", 0), ended
    # It ended by itself: the sandbox stays warm for the owner's next job.
    assert executor.warm_counts().idle == 1


async def test_stop_ends_an_endless_loop_at_once_and_leaves_nothing(
    executor: DockerExecutor, docker_client: docker.DockerClient
) -> None:
    code = "import time\nprint('looping', flush=True)\nwhile True:\n    pass\n"
    console = Console(await executor.open_live(live_request(code)))
    await console.wait_for(b"looping")
    stop_pressed = time.monotonic()
    await console.session.stop()
    ended = await console.end()
    assert time.monotonic() - stop_pressed < 1.0
    assert ended.ending == "stopped", ended
    await executor.settle()
    # A stopped program's sandbox is not kept: nothing of it is left.
    assert executor.warm_counts().idle == 0
    assert sandbox_containers(docker_client) == []
    assert_nothing_left(docker_client)


async def test_closing_stdin_gives_the_program_end_of_file(executor: DockerExecutor) -> None:
    code = "import sys\nlines = sys.stdin.read().splitlines()\nprint(len(lines), 'lines:', ','.join(lines))\n"
    console = Console(await executor.open_live(live_request(code)))
    await console.session.send(protocol.TypeIn(b"a\nb\n"))
    await console.session.send(protocol.TypeIn(b"c\n"))
    await console.session.send(protocol.CloseStdin())
    ended = await console.end()
    assert console.stdout == b"3 lines: a,b,c\n" and ended.ending == "finished", (console.stdout, ended)


async def test_a_forgotten_session_ends_after_its_idle_time(
    docker_client: docker.DockerClient, sandbox_settings: SandboxSettings
) -> None:
    async with executor_with(docker_client, sandbox_settings, live_idle_s=2.0) as executor:
        console = Console(await executor.open_live(live_request('input("waiting for you")\n')))
        await console.wait_for(b"waiting for you")
        ended = await console.end(timeout_s=15)
        assert ended.ending == "idle" and "no output and no input" in ended.message, ended


async def test_the_session_wall_time_ends_a_busy_program(
    docker_client: docker.DockerClient, sandbox_settings: SandboxSettings
) -> None:
    # Busy and chatty (never idle): only the session's wall time ends it.
    async with executor_with(docker_client, sandbox_settings, live_wall_time_s=3.0, live_idle_s=60.0) as executor:
        code = "import time\nwhile True:\n    print('tick', flush=True)\n    time.sleep(0.2)\n"
        console = Console(await executor.open_live(live_request(code)))
        ended = await console.end(timeout_s=20)
        assert ended.ending == "time_limit" and "3 s" in ended.message, ended
        assert console.stdout.count(b"tick") >= 5


async def test_output_past_the_session_limit_stops_the_program(
    docker_client: docker.DockerClient, sandbox_settings: SandboxSettings
) -> None:
    async with executor_with(docker_client, sandbox_settings, live_output_limit_bytes=10_000) as executor:
        console = Console(await executor.open_live(live_request("while True:\n    print('x' * 99)\n")))
        ended = await console.end()
        assert ended.ending == "output_limit", ended
        assert len(console.stdout) <= 10_000


@pytest.mark.parametrize(
    ("language", "code"),
    [
        (
            "c",
            '#include <stdio.h>\nint main(void){char s[64];printf("Name? ");'
            'if(scanf("%63s",s)==1)printf("Hi %s\\n",s);return 0;}\n',
        ),
        (
            "javascript",
            "const rl=require('readline').createInterface({input:process.stdin});\n"
            "process.stdout.write('Name? ');rl.on('line',l=>{console.log('Hi '+l);rl.close();});\n",
        ),
    ],
)
async def test_other_languages_run_live(executor: DockerExecutor, language: str, code: str) -> None:
    # The console is a terminal: C's prompt comes out without an fflush, as on a person's computer.
    console = Console(await executor.open_live(live_request(code, language)))
    await console.wait_for(b"Name? ")
    await console.session.send(protocol.TypeIn(b"Bo\n"))
    ended = await console.end(timeout_s=40)
    assert console.stdout == b"Name? Hi Bo\n" and ended.ending == "finished", (console.stdout, ended)


async def test_a_compile_error_ends_the_session_with_the_compiler_s_word(executor: DockerExecutor) -> None:
    console = Console(await executor.open_live(live_request("int main(void) { return x; }\n", "c")))
    ended = await console.end(timeout_s=40)
    assert ended.ending == "compile_error" and "x" in ended.compile_output, ended


async def test_the_next_job_after_a_live_session_runs_in_the_same_warm_sandbox(executor: DockerExecutor) -> None:
    # Typing that arrives after the program ended must not be taken for the next job's frame.
    console = Console(await executor.open_live(live_request("print(input())\n")))
    await console.session.send(protocol.TypeIn(b"one\n"))
    await console.session.send(protocol.TypeIn(b"late typing\n"))
    ended = await console.end()
    assert ended.ending == "finished" and console.stdout == b"one\n"
    result = await executor.execute(
        ExecRequest(language="python", code="print(input()[::-1])", tests=[TestInput("t", b"abc\n")], owner=OWNER)
    )
    assert result.tests[0].stdout == b"cba\n" and result.tests[0].status == "ok", result
    assert result.sandbox_id == console.session.sandbox_id
