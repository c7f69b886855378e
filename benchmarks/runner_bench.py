"""Runner benchmark (issues 3, 14 and 15): latency, cold and warm class bursts, sustained throughput,
memory, latency beside other students' endless loops, and a burst beside idle live runs.

Starts the real appliance (`python -m appliance serve`) on a temporary data folder against the
local Docker engine, drives it over HTTP like a class of 30 students would, and measures the same
work done the bare way (`docker run --rm`, or a loop inside one container) on the same machine in
the same run, printing each figure beside its target, its floor and the ratio. Jobe's figures are
DESIGN §8's (measured on this kind of machine, not in this run: Jobe is not installable here).

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
    def __init__(self, runtime: str, workers: int | None, pool: int | None, prewarm: bool) -> None:
        self.data = Path(tempfile.mkdtemp(prefix=f"labrunner-bench-{runtime}-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LABRUNNER_")}
        self.env["LABRUNNER_SANDBOX_RUNTIME"] = runtime
        self.env["LABRUNNER_SANDBOX_PREWARM"] = "true" if prewarm else "false"
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
    cold_burst_s: float
    warm_burst_s: float
    loop_s: float
    throughput: float
    in_flight: int
    bare_throughput: float
    peak_rss_mb: float
    logged_in_burst_s: float
    warm_count: int
    warm_mb: float
    contended_median: float
    contended_max: float
    live_burst_s: float
    live_held: int


JOBE = {  # DESIGN §8 and issue 14: Jobe on this kind of machine, installed as a real server
    "latency": "Jobe 0.09-0.20 s",
    "burst": "Jobe 16.7-27 s",
    "throughput": "Jobe 11-19 /s (17.3-18.7 in issue 14)",
}
STUDENTS = 30
STUDENT_PASSWORD = "student-password"


def sandbox_memory(instance_containers: list[str]) -> list[int]:
    """What each container's cgroup holds now, read from the host as the runner does."""
    from runner.cgroup_meter import CgroupMeter

    sizes = []
    for container in instance_containers:
        pid = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Pid}}", container], capture_output=True, text=True
        ).stdout.strip()
        meter = CgroupMeter.find(int(pid)) if pid.isdigit() and pid != "0" else None
        if meter is not None and (memory := meter.memory_now()) is not None:
            sizes.append(memory)
    return sizes


def sandbox_containers(data: Path) -> list[str]:
    from appliance.sandbox_wiring import instance_label

    label = f"labrunner.instance={instance_label(data.resolve())}"
    found = subprocess.run(["docker", "ps", "-q", "--filter", f"label={label}"], capture_output=True, text=True)
    return found.stdout.split()


async def class_of_students(teacher: Client, url: str) -> list[Client]:
    klass = await teacher.post("/api/classes", {"name": "Bench class"})
    roster = "username,password,birthdate\n" + "".join(
        f"student{i:02d},{STUDENT_PASSWORD},2008-01-01\n" for i in range(STUDENTS)
    )
    async with teacher.session.post(
        f"{url}/api/classes/{klass['id']}/roster/import", data=roster, headers={"Content-Type": "text/csv"}
    ) as response:
        if response.status != 201:
            raise RuntimeError(f"roster import: {response.status} {await response.text()}")
    students = [Client(url) for _ in range(STUDENTS)]
    for index, student in enumerate(students):
        await student.post("/api/auth/login", {"username": f"student{index:02d}", "password": STUDENT_PASSWORD})
        await student.post("/api/me/accept-legal", LEGAL)
    return students


async def class_burst(students: list[Client], problem_id: object, variant: str) -> float:
    start = time.perf_counter()
    burst = await asyncio.gather(
        *(
            s.post(f"/api/problems/{problem_id}/submissions", {"language": "python", "code": f"{ADD}  # {variant} {i}"})
            for i, s in enumerate(students)
        )
    )
    results = await asyncio.gather(*(s.wait("submissions", job["id"]) for s, job in zip(students, burst, strict=True)))
    elapsed = time.perf_counter() - start
    assert all(r["verdict"] == "accepted" for r in results), [r["verdict"] for r in results]
    return elapsed


async def sustained(students: list[Client], in_flight: int, seconds: float) -> float:
    """Jobs per second with `in_flight` clients in a closed loop, each job from the next student."""
    counter = iter(range(1_000_000))
    done = 0
    stop = time.perf_counter() + seconds

    async def client_loop() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            n = next(counter)
            student = students[n % len(students)]
            job = await student.post("/api/runs", {"language": "python", "code": f"{HELLO}  # load {n}"})
            result = await student.wait("runs", job["id"])
            assert result["verdict"] == "accepted", result
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(in_flight)))
    return done / (time.perf_counter() - start)


