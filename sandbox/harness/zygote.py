"""The fork server's zygote: a clean python3, started as the program would be, that forks a fresh
process for each Python test of a job.

The harness starts it exactly as it would start the program — `python3 -B main.py` in the run
directory, with the job's environment — plus a socket as fd 3. Every python3 of the image runs
`sandbox/recipe/sitecustomize.py` during start-up; that hook sees the harness's socket and calls
`serve`, so the zygote waits in the middle of CPython's start-up, before the program's file was
even opened. For each test it forks; the child makes itself the program's process and returns —
out of `serve`, out of sitecustomize — and CPython's own start-up carries on: it puts the
program's folder in front of sys.path, runs main.py as `__main__`, prints tracebacks, handles
SystemExit and finalises as it always does. Only the start-up's first part is shared.

The zygote is part of the sandbox's trust boundary. It never holds a test's input (the child's
stdin comes by pipe from the harness), is not dumpable (its /proc files are root's), ignores every
signal it can, and checks before each fork that nothing changed its limits or scheduling from
outside, refusing to fork once anything did. Each child is forked through a middle process that
exits at once, so the child's parent is PID 1, as a program's is: the harness reaps it, and the
zygote never sees how a test ended.

Imports only what CPython's start-up already loaded plus `ctypes`, `resource`, `select`, `_socket`
and the harness's `program_setup` (with `math`); the child removes all of them from sys.modules
before the program runs. What stays is invisible to the program's own imports but not to every
look at the interpreter: see tests/sandbox/test_fork_server.py for what is compared.
"""

from __future__ import annotations

import _signal
import _socket
import ctypes
import os
import resource
import select
import sys

from sandbox.harness import program_setup

SOCKET_FD = 3
READY = b"ready"
CHILD = b"child "  # followed by the child's pid
CHANGED = b"changed"  # the zygote's own state changed: it refuses and ends
BAD_REQUEST = b"bad request"
FDS = 4  # stdin, stdout, stderr and the spawn report, in this order
SEPARATOR = b"\0"  # between a request's fields: nothing in an environment or a path contains it

_MAX_REQUEST = 1 << 20
_PR_SET_DUMPABLE = 4
_SPAWN_ERROR_BYTES = 1000
# SIGCHLD keeps its default: ignoring it would make the kernel reap the middle processes.
_UNTOUCHABLE = (_signal.SIGKILL, _signal.SIGSTOP, _signal.SIGCHLD)
_RLIMITS = tuple(getattr(resource, name) for name in sorted(dir(resource)) if name.startswith("RLIMIT_"))
# ioprio_get(2) has no wrapper: its number on the machines the image is built for.
_IOPRIO_GET = {"x86_64": 252, "aarch64": 31}.get(os.uname().machine)
_IOPRIO_WHO_PROCESS = 1


def serve(modules: set[str], path: list[str], importers: set[str]) -> None:
    """Be the zygote until the harness hangs up; return only in a forked child that is ready to be
    the program. The arguments are sys.modules' names, sys.path and sys.path_importer_cache's
    keys as CPython's start-up left them, before the fork server was loaded."""
    try:
        child = _zygote()
    except BaseException:
        # Never fall through into start-up's next step, which would run the program in here.
        os._exit(1)
    child.become_program(modules, path, importers)


class _Child:
    """A forked child's inheritance: the zygote's socket, its handle on the C library, the signal
    dispositions start-up left, the environment the zygote started with, and its test's request."""

    def __init__(
        self,
        sock: _socket.socket,
        libc: ctypes.CDLL,
        dispositions: list[tuple[int, object]],
        start_env: dict[str, str],
        fields: list[bytes],
        fds: list[int],
    ) -> None:
        self.sock = sock
        self.libc = libc
        self.dispositions = dispositions
        self.start_env = start_env
        self.fields = fields
        self.fds = fds

    def become_program(self, modules: set[str], path: list[str], importers: set[str]) -> None:
        """What the harness's own forked child does before exec (process._exec_child), then make
        the interpreter look as start-up left it. Failures go to the spawn report."""
        stdin_r, out_w, err_w, report_w = self.fds
        try:
            for sig, handler in self.dispositions:
                _signal.signal(sig, handler)
            _await_adoption()
            self.sock.send(CHILD + str(os.getpid()).encode())
            # Only now: until the harness has its pid, killing the zygote's group kills it too.
            os.setsid()
            self.sock.detach()  # closed below with every other descriptor, never twice
            os.dup2(stdin_r, 0)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            os.closerange(3, report_w)
            os.closerange(report_w + 1, 65536)
            # Dumpable again only once the zygote's socket is closed.
            _set_dumpable(self.libc, True)
            cwd, cpu_ms, address_space, file_size, open_files = (os.fsdecode(f) for f in self.fields[:5])
            program_setup.apply_limits(
                int(cpu_ms), int(address_space) if address_space else None, int(file_size), int(open_files)
            )
            program_setup.step_back()
            os.chdir(cwd)
            env = dict(os.fsdecode(pair).partition("=")[::2] for pair in self.fields[5:])
            os.environ.clear()
            os.environ.update(env)
            _forget_zygote(modules, path, importers)
            started_with, search_path = _search_path(self.start_env), _search_path(env)
            sys.path[: len(started_with)] = search_path
        except BaseException as exc:  # whatever happened, the harness must hear of it
            message = f"fork server: {type(exc).__name__}: {exc}".encode(errors="replace")
            os.write(report_w, message[:_SPAWN_ERROR_BYTES])
            os._exit(127)
        os.close(report_w)
        if search_path != started_with:
            # PYTHONPATH (the graphics shim's boot folder) decides which sitecustomize start-up
            # runs, and the zygote's ran: run the one the program's start-up would have.
            del sys.modules["sitecustomize"]
            sys.modules["site"].execsitecustomize()


