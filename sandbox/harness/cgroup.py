"""The container's memory cgroup, as the harness sees it from inside."""

from __future__ import annotations

# Docker mounts the container's own cgroup read-only: v1 keeps the OOM counter in
# memory.oom_control, v2 in memory.events. Both name it oom_kill.
_COUNTER_FILES = ("/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events")


def oom_kill_count() -> int:
    """How many processes the kernel's OOM killer has killed in this container so far."""
    for path in _COUNTER_FILES:
        try:
            with open(path, encoding="ascii") as counters:
                for line in counters:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except OSError:
            continue
    return 0