async def hello_latencies(student: Client, samples: int, tag: str) -> list[float]:
    latencies = []
    for index in range(samples):
        start = time.perf_counter()
        job = await student.post("/api/runs", {"language": "python", "code": f"{HELLO}  # {tag} {index}"})
        result = await student.wait("runs", job["id"])
        latencies.append(time.perf_counter() - start)
        assert result["verdict"] == "accepted", result
        await asyncio.sleep(0.3)  # a student's pace
    return latencies


async def a_lesson(appliance: Appliance) -> tuple[Client, list[Client], object]:
    """The teacher, a class of students who logged in, and a problem of 10 tests set for them."""
    teacher = Client(appliance.url)
    await teacher.post("/api/auth/login", {"username": "bench", "password": PASSWORD})
    await teacher.post("/api/me/accept-legal", LEGAL)
    students = await class_of_students(teacher, appliance.url)
    klass = (await teacher.get("/api/classes"))["classes"][0]
    tests = [
        {"name": f"t{i}", "stdin": f"{i} {i}\n", "expected_stdout": f"{2 * i}\n", "visible": True} for i in range(10)
    ]
    problem = await teacher.post(
        "/api/problems",
        {"title": "Add", "statement": "a+b", "language": "python", "test_cases": tests, "classes": [klass["id"]]},
    )
    return teacher, students, problem["id"]


LIVE_HOLDERS = 10


async def hold_live_runs(url: str, holders: list[Client]) -> list[aiohttp.ClientWebSocketResponse]:
    """Each holder starts a live run that waits at an input() prompt, as a student thinking would."""
    sockets = []
    for holder in holders:
        run = await holder.post("/api/live-runs", {"language": "python", "code": 'input("Your answer? ")'})
        sockets.append(await holder.session.ws_connect(url.replace("http", "ws", 1) + str(run["socket"])))
    for ws in sockets:
        output = ""
        while "Your answer? " not in output:
            message = await ws.receive_json(timeout=60)
            if message["type"] == "ended":
                raise RuntimeError(f"a live run ended early: {message}")
            output += message.get("text", "")
    return sockets


async def logged_in_burst(runtime: str, workers: int | None, pool: int | None) -> float:
    """(b1') The class logged in a while ago (their sandboxes were started then), nobody ran code."""
    appliance = Appliance(runtime, workers, pool, prewarm=True)
    appliance.start()
    teacher: Client | None = None
    students: list[Client] = []
    try:
        teacher, students, problem_id = await a_lesson(appliance)
        for _ in range(600):
            if len(sandbox_containers(appliance.data)) >= STUDENTS:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)
        return await class_burst(students, problem_id, "logged-in")
    finally:
        for client in [*([teacher] if teacher else []), *students]:
            await client.close()
        appliance.stop()


