"""`labrunner selftest`: what school IT runs after installing — known programs in every language
and a few hostile ones, through the real sandbox, as a readable pass/fail table."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from runner.executor import ExecRequest, Executor, InfraError, TestInput


@dataclass(frozen=True)
class Check:
    name: str
    language: str
    code: str
    stdin: str
    expect_status: str
    expect_stdout: str | None = None
    time_limit_ms: int = 2000
    memory_limit_mb: int = 128


CHECKS: tuple[Check, ...] = (
    Check("python: echo", "python", "print(input()[::-1])", "olleh\n", "ok", "hello\n"),
    Check(
        "python: numpy and matplotlib import",
        "python",
        "import numpy, matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot; print(int(numpy.arange(4).sum()))",
        "",
        "ok",
        "6\n",
        time_limit_ms=10000,
    ),
    Check(
        "c: sum",
        "c",
        '#include <stdio.h>\nint main(){int a,b;scanf("%d %d",&a,&b);printf("%d\\n",a+b);}',
        "2 3\n",
        "ok",
        "5\n",
    ),
    Check(
        "c++: sum",
        "cpp",
        "#include <iostream>\nint main(){int a,b;std::cin>>a>>b;std::cout<<a+b<<'\\n';}",
        "2 3\n",
        "ok",
        "5\n",
    ),
    Check(
        "java: sum",
        "java",
        "import java.util.*;\npublic class Main{public static void main(String[] a){Scanner s=new Scanner(System.in);"
        "System.out.println(s.nextInt()+s.nextInt());}}",
        "2 3\n",
        "ok",
        "5\n",
        time_limit_ms=5000,
    ),
    Check(
        "javascript: sum",
        "javascript",
        "const [a,b]=require('fs').readFileSync(0,'utf8').trim().split(' ').map(Number);console.log(a+b);",
        "2 3\n",
        "ok",
        "5\n",
    ),
    Check(
        "hostile: busy loop stops at the time limit", "python", "while True: pass", "", "time_limit", time_limit_ms=1000
    ),
    Check(
        "hostile: memory bomb stops at the memory limit",
        "python",
        "x = []\nwhile True: x.append(' ' * 10**6)",
        "",
        "memory_limit",
        memory_limit_mb=64,
    ),
    Check(
        "hostile: fork bomb is contained",
        "python",
        "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass",
        "",
        "time_limit",
        time_limit_ms=1000,
    ),
    Check(
        "hostile: no network",
        "python",
        "import socket\ntry:\n    socket.create_connection(('192.0.2.1', 80), timeout=2); print('connected')\n"
        "except OSError: print('no network')",
        "",
        "ok",
        "no network\n",
    ),
    Check(
        "hostile: the harness and the cgroup are out of reach",
        "python",
        # Writing into PID 1's output would forge results; ptrace of it would plant a survivor;
        # the cgroup's counters would carry data from one test to the next.
        "import ctypes, os\nreached = []\nfor fd in ('0', '1', '2'):\n    try:\n"
        "        os.close(os.open('/proc/1/fd/' + fd, os.O_WRONLY | os.O_NONBLOCK)); reached.append('fd' + fd)\n"
        "    except OSError: pass\n"
        "if ctypes.CDLL(None).ptrace(16, 1, None, None) == 0: reached.append('ptrace')\n"
        "if os.listdir('/sys/fs/cgroup'): reached.append('cgroup')\n"
        "print(' '.join(reached) or 'contained')",
        "",
        "ok",
        "contained\n",
    ),
)


@dataclass(frozen=True)
class CheckResult:
    check: Check
    passed: bool
    detail: str
    seconds: float


async def run_checks(executor: Executor, progress: Callable[[str], None] = lambda name: None) -> list[CheckResult]:
    results = []
    for check in CHECKS:
        progress(check.name)
        started = time.monotonic()
        request = ExecRequest(
            language=check.language,
            code=check.code,
            tests=[TestInput("selftest", check.stdin.encode())],
            time_limit_ms=check.time_limit_ms,
            memory_limit_mb=check.memory_limit_mb,
        )
        try:
            outcome = await executor.execute(request)
        except InfraError as error:
            results.append(CheckResult(check, False, f"infrastructure: {error.code}: {error.message}", 0.0))
            continue
        elapsed = time.monotonic() - started
        if outcome.compile is not None and not outcome.compile.ok:
            results.append(CheckResult(check, False, f"compile error: {outcome.compile.output[:200]}", elapsed))
            continue
        test = outcome.tests[0]
        stdout = test.stdout.decode("utf-8", "replace")
        ok = test.status == check.expect_status and (check.expect_stdout is None or stdout == check.expect_stdout)
        detail = f"{test.status}, exit {test.exit_code}, {test.time_ms} ms"
        if not ok:
            detail += f"; expected {check.expect_status}" + (
                f" printing {check.expect_stdout!r}, got {stdout[:80]!r}" if check.expect_stdout else ""
            )
        results.append(CheckResult(check, ok, detail, elapsed))
    return results


def format_table(results: list[CheckResult]) -> str:
    width = max(len(r.check.name) for r in results)
    lines = [f"{'check'.ljust(width)}  result  seconds  detail", "-" * (width + 40)]
    for r in results:
        lines.append(f"{r.check.name.ljust(width)}  {'PASS' if r.passed else 'FAIL'}    {r.seconds:6.2f}   {r.detail}")
    passed = sum(r.passed for r in results)
    lines.append(f"{passed} passed, {len(results) - passed} failed")
    return "\n".join(lines)
