"""Fork server benchmark: what the Python fork server saves per test, through the real sandbox.

Runs the same 10-test "a + b" submission through DockerExecutor with the fork server on and off
(jobs alternate, so both see the same machine), and 1-test jobs of it to tell each test's own cost
from the container's. Prints medians per test and the ratio on/off:

- wall: the job's wall time over its tests (the container's start-up shared out), and the
  marginal wall time of one more test ((10-test job - 1-test job) / 9; the zygote's start-up
  is in the 1-test job too);
- CPU: what the harness counts for the program (the time limit is on this), and what the
  container's cgroup counted during the test (every process, harness and zygote included; only
  where the host can read the cgroup tree, e.g. as root).

    .venv/bin/python benchmarks/fork_server_bench.py [--jobs 20] [--tests 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from runner import docker_executor, engine  # noqa: E402
from runner.docker_executor import DockerExecutor  # noqa: E402
from runner.executor import ExecRequest, ExecResult, TestInput  # noqa: E402
from runner.sandbox_job import JobPlan, Transcript  # noqa: E402
from runner.sandbox_settings import SandboxSettings  # noqa: E402

ADD = "a, b = map(int, input().split())\nprint(a + b)\n"


@dataclass
class Samples:
    job_wall_per_test: list[float] = field(default_factory=list)
    single_wall: list[float] = field(default_factory=list)
    job_wall: list[float] = field(default_factory=list)
    program_cpu: list[float] = field(default_factory=list)
    container_cpu: list[float] = field(default_factory=list)


def record_usages(into: list[float]) -> None:
    """Keep the cgroup's per-test CPU of every transcript (the executor does not return it)."""
    original: Callable[[JobPlan, Transcript, bool], ExecResult] = docker_executor.to_result

    def to_result(plan: JobPlan, transcript: Transcript, oom_killed: bool) -> ExecResult:
        into.extend(usage.cpu_ms for usage in transcript.usages if usage is not None)
        return original(plan, transcript, oom_killed)

    docker_executor.to_result = to_result  # type: ignore[assignment]


async def timed(executor: DockerExecutor, tests: int) -> tuple[float, ExecResult]:
    request = ExecRequest(language="python", code=ADD, tests=[TestInput(f"t{i}", b"1 2\n") for i in range(tests)])
    started = time.monotonic()
    result = await executor.execute(request)
    elapsed = time.monotonic() - started
    if [t.stdout for t in result.tests] != [b"3\n"] * tests:
        raise SystemExit(f"wrong result: {result.tests}")
    return elapsed, result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--tests", type=int, default=10)
    args = parser.parse_args()
    client = engine.connect(timeout_s=60)
    usages: list[float] = []
    record_usages(usages)
    executors = {
        on: DockerExecutor(client, SandboxSettings(instance="fork-server-bench", pool_size=0, python_fork_server=on))
        for on in (True, False)
    }
    samples = {on: Samples() for on in executors}
    try:
        for executor in executors.values():  # warm up: image layers, page cache
            await timed(executor, 1)
        for _ in range(args.jobs):
            for on, executor in executors.items():
                usages.clear()
                elapsed, result = await timed(executor, args.tests)
                s = samples[on]
                s.job_wall.append(elapsed)
                s.job_wall_per_test.append(elapsed / args.tests)
                s.program_cpu += [t.time_ms for t in result.tests]
                s.container_cpu += usages
                single, _ = await timed(executor, 1)
                s.single_wall.append(single)
    finally:
        for executor in executors.values():
            await executor.settle()
            await executor.close()
        client.close()

    def row(label: str, unit: str, pick: Callable[[Samples], float]) -> None:
        on, off = pick(samples[True]), pick(samples[False])
        print(f"{label:<40} {on:9.1f} {off:9.1f} {unit:<3} {on / off if off else float('nan'):6.2f}")

    median = statistics.median
    print(f"{args.jobs} jobs of {args.tests} tests each way ('a + b'), medians")
    print(f"{'':<40} {'on':>9} {'off':>9} {'':<3} {'on/off':>6}")
    row("job wall time", "ms", lambda s: 1000 * median(s.job_wall))
    row("wall time per test (job / tests)", "ms", lambda s: 1000 * median(s.job_wall_per_test))
    row(
        "marginal wall time per test",
        "ms",
        lambda s: 1000 * (median(s.job_wall) - median(s.single_wall)) / (args.tests - 1),
    )
    row("program CPU per test (harness)", "ms", lambda s: median(s.program_cpu))
    if samples[True].container_cpu and samples[False].container_cpu:
        row("container CPU per test (cgroup)", "ms", lambda s: median(s.container_cpu))
    else:
        print("container CPU per test: no cgroup meter here (run as root on the engine's machine)")


if __name__ == "__main__":
    asyncio.run(main())
