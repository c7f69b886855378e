"""Run one program under limits and watch it until it ends.

The program gets its own session, resource limits, a fed stdin and two pipes that are read while
it runs, so neither an output flood nor a single endless line can grow the harness's memory past
the cap. The wall deadline is the harness's own: RLIMIT_CPU does not stop a program that sleeps.
When the program ends (or is stopped), every other process in the container is killed, so no
child outlives it. A Python job's programs may come from its fork server instead of fork and exec:
from there on nothing differs.
"""

from __future__ import annotations

import errno
import os
import resource
import selectors
import signal
import termios
import time
from dataclasses import dataclass
from typing import NoReturn

from sandbox.harness import forkserver, integrity, program_setup, reaper, shield, syntax_check
from sandbox.protocol import Limits

_CHUNK = 65536
_DRAIN_SECONDS = 1.0  # reading what is left in the pipes once every writer is dead
_SPAWN_ERROR_BYTES = 1000


@dataclass(frozen=True)
class Outcome:
    exit_code: int | None  # None when a signal ended the program
    signal: int | None
    cpu_ms: int
    wall_ms: int
    max_rss_bytes: int
    stdout: bytes
    stderr: bytes  # empty when stderr was merged into stdout
    output_exceeded: bool
    wall_exceeded: bool
    spawn_error: str | None = None  # exec failed; the program never ran


def run(
    argv: tuple[str, ...],
    *,
    cwd: str,
    env: dict[str, str],
    stdin: bytes,
    limits: Limits,
    merge_stderr: bool = False,
    stop_on_overflow: bool = True,
    fork_server: forkserver.ForkServer | None = None,
    spare: forkserver.ForkServer | None = None,
) -> Outcome:
    """Run argv to completion (or until a limit stops it) and kill everything it left behind.
    `spare`: a fork server whose zygote outlives a program it did not start (a compile step's)."""
    running = start(
        argv, cwd=cwd, env=env, limits=limits, merge_stderr=merge_stderr, fork_server=fork_server, spare=spare
    )
    if isinstance(running, Outcome):
        return running
    watch = _Watch(running, stdin, limits.output_bytes, stop_on_overflow)
    return watch.until_done(running.started + limits.wall_ms / 1000)


@dataclass(frozen=True)
class Running:
    """A program just started: the parent's ends of its pipes, and what to measure it from."""

    pid: int
    stdin_w: int
    out_r: int
    err_r: int  # out_r when stderr is merged
    spared: reaper.Spared | None
    started: float  # time.monotonic()
    children_before: resource.struct_rusage


def start(
    argv: tuple[str, ...],
    *,
    cwd: str,
    env: dict[str, str],
    limits: Limits,
    merge_stderr: bool = False,
    fork_server: forkserver.ForkServer | None = None,
    terminal: bool = False,
    spare: forkserver.ForkServer | None = None,
) -> Running | Outcome:
    """Start argv under its limits; an Outcome when it could not even start. With a fork server,
    its zygote forks the program's process where it can and is spared by the reaper; where it
    cannot, nothing of the program ran and it starts the plain way. With `terminal`, its stdin,
    stdout and stderr are one terminal (a live run's console), as on a person's own computer:
    Python's input() even writes its prompt to stderr there, in its place among the output."""
    if fork_server is not None:
        try:
            return _start(argv, cwd, env, limits, merge_stderr, fork_server, terminal, fork_server)
        except forkserver.Unavailable:
            pass
    return _start(argv, cwd, env, limits, merge_stderr, None, terminal, spare)


def _terminal() -> tuple[int, int, int, int]:
    """A pseudo-terminal for a live program: (stdin_r, stdin_w, out_r, out_w).

    A person types into it, so the program sees a terminal as it would on their computer: its
    stdout is line-buffered (C's stdio, Python's, and a prompt is flushed before input is read)
    and input comes a line at a time. The terminal neither echoes (the page shows what was typed)
    nor turns newlines into CR LF."""
    controller, program_end = os.openpty()
    attributes = termios.tcgetattr(program_end)
    attributes[1] &= ~termios.OPOST
    attributes[3] &= ~(termios.ECHO | termios.ECHONL)
    termios.tcsetattr(program_end, termios.TCSANOW, attributes)
    # Two descriptors on the controller, so stdin and stdout are watched apart as with pipes.
    return program_end, os.dup(controller), controller, program_end