def _zygote() -> _Child:
    """Serve requests until one's fork returns in the child."""
    sock = _socket.socket(fileno=SOCKET_FD)
    libc = ctypes.CDLL(None, use_errno=True)
    dispositions = _ignore_signals()
    _set_dumpable(libc, False)
    # It started in the run directory, which is emptied between tests: hold on to nothing there.
    os.chdir("/")
    start_env = dict(os.environ)
    state = _own_state(libc)
    sock.send(READY)
    while True:
        fields, fds = _receive(sock)
        if len(fds) != FDS or len(fields) < 5:
            sock.send(BAD_REQUEST)
            os._exit(1)
        if _own_state(libc) != state:
            sock.send(CHANGED)
            os._exit(1)
        if _fork_twice(fds):
            return _Child(sock, libc, dispositions, start_env, fields, fds)


def _ignore_signals() -> list[tuple[int, object]]:
    """Ignore every signal that can be; the dispositions they had, for the children."""
    saved = []
    for sig in _signal.valid_signals():
        if sig in _UNTOUCHABLE:
            continue
        try:
            saved.append((sig, _signal.signal(sig, _signal.SIG_IGN)))
        except (OSError, ValueError):
            continue  # reserved by the C library
    return saved


def _set_dumpable(libc: ctypes.CDLL, dumpable: bool) -> None:
    if libc.prctl(_PR_SET_DUMPABLE, int(dumpable), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE) failed")


def _own_state(libc: ctypes.CDLL) -> tuple[object, ...]:
    """Everything a process of the same uid may change about the zygote from outside and that its
    children would inherit: every resource limit (prlimit), the nice value (setpriority), the CPU
    affinity, the scheduling policy and priority (sched_setaffinity, sched_setscheduler) and the
    I/O priority (ioprio_set). A later test could read any of them: a channel out of a hidden one."""
    return (
        tuple(resource.getrlimit(limit) for limit in _RLIMITS),
        os.getpriority(os.PRIO_PROCESS, 0),
        os.sched_getaffinity(0),
        os.sched_getscheduler(0),
        os.sched_getparam(0).sched_priority,
        None if _IOPRIO_GET is None else libc.syscall(_IOPRIO_GET, _IOPRIO_WHO_PROCESS, 0),
    )


def _receive(sock: _socket.socket) -> tuple[list[bytes], list[int]]:
    data, ancillary, flags, _ = sock.recvmsg(_MAX_REQUEST, _socket.CMSG_SPACE(FDS * 4))
    if not data:
        os._exit(0)  # the harness hung up: the job is over
    fds = []
    for level, kind, payload in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            whole = len(payload) - len(payload) % 4
            fds += [int.from_bytes(payload[i : i + 4], sys.byteorder) for i in range(0, whole, 4)]
    if flags & (_socket.MSG_CTRUNC | _socket.MSG_TRUNC):
        fds.append(-1)  # refused below: some of it was lost
    return data.split(SEPARATOR), fds


def _fork_twice(fds: list[int]) -> bool:
    """True in the grandchild; in the zygote, False once the middle process is gone (and with it
    the zygote's only tie to the child)."""
    middle = os.fork()
    if middle == 0:
        try:
            if os.fork() == 0:
                return True
        except BaseException:
            os._exit(1)  # the harness hears from no child and falls back on plain exec
        os._exit(0)
    for fd in fds:
        os.close(fd)
    os.waitpid(middle, 0)
    return False


def _await_adoption() -> None:
    """Wait until the middle process is gone: the child is then PID 1's, as a program the harness
    starts itself is, so the harness reaps it and counts its CPU time as it always does."""
    while (parent := os.getppid()) != 1:
        try:
            pidfd = os.pidfd_open(parent)
        except ProcessLookupError:
            continue  # already gone
        try:
            select.select([pidfd], [], [])
        finally:
            os.close(pidfd)


def _forget_zygote(modules: set[str], path: list[str], importers: set[str]) -> None:
    """Leave the interpreter as CPython's start-up left it: none of the zygote's modules, and the
    search path without the harness's folder."""
    for name in set(sys.modules) - modules:
        del sys.modules[name]
    sys.path[:] = path
    for key in set(sys.path_importer_cache) - importers:
        del sys.path_importer_cache[key]


def _search_path(env: dict[str, str]) -> list[str]:
    """What PYTHONPATH puts at the front of sys.path during start-up (site makes it absolute)."""
    value = env.get("PYTHONPATH", "")
    return [os.path.abspath(entry) for entry in value.split(os.pathsep)] if value else []