async def measure(runtime: str, samples: int, workers: int | None, pool: int | None, in_flight: int) -> Figures:
    image = expected_ref()
    logged_in = await logged_in_burst(runtime, workers, pool)
    # Everything else without prewarming: (b1) is then a class whose containers all start in the burst.
    appliance = Appliance(runtime, workers, pool, prewarm=False)
    appliance.start()
    teacher: Client | None = None
    students: list[Client] = []
    try:
        teacher, students, problem = await a_lesson(appliance)
        await asyncio.sleep(2)  # the pool fills, as it would before a lesson
        # (b1) nobody has run anything yet; (b2) the same students again, a few seconds later.
        cold = await class_burst(students, problem, "cold")
        warm = await class_burst(students, problem, "warm")
        containers = sandbox_containers(appliance.data)
        warm_sizes = sandbox_memory(containers)
        # (a) one student at a student's pace.
        latencies = await hello_latencies(students[0], samples, "latency")
        bare = bare_docker_run(image, runtime, max(5, samples // 2))
        loop_s = loop_in_one_container(image, runtime, 300)
        # (c) jobs spread over the class, `in_flight` at a time.
        throughput = await sustained(students, in_flight, 15.0)
        bare_loop = bare_docker_run(image, runtime, 10)
        # (e) two students' endless loops hold two workers (and the CPU) while a third runs code.
        loops = [
            await s.post("/api/runs", {"language": "python", "code": "while True: pass  # endless"})
            for s in students[1:3]
        ]
        await asyncio.sleep(1.0)
        contended = await hello_latencies(students[3], 5, "contended")
        for s, job in zip(students[1:3], loops, strict=True):
            await s.wait("runs", job["id"])
        # (f) ten students sit at their live runs' prompts (a sandbox each, no worker) while the
        # whole class submits.
        held = await hold_live_runs(appliance.url, students[-LIVE_HOLDERS:])
        live_burst = await class_burst(students, problem, "beside-live")
        for ws in held:
            await ws.send_json({"type": "stop"})
            await ws.close()
        peak = appliance.peak_rss_mb()
        return Figures(
            runtime,
            statistics.median(latencies),
            percentile(latencies, 0.95),
            statistics.median(bare),
            cold,
            warm,
            loop_s,
            throughput,
            in_flight,
            1 / statistics.mean(bare_loop),
            peak,
            logged_in,
            len(warm_sizes),
            statistics.mean(warm_sizes) / 1_048_576 if warm_sizes else float("nan"),
            statistics.median(contended),
            max(contended),
            live_burst,
            len(held),
        )
    finally:
        for client in [*([teacher] if teacher else []), *students]:
            await client.close()
        appliance.stop()


def report(figures: list[Figures]) -> str:
    rows = [("figure", "runtime", "measured", "target", "anchor / floor (same run unless Jobe)")]
    for f in figures:
        rows += [
            (
                "(a) hello-world run via HTTP, median",
                f.runtime,
                f"{f.latency_median:.3f} s",
                "<= 0.05 s",
                f"{JOBE['latency']}; {f.latency_median / f.bare_median:.2f}x bare docker run ({f.bare_median:.3f} s)",
            ),
            ("(a) hello-world run via HTTP, p95", f.runtime, f"{f.latency_p95:.3f} s", "", ""),
            (
                "(b1) cold burst, 30 students x 10 tests",
                f.runtime,
                f"{f.cold_burst_s:.2f} s",
                "<= 6 s",
                f"{JOBE['burst']}; {f.cold_burst_s / f.loop_s:.2f}x 300 runs looped in one container"
                f" ({f.loop_s:.2f} s)",
            ),
            (
                "(b1') the same, the class logged in earlier",
                f.runtime,
                f"{f.logged_in_burst_s:.2f} s",
                "",
                "their sandboxes were started at login (sandbox_prewarm); nobody had run code",
            ),
            (
                "(b2) warm burst, the same students again",
                f.runtime,
                f"{f.warm_burst_s:.2f} s",
                "<= 2 s",
                f"{f.warm_burst_s / f.loop_s:.2f}x the loop in one container",
            ),
            (
                f"(c) sustained hello-world, {f.in_flight} in flight, 30 students",
                f.runtime,
                f"{f.throughput:.2f} /s",
                ">= Jobe",
                f"{JOBE['throughput']}; {f.throughput / f.bare_throughput:.2f}x bare docker run loop"
                f" ({f.bare_throughput:.2f} /s)",
            ),
            ("(d) appliance peak RSS", f.runtime, f"{f.peak_rss_mb:.0f} MB", "<= 200 MB", ""),
            (
                "(d) idle warm sandbox, mean cgroup memory",
                f.runtime,
                f"{f.warm_mb:.1f} MB",
                "<= 20 MB",
                f"{f.warm_count} warm sandboxes after the bursts ({f.warm_count * f.warm_mb:.0f} MB together)",
            ),
            (
                "(e) hello-world beside two endless loops, median",
                f.runtime,
                f"{f.contended_median:.3f} s",
                "<= 0.5 s",
                f"max {f.contended_max:.3f} s of 5",
            ),
            (
                f"(f) burst of 30 submissions beside {f.live_held} idle live runs",
                f.runtime,
                f"{f.live_burst_s:.2f} s",
                "<= (b1)",
                f"{f.live_burst_s / f.cold_burst_s:.2f}x (b1) cold burst, {f.live_burst_s / f.warm_burst_s:.2f}x (b2)",
            ),
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
    parser.add_argument("--in-flight", type=int, default=6, help="clients in the sustained closed loop (4-8)")
    args = parser.parse_args()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average at the start {load}; image {expected_ref()}", flush=True)
    figures = []
    for runtime in args.runtimes.split(","):
        refusal = runtime_refusal(runtime)
        if refusal:
            print(f"{runtime}: the engine cannot run containers with it here: {refusal}", flush=True)
            continue
        print(f"measuring with {runtime} …", flush=True)
        figures.append(await measure(runtime, args.samples, args.workers, args.pool, args.in_flight))
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