def _start(
    argv: tuple[str, ...],
    cwd: str,
    env: dict[str, str],
    limits: Limits,
    merge_stderr: bool,
    fork_server: forkserver.ForkServer | None,
    terminal: bool,
    spare: forkserver.ForkServer | None,
) -> Running | Outcome:
    stdin_r, stdin_w, out_r, out_w = _terminal() if terminal else (*os.pipe(), *os.pipe())
    err_r, err_w = (out_r, out_w) if merge_stderr or terminal else os.pipe()
    report_r, report_w = os.pipe()  # O_CLOEXEC: closes by itself once exec succeeds
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    if fork_server is None:
        pid = os.fork()
        if pid == 0:
            _exec_child(argv, cwd, env, limits, stdin_r, out_w, err_w, report_w)
    else:
        try:
            pid = fork_server.start(cwd, env, limits, (stdin_r, out_w, err_w, report_w))
        except forkserver.Unavailable:
            for fd in {stdin_r, stdin_w, out_r, out_w, err_r, err_w, report_r, report_w}:
                os.close(fd)
            raise
    for fd in {stdin_r, out_w, err_w, report_w}:
        os.close(fd)
    spared = None if spare is None else spare.spared()
    spawn_error = _read_spawn_error(report_r)
    if spawn_error is not None:
        os.close(stdin_w)
        for fd in {out_r, err_r}:
            os.close(fd)
        os.waitpid(pid, 0)
        if fork_server is not None:
            # The fork server's own set-up failed, before the program ran: the plain way tells
            # whether anything is wrong with the program's start, as it would have.
            raise forkserver.Unavailable(spawn_error)
        return Outcome(
            exit_code=127,
            signal=None,
            cpu_ms=0,
            wall_ms=0,
            max_rss_bytes=0,
            stdout=b"",
            stderr=b"",
            output_exceeded=False,
            wall_exceeded=False,
            spawn_error=spawn_error,
        )
    return Running(pid, stdin_w, out_r, err_r, spared, started, children_before)


