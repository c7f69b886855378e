"""Keep programs, which run as the harness's own uid, away from the harness.

Not dumpable: the harness's /proc entries (fds, memory, environ) belong to root, so a program can
neither read the job (hidden tests' inputs) from its memory nor write forged events into its
stdout. Ignored signals: only SIGKILL and SIGSTOP still reach it, and the host notices either.
"""

from __future__ import annotations

import ctypes
import signal

_PR_SET_DUMPABLE = 4
_IGNORED_SIGNALS = (
    signal.SIGHUP,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGTERM,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGTSTP,
    signal.SIGTTIN,
    signal.SIGTTOU,
)
# Ignored dispositions survive exec: a program gets these back at their defaults, together with
# the two Python itself ignores.
RESET_SIGNALS = (*_IGNORED_SIGNALS, signal.SIGPIPE, signal.SIGXFSZ)


def _set_dumpable(dumpable: bool) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_DUMPABLE, int(dumpable), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE) failed")


def shield_harness() -> None:
    _set_dumpable(False)
    for sig in _IGNORED_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def unshield_child() -> None:
    """In a forked child about to exec a program: undo what it inherited from the harness.

    Dumpable again so it may set its own /proc attributes before exec; exec replaces the memory
    it shares with the harness, and no other program is alive at this point to look.
    """
    for sig in RESET_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    _set_dumpable(True)
