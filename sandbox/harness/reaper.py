"""Kill every process in the container but the harness, which is PID 1, and the fork server's
zygote while it lives.

Programs run as the harness's own uid. Without a zygote, kill(-1) reaches all of them in one call.
With one it would kill the zygote too, so each other process is killed by number instead: that
races with processes still forking, so it goes in rounds until the /proc scan finds none left (a
fork bomb may be mid-fork during the first rounds; the container's pids limit bounds it). A
number is never a risk here: every process but these two is to die, whoever holds the number.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

_MAX_ROUNDS = 200


class StrayProcessError(RuntimeError):
    """Processes survived repeated SIGKILLs: the container can no longer isolate tests."""


@dataclass(frozen=True)
class Spared:
    """A child of the harness the reaper leaves alone for as long as it lives. Its pid is spared
    only while its pidfd says it is still that process: the harness reaps it at the latest in
    the reaper's next round, and the number may be reused from then on."""

    pid: int
    pidfd: int

    def alive(self) -> bool:
        try:
            # WNOWAIT: only look; a stopped process is alive (the caller decides what it is worth).
            return os.waitid(os.P_PIDFD, self.pidfd, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
        except ChildProcessError:
            return False  # dead and already reaped


def kill_strays(spared: Spared | None = None) -> None:
    me = os.getpid()
    for attempt in range(_MAX_ROUNDS):
        keep = {1, me}
        if spared is None:
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass  # nobody left to signal
        else:
            if spared.alive():
                keep.add(spared.pid)
            _kill_all_but(keep)
        _reap_children()
        if not _others_alive(keep):
            # Every parent is dead, so whatever died last is PID 1's to reap: its CPU time must
            # count for the test it belongs to.
            _reap_children()
            return
        time.sleep(min(0.001 * (attempt + 1), 0.02))
    raise StrayProcessError("processes survived SIGKILL")


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _kill_all_but(keep: set[int]) -> None:
    for pid in _pids():
        if pid not in keep:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue  # gone meanwhile


def _reap_children() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _others_alive(keep: set[int]) -> bool:
    for pid in _pids():
        if pid in keep:
            continue
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                # The state letter follows the parenthesised command name, which may itself
                # contain spaces and parentheses: split at the last ')'.
                state = stat.read().rpartition(b")")[2].split()[0]
        except (OSError, IndexError):
            continue  # gone while we looked
        # Zombies hold no resources; pid 1 reaps the ones it inherited.
        if state not in (b"Z", b"X"):
            return True
    return False