def _exec_child(
    argv: tuple[str, ...],
    cwd: str,
    env: dict[str, str],
    limits: Limits,
    stdin_r: int,
    out_w: int,
    err_w: int,
    report_w: int,
) -> NoReturn:
    """In the forked child: set up and exec; never returns. Exec failures go to report_w. Python's
    syntax check runs here instead (syntax_check): it execs nothing, so it stays shielded."""
    in_harness = argv[0] == syntax_check.COMMAND
    try:
        if not in_harness:
            shield.unshield_child()
        os.setsid()
        os.dup2(stdin_r, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.closerange(3, report_w)
        os.closerange(report_w + 1, 65536)
        # Every limit as the harness had it at its start first, so none a program reads depends on
        # what an earlier one did. (The fork server's zygote checks its own against its start.)
        for number, start in enumerate(integrity.recorded().rlimits):
            resource.setrlimit(number, start)
        program_setup.apply_limits(limits.cpu_ms, limits.address_space_bytes, limits.file_size_bytes, limits.open_files)
        os.chdir(cwd)
        if in_harness:
            syntax_check.run(argv[1], report_w)
        program_setup.step_back()
        os.execvpe(argv[0], list(argv), env)
    except BaseException as exc:  # whatever happened, the parent must hear of it
        message = f"{argv[0]}: {type(exc).__name__}: {exc}".encode(errors="replace")
        os.write(report_w, message[:_SPAWN_ERROR_BYTES])
    finally:
        os._exit(127)


def _cpu_ms_since(before: resource.struct_rusage) -> int:
    """CPU time of every process that ended since `before`, reaped by whoever started it or, once
    orphaned, by the harness as PID 1: the program and all its descendants. RLIMIT_CPU bounds each
    process alone, so a program handing its work down a chain of fresh forks is caught here."""
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    spent = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return round(spent * 1000)


def _read_spawn_error(report_r: int) -> str | None:
    chunks: list[bytes] = []
    while chunk := os.read(report_r, _SPAWN_ERROR_BYTES):
        chunks.append(chunk)
    os.close(report_r)
    return b"".join(chunks).decode(errors="replace") if chunks else None


class _Watch:
    """The parent's side of one running program: feeds stdin, drains output, waits for the end."""

    def __init__(self, running: Running, stdin: bytes, cap: int, stop_on_overflow: bool, live: bool = False) -> None:
        self.running = running
        self.pid = running.pid
        self.spared = running.spared
        self.pidfd = os.pidfd_open(running.pid)
        self.stdin_w: int | None = running.stdin_w
        self.stdin = memoryview(stdin)
        self.cap = cap
        self.stop_on_overflow = stop_on_overflow
        self.close_when_fed = True  # a live program's stdin stays open between two lines typed
        self.out_r = running.out_r
        self.err_r = running.err_r  # the same pipe as out_r when stderr is merged
        self.output: dict[int, bytearray] = {self.out_r: bytearray(), self.err_r: bytearray()}
        self.open_readers = set(self.output)
        self.exceeded = False
        self.selector = selectors.DefaultSelector()
        for fd in self.open_readers:
            os.set_blocking(fd, False)
            self.selector.register(fd, selectors.EVENT_READ)
        os.set_blocking(self.stdin_w, False)
        if stdin:
            self.selector.register(self.stdin_w, selectors.EVENT_WRITE)
        elif not live:  # a live program's stdin stays open for what a person types
            self._close_stdin()
        self.selector.register(self.pidfd, selectors.EVENT_READ)

    def until_done(self, deadline: float) -> Outcome:
        exit_status: tuple[int, resource.struct_rusage] | None = None
        wall_exceeded = False
        try:
            while exit_status is None and not (self.exceeded and self.stop_on_overflow):
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    wall_exceeded = True
                    break
                for key, _ in self.selector.select(timeout):
                    if key.fd == self.pidfd:
                        exit_status = self._reap()
                    elif key.fd == self.stdin_w:
                        self._feed()
                    else:
                        self._drain(key.fd)
            return self.finish(exit_status, wall_exceeded)
        finally:
            self._close_all()

    def finish(self, exit_status: tuple[int, resource.struct_rusage] | None, wall_exceeded: bool) -> Outcome:
        """Stop the program if it still runs, kill whatever it started, drain its pipes, and say
        how it ended."""
        ended = time.monotonic()
        if exit_status is None:
            os.kill(self.pid, signal.SIGKILL)
            exit_status = self._reap()
        # Whatever the program started dies with it; then its pipes reach end-of-file.
        reaper.kill_strays(self.spared)
        if self.stdin_w is not None:
            self._close_stdin()
        self._drain_rest()
        status, usage = exit_status
        stdout = bytes(self.output[self.out_r])
        stderr = b"" if self.err_r == self.out_r else bytes(self.output[self.err_r])
        return Outcome(
            exit_code=os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            signal=os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            cpu_ms=_cpu_ms_since(self.running.children_before),
            wall_ms=round((ended - self.running.started) * 1000),
            max_rss_bytes=usage.ru_maxrss * 1024,
            stdout=stdout,
            stderr=stderr,
            output_exceeded=self.exceeded,
            wall_exceeded=wall_exceeded,
        )

    def _reap(self) -> tuple[int, resource.struct_rusage]:
        self.selector.unregister(self.pidfd)
        _, status, usage = os.wait4(self.pid, 0)
        return status, usage

    def _feed(self) -> None:
        assert self.stdin_w is not None
        try:
            written = os.write(self.stdin_w, self.stdin[:_CHUNK])
        except BlockingIOError:
            return
        except BrokenPipeError:  # the program closed its stdin: it wants no more
            self.stdin = self.stdin[:0]
            self._close_stdin()
            return
        self.stdin = self.stdin[written:]
        if not self.stdin:
            if self.close_when_fed:
                self._close_stdin()
            else:
                self.selector.unregister(self.stdin_w)

    def _close_stdin(self) -> None:
        assert self.stdin_w is not None
        if self.stdin_w in self.selector.get_map():
            self.selector.unregister(self.stdin_w)
        os.close(self.stdin_w)
        self.stdin_w = None

    def _drain(self, fd: int) -> None:
        try:
            data = os.read(fd, _CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            data = b""  # a terminal whose program end closed: its end-of-file
        if not data:
            self.selector.unregister(fd)
            self.open_readers.discard(fd)
            return
        self.keep(fd, data)

    def keep(self, fd: int, data: bytes) -> None:
        """Hold what the program wrote, within the cap."""
        buffer = self.output[fd]
        room = self.cap - len(buffer)
        if len(data) > room:
            self.exceeded = True
        buffer += data[: max(room, 0)]

    def _drain_rest(self) -> None:
        give_up = time.monotonic() + _DRAIN_SECONDS
        while self.open_readers and time.monotonic() < give_up:
            for key, _ in self.selector.select(give_up - time.monotonic()):
                if key.fd in self.open_readers:
                    self._drain(key.fd)

    def _close_all(self) -> None:
        if self.stdin_w is not None:
            self._close_stdin()
        self.selector.close()
        for fd in self.output:
            os.close(fd)
        os.close(self.pidfd)
