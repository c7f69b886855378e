"""Runner benchmark (issue 3): latency, class burst, sustained throughput and appliance memory.

Starts the real appliance (`python -m appliance serve`) on a temporary data folder against the
local Docker engine, drives it over HTTP like a class would, and measures the same work done the
bare way (`docker run --rm`, or a loop inside one container) on the same machine in the same run,
printing each figure beside its anchor and the ratio.

    .venv/bin/python benchmarks/runner_bench.py [--runtimes runc,crun] [--samples 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from runner.image import expected_ref  # noqa: E402

PASSWORD = "benchmark-password"
HELLO = 'print("hello")'
ADD = "a, b = map(int, input().split())\nprint(a + b)"
LEGAL = {"accept_terms": "2026-11-01", "accept_privacy": "2026-11-01"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Appliance:
    def __init__(self, runtime: str, workers: int | None, pool: int | None) -> None:
        self.data = Path(tempfile.mkdtemp(prefix=f"labrunner-bench-{runtime}-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LABRUNNER_")}
        self.env["LABRUNNER_SANDBOX_RUNTIME"] = runtime
        if workers is not None:
            self.env["LABRUNNER_WORKERS"] = str(workers)
        if pool is not None:
            self.env["LABRUNNER_SANDBOX_POOL_SIZE"] = str(pool)
        self.process: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, stdin: str = "") -> None:
        command = [sys.executable, "-m", "appliance", "--data-dir", str(self.data), *args]
        subprocess.run(command, input=stdin.encode(), check=True, cwd=REPO, env=self.env, capture_output=True)

    def start(self) -> None:
        self.cli("users", "create", "--role", "teacher", "--username", "bench", "--password-stdin", stdin=PASSWORD)
        log = open(self.data / "appliance.log", "wb")  # kept open as long as the process runs
        command = [
            sys.executable,
            "-m",
            "appliance",
            "--data-dir",
            str(self.data),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self.process = subprocess.Popen(command, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{self.url}/healthz", timeout=2)
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the appliance did not start")

    def peak_rss_mb(self) -> float:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)


class Client:
    def __init__(self, url: str) -> None:
        self.url = url
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"Origin": url})

    async def post(self, path: str, body: dict[str, object]) -> dict[str, object]:
        async with self.session.post(self.url + path, json=body) as response:
            data = await response.json()
            if response.status >= 400:
                raise RuntimeError(f"{path}: {response.status} {data}")
            return data

    async def get(self, path: str) -> dict[str, object]:
        async with self.session.get(self.url + path) as response:
            return await response.json()

    async def wait(self, kind: str, job_id: object) -> dict[str, object]:
        while True:
            result = await self.get(f"/api/{kind}/{job_id}?wait=30")
            if result["status"] in ("done", "failed"):
                return result

    async def close(self) -> None:
        await self.session.close()


def bare_docker_run(image: str, runtime: str, samples: int) -> list[float]:
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        subprocess.run(
            ["docker", "run", "--rm", "--runtime", runtime, "--network", "none", image, "python3", "-c", HELLO],
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - start)
    return times


def loop_in_one_container(image: str, runtime: str, executions: int) -> float:
    program = ADD.replace("\n", "; ")
    script = f'i=0; while [ $i -lt {executions} ]; do echo "1 2" | python3 -c "{program}" >/dev/null; i=$((i+1)); done'
    start = time.perf_counter()
    subprocess.run(
        ["docker", "run", "--rm", "--runtime", runtime, "--network", "none", image, "sh", "-c", script],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


@dataclass
class Figures:
    runtime: str
    latency_median: float
    latency_p95: float
    bare_median: float
    burst_s: float
    loop_s: float
    throughput: float
    bare_throughput: float
    peak_rss_mb: float


async def measure(runtime: str, samples: int, workers: int | None, pool: int | None) -> Figures:
    image = expected_ref()
    appliance = Appliance(runtime, workers, pool)
    appliance.start()
    client = Client(appliance.url)
    try:
        await client.post("/api/auth/login", {"username": "bench", "password": PASSWORD})
        await client.post("/api/me/accept-legal", LEGAL)
        for index in range(3):  # warm the pool and the executor
            job = await client.post("/api/runs", {"language": "python", "code": f"{HELLO}  # warm {index}"})
            await client.wait("runs", job["id"])

        latencies = []
        for index in range(samples):
            start = time.perf_counter()
            job = await client.post("/api/runs", {"language": "python", "code": f"{HELLO}  # {index}"})
            result = await client.wait("runs", job["id"])
            latencies.append(time.perf_counter() - start)
            assert result["verdict"] == "accepted", result
            await asyncio.sleep(0.3)  # a student's pace: the pool refills between runs
        bare = bare_docker_run(image, runtime, max(5, samples // 2))

        tests = [
            {"name": f"t{i}", "stdin": f"{i} {i}\n", "expected_stdout": f"{2 * i}\n", "visible": True}
            for i in range(10)
        ]
        problem = await client.post(
            "/api/problems", {"title": "Add", "statement": "a+b", "language": "python", "test_cases": tests}
        )
        start = time.perf_counter()
        burst = await asyncio.gather(
            *(
                client.post(
                    f"/api/problems/{problem['id']}/submissions",
                    {"language": "python", "code": f"{ADD}  # student {i}"},
                )
                for i in range(30)
            )
        )
        results = await asyncio.gather(*(client.wait("submissions", job["id"]) for job in burst))
        burst_s = time.perf_counter() - start
        assert all(r["verdict"] == "accepted" for r in results), [r["verdict"] for r in results]
        peak = appliance.peak_rss_mb()
        loop_s = loop_in_one_container(image, runtime, 300)

        count = 60
        start = time.perf_counter()
        jobs = await asyncio.gather(
            *(client.post("/api/runs", {"language": "python", "code": f"{HELLO}  # load {i}"}) for i in range(count))
        )
        await asyncio.gather(*(client.wait("runs", job["id"]) for job in jobs))
        throughput = count / (time.perf_counter() - start)
        bare_loop = bare_docker_run(image, runtime, 10)
        return Figures(
            runtime,
            statistics.median(latencies),
            percentile(latencies, 0.95),
            statistics.median(bare),
            burst_s,
            loop_s,
            throughput,
            1 / statistics.mean(bare_loop),
            peak,
        )
    finally:
        await client.close()
        appliance.stop()


def report(figures: list[Figures]) -> str:
    rows = [("figure", "runtime", "measured", "anchor", "ratio")]
    for f in figures:
        rows += [
            (
                "(a) hello-world run via HTTP, median",
                f.runtime,
                f"{f.latency_median:.3f} s",
                "target <= 0.20 s",
                f"{f.latency_median / f.bare_median:.2f}x bare docker run ({f.bare_median:.3f} s)",
            ),
            ("(a) hello-world run via HTTP, p95", f.runtime, f"{f.latency_p95:.3f} s", "", ""),
            (
                "(b) burst 30 x 10 tests, all done",
                f.runtime,
                f"{f.burst_s:.2f} s",
                "target <= 8 s",
                f"{f.burst_s / f.loop_s:.2f}x 300 runs looped in one container ({f.loop_s:.2f} s)",
            ),
            (
                "(c) sustained hello-world jobs",
                f.runtime,
                f"{f.throughput:.2f} /s",
                "target >= 6 /s",
                f"{f.throughput / f.bare_throughput:.2f}x bare docker run loop ({f.bare_throughput:.2f} /s)",
            ),
            ("(d) appliance peak RSS (burst incl.)", f.runtime, f"{f.peak_rss_mb:.0f} MB", "target <= 200 MB", ""),
        ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runtimes", default="runc,crun")
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--workers", type=int, help="override the workers setting (default: the appliance's)")
    parser.add_argument("--pool", type=int, help="override sandbox_pool_size (default: the appliance's)")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; image {expected_ref()}", flush=True)
    figures = []
    for runtime in args.runtimes.split(","):
        refusal = runtime_refusal(runtime)
        if refusal:
            print(f"{runtime}: the engine cannot run containers with it here: {refusal}", flush=True)
            continue
        print(f"measuring with {runtime} …", flush=True)
        figures.append(await measure(runtime, args.samples, args.workers, args.pool))
    print(report(figures))


def runtime_refusal(runtime: str) -> str:
    """Why `docker run --runtime RUNTIME` fails on this machine, or '' when it works."""
    done = subprocess.run(
        ["docker", "run", "--rm", "--runtime", runtime, "--network", "none", expected_ref(), "true"],
        capture_output=True,
        text=True,
    )
    return "" if done.returncode == 0 else done.stderr.strip().splitlines()[0]


if __name__ == "__main__":
    asyncio.run(main())
