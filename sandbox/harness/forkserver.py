"""The harness's side of the fork server: a zygote started at a container's first Python job and
kept for its next ones, asked to fork each test's process, checked before every use and replaced
when anything is wrong with it.

The zygote (zygote.py) is started like the program itself, in the run directory with the job's
environment, and answers on a socket. For a test the harness sends the test's run directory,
limits and environment, and the ends of the test's pipes (SCM_RIGHTS); the zygote's child sends
back its pid once it is the harness's child (its parent exited), and from there on the harness
watches, stops and reaps it exactly as a program it forked itself.

Programs run as the zygote's uid, so they can signal it and change its limits and scheduling. So
the zygote is used only while it is alive, not stopped and answering, and it refuses to fork once
its own state changed; any doubt and it is discarded, before anything of the program ran, and the
test runs the plain way (fork and exec). The reaper spares the zygote (`spared`), tracked by a
pidfd.
"""

from __future__ import annotations

import array
import os
import select
import signal
import socket

from sandbox.harness import reaper, shield, zygote
from sandbox.protocol import Limits

# How long a zygote may take to start (a cold python3 on a busy machine), and to answer a request
# with its child's pid (two forks and a few system calls).
_START_S = 5.0
_ANSWER_S = 2.0
# A job whose zygotes keep breaking (a program killing each one) runs the plain way from then on.
_MAX_STARTS = 3
_MAX_ANSWER = 64


class Unavailable(Exception):
    """The fork server could not start this test's program; nothing of the program ran."""


class _Zygote:
    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        # Opened before anything could reap it (only the harness reaps its children).
        self.pidfd = os.pidfd_open(pid)
        self.sock = sock

    def stopped(self) -> bool:
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as stat:
                return stat.read().rpartition(b")")[2].split()[0] in (b"T", b"t")
        except (OSError, IndexError):
            return False

    def answer(self, timeout_s: float) -> bytes:
        """Its next message; b"" when it hung up or said nothing in time."""
        if not select.select([self.sock], [], [], timeout_s)[0]:
            return b""
        try:
            return self.sock.recv(_MAX_ANSWER)
        except OSError:
            return b""

    def kill(self) -> None:
        """Kill it with its process group (a middle process, or a child that has not reported
        yet), and reap it. The group's number is its pid, reserved until it is reaped."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitid(os.P_PIDFD, self.pidfd, os.WEXITED)
        except ChildProcessError:
            pass  # the reaper was first

    def close(self) -> None:
        os.close(self.pidfd)
        self.sock.close()


class ForkServer:
    """The fork server of a job, kept for the container's next jobs that start programs the same way
    (a warm sandbox serves one user, and no job with hidden tests is followed by another)."""

    def __init__(self, argv: tuple[str, ...], env: dict[str, str]) -> None:
        self._argv = argv
        self._env = env
        self._zygote: _Zygote | None = None
        self._starts = 0

    @classmethod
    def for_job(
        cls, kept: ForkServer | None, wanted: bool, argv: tuple[str, ...], env: dict[str, str]
    ) -> ForkServer | None:
        """The fork server for a new job: the one kept from the last job when it starts programs
        the same way, else a new one (or none, when the job wants none)."""
        if kept is not None and wanted and (kept._argv, kept._env) == (argv, env):
            kept._starts = 0
            return kept
        if kept is not None:
            kept.close()
        return cls(argv, env) if wanted else None

    def ensure(self, run_dir: str) -> None:
        """Start a zygote if there is none. Call while no program runs and run_dir does not exist:
        the zygote starts in it, empty, so that start-up makes the program's file name absolute
        there, and finds nothing to run should it ever get past the hook."""
        if self._zygote is not None and not self._usable(self._zygote):
            self._discard()
        if self._zygote is not None or self._starts >= _MAX_STARTS:
            return
        self._starts += 1
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        os.mkdir(run_dir, 0o755)
        try:
            pid = _spawn(self._argv, self._env, run_dir, theirs)
        except OSError:
            ours.close()
            os.rmdir(run_dir)
            return
        finally:
            theirs.close()
        self._zygote = _Zygote(pid, ours)
        try:
            if self._zygote.answer(_START_S) != zygote.READY:
                self._discard()
        finally:
            os.rmdir(run_dir)  # the zygote left it once ready (or is dead)

    def spared(self) -> reaper.Spared | None:
        return None if self._zygote is None else reaper.Spared(self._zygote.pid, self._zygote.pidfd)

    def start(self, cwd: str, env: dict[str, str], limits: Limits, fds: tuple[int, int, int, int]) -> int:
        """Have the zygote start the program's process on these pipes (stdin, stdout, stderr, spawn
        report); its pid, a child of the harness's. Raises Unavailable before any of it ran."""
        z = self._zygote
        if z is None:
            raise Unavailable("no fork server")
        if not self._usable(z):
            self._discard()
            raise Unavailable("the fork server was stopped or killed")
        fields = [
            cwd,
            str(limits.cpu_ms),
            "" if limits.address_space_bytes is None else str(limits.address_space_bytes),
            str(limits.file_size_bytes),
            str(limits.open_files),
            *(f"{key}={value}" for key, value in env.items()),
        ]
        request = zygote.SEPARATOR.join(os.fsencode(field) for field in fields)
        try:
            z.sock.sendmsg([request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        except OSError as exc:
            self._discard()
            raise Unavailable("the fork server hung up") from exc
        answer = z.answer(_ANSWER_S)
        if answer.startswith(zygote.CHILD):
            return int(answer[len(zygote.CHILD) :])
        # Refused (its state changed), hung up or too slow. A child still on its way dies with the
        # zygote's group; one whose word came just now is the harness's child, killed by its pid.
        self._zygote = None
        z.kill()
        late = z.answer(0)
        z.close()
        if late.startswith(zygote.CHILD):
            pid = int(late[len(zygote.CHILD) :])
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        raise Unavailable(f"the fork server did not start the program ({answer.decode(errors='replace')!r})")

    def close(self) -> None:
        if self._zygote is not None:
            self._discard()

    @staticmethod
    def _usable(z: _Zygote) -> bool:
        # Between tests no program runs that could change this after the look.
        return reaper.Spared(z.pid, z.pidfd).alive() and not z.stopped()

    def _discard(self) -> None:
        assert self._zygote is not None
        self._zygote.kill()
        self._zygote.close()
        self._zygote = None


def _spawn(argv: tuple[str, ...], env: dict[str, str], cwd: str, sock: socket.socket) -> int:
    """The zygote's process: argv and env as the program's own, the socket as its fd 3, and pipes
    for stdin, stdout and stderr (as a program has; start-up sizes their buffers by what they
    are). Nothing is ever written to its stdin; what it writes goes nowhere."""
    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            shield.unshield_child()  # the dispositions a program starts with; it hides itself again
            os.setsid()  # its own group: the harness kills a zygote with whatever it is forking
            os.dup2(stdin_r, 0)
            os.dup2(out_w, 1)
            os.dup2(out_w, 2)
            os.dup2(sock.fileno(), zygote.SOCKET_FD)
            os.set_inheritable(zygote.SOCKET_FD, True)  # dup2 onto itself would leave it close-on-exec
            os.closerange(zygote.SOCKET_FD + 1, 65536)
            os.chdir(cwd)
            os.execvpe(argv[0], list(argv), env)
        finally:
            os._exit(127)
    for fd in (stdin_r, stdin_w, out_r, out_w):
        os.close(fd)
    return pid
