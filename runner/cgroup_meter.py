"""A sandbox's cgroup as the host reads it, one test at a time: CPU, peak memory, OOM kills.

The cgroup is hidden from everything inside the sandbox (its counters would carry data from one
test to the next), so the harness cannot see what the kernel counts for the whole container: CPU
of processes it never reaps (children of a parent that ignores SIGCHLD are reaped by the kernel
itself), memory of every process and tmpfs file together, OOM kills of processes other than the
program itself. The host can, where the engine runs on this machine and the appliance may read
its cgroup tree (root, as the appliance runs on a classroom machine). Elsewhere there is no
meter and the harness's own figures stand.

The harness waits for each test's input, so the host brackets each test exactly: start() just
before it sends a test's stdin, finish() when that test's report arrives.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class TestUsage:
    __test__ = False  # not a pytest test class, despite the name

    cpu_ms: int  # every process of the container, the harness's own share included
    memory_bytes: int  # the container's peak above what it held when the test began
    oom_kills: int


class CgroupMeter:
    """cgroup v1 (cpuacct, memory) or v2 (unified) files of one container."""

    def __init__(self, cpu: Path, memory_peak: Path | None, memory_now: Path, oom: Path, v1: bool) -> None:
        self._cpu = cpu
        self._peak = memory_peak
        self._now = memory_now
        self._oom = oom
        self._v1 = v1
        self._start: tuple[int, int, int] | None = None

    @classmethod
    def find(cls, host_pid: int, root: Path = CGROUP_ROOT) -> CgroupMeter | None:
        """The meter of the container whose PID 1 has this host pid; None where it cannot be read."""
        try:
            lines = Path(f"/proc/{host_pid}/cgroup").read_text().splitlines()
        except OSError:
            return None
        paths = {}
        for line in lines:
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                paths[controller] = path.lstrip("/")
        if "cpuacct" in paths and "memory" in paths:
            cpu_dir, memory_dir = root / "cpuacct" / paths["cpuacct"], root / "memory" / paths["memory"]
            meter = cls(
                cpu_dir / "cpuacct.usage",
                memory_dir / "memory.max_usage_in_bytes",
                memory_dir / "memory.usage_in_bytes",
                memory_dir / "memory.oom_control",
                v1=True,
            )
        elif "" in paths:
            unified = root / paths[""] if (root / paths[""]).exists() else root / "unified" / paths[""]
            peak = unified / "memory.peak"
            meter = cls(unified / "cpu.stat", peak if peak.exists() else None, unified / "memory.current",
                        unified / "memory.events", v1=False)  # fmt: skip
        else:
            return None
        try:
            meter._read()
            meter._reset_peak()
        except OSError as exc:
            log.info("no cgroup meter for the sandboxes (%s): the harness's own figures stand", exc)
            return None
        return meter

    def start(self) -> None:
        self._reset_peak()
        self._start = self._read()

    def finish(self) -> TestUsage | None:
        if self._start is None:
            return None
        try:
            cpu_ns, memory, ooms = self._read()
            peak = self._read_int(self._peak) if self._peak is not None else memory
        except OSError as exc:  # the container is gone: the harness's own figures stand
            log.warning("could not read a sandbox's cgroup: %s", exc)
            self._start = None
            return None
        start_cpu_ns, start_memory, start_ooms = self._start
        self._start = None
        return TestUsage(
            cpu_ms=(cpu_ns - start_cpu_ns) // 1_000_000,
            memory_bytes=max(0, peak - start_memory),
            oom_kills=ooms - start_ooms,
        )

    def memory_now(self) -> int | None:
        """What the container's cgroup holds now (processes, tmpfs files, page cache); None when
        the container is gone."""
        try:
            return self._read_int(self._now)
        except OSError:
            return None

    def _reset_peak(self) -> None:
        if self._peak is not None:
            # v1 resets max_usage_in_bytes to the current usage on any write; v2's memory.peak
            # takes a reset since Linux 6.12 (older kernels refuse: the peak is then the cgroup's
            # lifetime peak, which only ever errs towards reporting more memory).
            try:
                self._peak.write_text("0")
            except OSError:
                if self._v1:
                    raise

    def _read(self) -> tuple[int, int, int]:
        return self._cpu_ns(), self._read_int(self._now), self._counter(self._oom, "oom_kill")

    def _cpu_ns(self) -> int:
        if self._v1:
            return self._read_int(self._cpu)
        return self._counter(self._cpu, "usage_usec") * 1000

    @staticmethod
    def _read_int(path: Path) -> int:
        return int(path.read_text().split()[0])

    @staticmethod
    def _counter(path: Path, key: str) -> int:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
        return 0
