"""A live run: one program in its owner's sandbox, with a person at the other end.

The session takes the owner's sandbox as a job would (their warm one, or a fresh one bound to
them) but no queue worker: it lasts as long as the person works with the program, which may be
minutes of thinking over an input() prompt. What the program writes comes out of `updates()` as it
arrives; what the person types, presses or clicks goes in through `send()`. It ends when the
program does, on Stop, after `live_idle_s` with neither output nor input, at the session's wall
time, or past its output limit, and `updates()` ends with one `LiveEnded` saying which. The sandbox
then serves its owner's next job only if the program ended by itself and nothing was amiss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from runner.executor import ExecRequest, InfraError
from runner.live_stream import LiveStream, LiveTranscript, Tampered
from runner.sandbox_container import Launcher, Sandbox
from runner.sandbox_job import JobPlan
from sandbox import protocol

log = logging.getLogger(__name__)

_RECV_BYTES = 256 * 1024

# How a live session ended, as the person is told.
LiveEnding = Literal[
    "finished",  # the program ended by itself with exit code 0
    "runtime_error",  # it ended by itself otherwise (an exception, a non-zero exit, a signal)
    "compile_error",  # it never ran: the compiler refused it
    "stopped",  # the person pressed Stop (or left the page)
    "idle",  # nothing in or out for live_idle_s
    "time_limit",  # the session's wall time ran out
    "memory_limit",
    "output_limit",
    "error",  # the sandbox failed, or was tampered with
]


@dataclass(frozen=True)
class LiveOutput:
    stream: str  # "stdout" or "stderr"
    data: bytes


@dataclass(frozen=True)
class LiveFrame:
    width: int
    height: int
    png: bytes


@dataclass(frozen=True)
class LiveEnded:
    ending: LiveEnding
    exit_code: int | None
    time_ms: int
    message: str  # one sentence for the person
    compile_output: str = ""


LiveUpdate = LiveOutput | LiveFrame | LiveEnded
# What a person may send the program (Stop has its own method, EndLive is the session's).
PersonMessage = protocol.TypeIn | protocol.CloseStdin | protocol.KeyEvent | protocol.PointerEvent | protocol.CloseWindow

_STATUS_ENDINGS: dict[str, LiveEnding] = {
    protocol.STATUS_TIME_LIMIT: "time_limit",
    protocol.STATUS_MEMORY_LIMIT: "memory_limit",
    protocol.STATUS_OUTPUT_LIMIT: "output_limit",
    protocol.STATUS_RUNTIME_ERROR: "runtime_error",
}


class LiveSession:
    def __init__(
        self,
        launcher: Launcher,
        sandbox: Sandbox,
        plan: JobPlan,
        idle_s: float,
        finished: Callable[[Sandbox, str | None], None],
    ) -> None:
        """finished(sandbox, why_discard): hands the sandbox back when the session is over."""
        self._launcher = launcher
        self._sandbox = sandbox
        self._plan = plan
        self._idle_s = idle_s
        self._finished = finished
        self._write = asyncio.Lock()  # one frame at a time on the attach stream
        # Live frames may only follow the job's own (the harness would take one for a job).
        self._job_sent = asyncio.Event()
        self._last_activity = time.monotonic()
        self._stop_reason: LiveEnding | None = None
        self._ended = False

    @property
    def sandbox_id(self) -> str:
        return self._sandbox.container_id

    async def send(self, message: PersonMessage) -> None:
        """Pass what the person did to the program (ignored once it ended)."""
        self._last_activity = time.monotonic()
        await self._send(message)

    async def stop(self, reason: LiveEnding = "stopped") -> None:
        """End the program now; `updates()` then ends with a LiveEnded of this reason."""
        if self._stop_reason is None:
            self._stop_reason = reason
        await self._send(protocol.Stop())

    async def _send(self, message: protocol.LiveMessage) -> None:
        await self._job_sent.wait()
        if self._ended:
            return
        async with self._write:
            try:
                await asyncio.get_running_loop().sock_sendall(self._sandbox.sock, protocol.encode_live(message))
            except OSError:
                pass  # the sandbox is gone: updates() says so

    async def updates(self) -> AsyncIterator[LiveUpdate]:
        """Start the program and yield what it does until it ends; the last update is a LiveEnded.
        Run it to its end: that is what hands the sandbox back (also when cancelled)."""
        stream = LiveStream(self._plan)
        ending: LiveEnded | None = None
        discard: str | None = "the session did not finish"
        started = time.monotonic()
        try:
            try:
                async with asyncio.timeout(self._plan.deadline_s):
                    async with self._write:
                        await asyncio.get_running_loop().sock_sendall(self._sandbox.sock, self._plan.frame)
                    self._job_sent.set()
                    async for update in self._read(stream):
                        yield update
            except TimeoutError:
                message = "the session ran past its time and was stopped"
                ending = LiveEnded("time_limit", None, _ms_since(started), message)
            except Tampered as exc:
                log.warning("live session in sandbox %s tampered with: %s", self.sandbox_id[:12], exc)
                message = "the program interfered with the sandbox's supervisor"
                ending = LiveEnded("error", None, _ms_since(started), message)
            except InfraError as exc:
                log.warning("live session in sandbox %s failed: %s", self.sandbox_id[:12], exc.message)
                ending = LiveEnded("error", None, _ms_since(started), "the sandbox failed; try again")
            except OSError as exc:
                log.warning("live session lost sandbox %s: %s", self.sandbox_id[:12], exc)
                ending = LiveEnded("error", None, _ms_since(started), "the sandbox was lost; try again")
            if ending is None:
                ending, discard = await self._ending(stream.transcript, started)
            else:
                discard = ending.message
            yield ending
        finally:
            self._ended = True
            self._job_sent.set()  # nothing waits for a job that will not be sent
            if stream.ended and discard is None:
                # The harness waits for this before it reads its next job.
                # Under the lock: a person's frame half written must not interleave with it.
                end = protocol.encode_live(protocol.EndLive())
                async with self._write:
                    with contextlib.suppress(OSError):
                        await asyncio.get_running_loop().sock_sendall(self._sandbox.sock, end)
            self._finished(self._sandbox, discard)

    async def _read(self, stream: LiveStream) -> AsyncIterator[LiveOutput | LiveFrame]:
        loop = asyncio.get_running_loop()
        while not stream.ended:
            wait = self._last_activity + self._idle_s - time.monotonic()
            if wait <= 0 and self._stop_reason is None:
                await self.stop("idle")
                wait = self._idle_s  # the harness answers a Stop at once
            try:
                async with asyncio.timeout(max(wait, 0.05)):
                    data = await loop.sock_recv(self._sandbox.sock, _RECV_BYTES)
            except TimeoutError:
                continue
            if not data:
                return  # end of stream: _ending says why
            for event in stream.feed(data):
                self._last_activity = time.monotonic()
                if isinstance(event, protocol.Output):
                    yield LiveOutput(event.stream, event.data)
                else:
                    yield LiveFrame(event.image.width, event.image.height, event.image.data)

    async def _ending(self, transcript: LiveTranscript, started: float) -> tuple[LiveEnded, str | None]:
        """How the session ended, and why its sandbox must go (None: it may stay warm)."""
        elapsed = _ms_since(started)
        if transcript.failure is not None:
            return LiveEnded("error", None, elapsed, "the sandbox failed; try again"), transcript.failure.message
        compiled = transcript.compile_report
        if compiled is not None and not compiled.ok:
            output = compiled.output.decode("utf-8", errors="replace")
            return LiveEnded("compile_error", None, 0, "see the message below", output), None
        report = transcript.report
        if report is None or not transcript.done:
            oom = await self._launcher.oom_killed(self._sandbox)
            if oom:
                return LiveEnded("memory_limit", None, elapsed, "the program ran out of memory"), "out of memory"
            return LiveEnded("error", None, elapsed, "the sandbox stopped unexpectedly"), "the stream ended early"
        time_ms = report.time_ms
        if report.status == protocol.STATUS_STOPPED:
            reason = self._stop_reason or "stopped"
            idle_s = round(self._idle_s)
            message = f"stopped after {idle_s} s with no output and no input" if reason == "idle" else "stopped"
            return LiveEnded(reason, report.exit_code, time_ms, message), "the program was stopped"
        if report.status == protocol.STATUS_OK:
            return LiveEnded("finished", 0, time_ms, "finished"), None
        ending = _STATUS_ENDINGS.get(report.status, "runtime_error")
        if ending == "runtime_error":
            code = f"exit code {report.exit_code}" if report.exit_code is not None else f"signal {report.signal}"
            note = report.stderr.decode("utf-8", errors="replace").strip()  # it could not start
            return LiveEnded("runtime_error", report.exit_code, time_ms, note or f"ended with {code}"), None
        limit_s = round(self._plan.job.run.limits.wall_ms / 1000)
        messages = {
            "time_limit": f"stopped after {limit_s} s, the most a live run may take",
            "memory_limit": "the program ran out of memory",
            "output_limit": f"stopped: the program wrote more than {self._plan.job.run.limits.output_bytes} bytes",
        }
        return LiveEnded(ending, report.exit_code, time_ms, messages[ending]), f"a limit stopped it ({ending})"


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


@runtime_checkable
class LiveRunning(Protocol):
    """An executor that can run a program live."""

    async def open_live(self, request: ExecRequest) -> LiveSession:
        """A live session for the request (live=True), its sandbox taken; InfraError when none can
        be had. The caller must run the session's `updates()` to its end."""
        ...
