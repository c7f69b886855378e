"""The host's per-test reading of a container's cgroup, on a cgroup tree laid out in a folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.cgroup_meter import CgroupMeter, TestUsage


def _v1_tree(root: Path, container: str) -> tuple[Path, Path]:
    cpu = root / "cpuacct" / "docker" / container
    memory = root / "memory" / "docker" / container
    cpu.mkdir(parents=True)
    memory.mkdir(parents=True)
    (cpu / "cpuacct.usage").write_text("1000000000\n")
    (memory / "memory.usage_in_bytes").write_text("10485760\n")
    (memory / "memory.max_usage_in_bytes").write_text("99999999\n")
    (memory / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    return cpu, memory


@pytest.fixture
def proc_cgroup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Point /proc/<pid>/cgroup at a file of ours."""
    files: dict[int, Path] = {}
    real = Path.read_text

    def read_text(self: Path, *args: object, **kwargs: object) -> str:
        for pid, path in files.items():
            if str(self) == f"/proc/{pid}/cgroup":
                return real(path)
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", read_text)

    def make(pid: int, content: str) -> None:
        files[pid] = tmp_path / f"cgroup-{pid}"
        files[pid].write_text(content)

    return make


def test_a_v1_container_is_measured_test_by_test(tmp_path: Path, proc_cgroup) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "sys"
    cpu, memory = _v1_tree(root, "abc")
    proc_cgroup(4242, "4:memory:/docker/abc\n2:cpuacct,cpu:/docker/abc\n0::/docker/abc\n")
    meter = CgroupMeter.find(4242, root)
    assert meter is not None
    # Finding it resets the peak to the current usage (the kernel does that on any write).
    assert (memory / "memory.max_usage_in_bytes").read_text() == "0"
    (memory / "memory.max_usage_in_bytes").write_text("10485760\n")
    meter.start()
    (cpu / "cpuacct.usage").write_text("2500000000\n")
    (memory / "memory.max_usage_in_bytes").write_text(str(10485760 + 150 * 2**20))
    (memory / "memory.usage_in_bytes").write_text("10485760\n")
    (memory / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    assert meter.finish() == TestUsage(cpu_ms=1500, memory_bytes=150 * 2**20, oom_kills=1)
    assert meter.finish() is None  # one reading per start


def test_no_readable_tree_means_no_meter(tmp_path: Path, proc_cgroup) -> None:  # type: ignore[no-untyped-def]
    proc_cgroup(4343, "4:memory:/docker/gone\n2:cpuacct:/docker/gone\n")
    assert CgroupMeter.find(4343, tmp_path / "sys") is None
    assert CgroupMeter.find(999_999_999, tmp_path / "sys") is None  # no such process


def test_a_container_gone_before_its_reading_leaves_the_harness_figures(tmp_path: Path, proc_cgroup) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "sys"
    cpu, memory = _v1_tree(root, "gone")
    proc_cgroup(4444, "4:memory:/docker/gone\n2:cpuacct:/docker/gone\n")
    meter = CgroupMeter.find(4444, root)
    assert meter is not None
    meter.start()
    for path in (*cpu.iterdir(), *memory.iterdir()):
        path.unlink()
    assert meter.finish() is None
