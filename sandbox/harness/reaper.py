"""Kill every process in the container but the harness, which is PID 1.

Programs run as the harness's own uid, so kill(-1) reaches all of them in one call; the /proc scan
then confirms nothing survived (a fork bomb may be mid-fork during the first rounds).
"""

from __future__ import annotations

import os
import signal
import time

_MAX_ROUNDS = 200


class StrayProcessError(RuntimeError):
    """Processes survived repeated SIGKILLs: the container can no longer isolate tests."""


def kill_strays() -> None:
    me = os.getpid()
    for attempt in range(_MAX_ROUNDS):
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass  # nobody left to signal
        _reap_children()
        if not _others_alive(me):
            # Every parent is dead, so whatever died last is PID 1's to reap: its CPU time must
            # count for the test it belongs to.
            _reap_children()
            return
        time.sleep(min(0.001 * (attempt + 1), 0.02))
    raise StrayProcessError("processes survived SIGKILL")


def _reap_children() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _others_alive(me: int) -> bool:
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in (1, me):
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                # The state letter follows the parenthesised command name, which may itself
                # contain spaces and parentheses: split at the last ')'.
                state = stat.read().rpartition(b")")[2].split()[0]
        except (OSError, IndexError):
            continue  # gone while we looked
        # Zombies hold no resources; pid 1 reaps the ones it inherited.
        if state not in (b"Z", b"X"):
            return True
    return False
