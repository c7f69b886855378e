"""Reading a live job's attach stream: the harness's signed events, as they come.

Like a batch job's (runner.attach_stream), every line must be the harness's signed word, in the
order a live job allows: started, a compile report (compiled languages), any number of output and
frame events while the program runs, its one report, done. Unlike a batch job's, the stream is
not bounded by its length (frames come for as long as the session lasts) but by what each part may
carry: output within the session's output limit, frames no larger and no more frequent than the
plan allows. The first line that is not the harness's ends the session as tampered.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from runner import engine
from runner.attach_stream import STDERR, STDOUT, LineSplitter, StreamDemux
from runner.executor import InfraError
from runner.sandbox_job import JobPlan, checked_image
from sandbox import protocol

_STDERR_KEEP = 16 * 1024
# Room for base64 and JSON around one chunk of output (the harness reads 64 KiB at a time).
_OUTPUT_EVENT_BYTES = 128 * 1024
# Frames a second the host takes before it calls the harness's word a flood: the harness looks at
# the window at the plan's rate, so twice that (over a second's window) is never legitimate.
_FRAME_RATE_SLACK = 2.0
_OUTPUT_SLACK_BYTES = 64 * 1024


class Tampered(Exception):
    """A line came that the harness did not sign, or out of its order."""


@dataclass
class LiveTranscript:
    """What the stream said that outlasts the session: how the program ended."""

    compile_report: protocol.CompileReport | None = None
    report: protocol.TestReport | None = None
    failure: protocol.Failure | None = None
    done: bool = False


class LiveStream:
    def __init__(self, plan: JobPlan) -> None:
        job = plan.job
        self._plan = plan
        self._demux = StreamDemux()
        graphics = job.graphics
        frame_bytes = 0 if graphics is None else round(graphics.max_image_bytes * 4 / 3) + 4096
        self._lines = LineSplitter(max(_OUTPUT_EVENT_BYTES, frame_bytes, plan.max_event_bytes))
        self._verifier = protocol.EventVerifier(job.key)
        self._output_left = job.run.limits.output_bytes + _OUTPUT_SLACK_BYTES
        self._frame_times: list[float] = []
        self._max_frames_per_s = 0.0
        if graphics is not None and graphics.live_frame_ms > 0:
            self._max_frames_per_s = _FRAME_RATE_SLACK * 1000 / graphics.live_frame_ms
        self.transcript = LiveTranscript()
        self.harness_stderr = bytearray()
        self._started = False

    @property
    def ended(self) -> bool:
        return self.transcript.done or self.transcript.failure is not None

    def feed(self, data: bytes) -> Iterator[protocol.Output | protocol.Frame]:
        """The output and frames in these bytes; raises Tampered, or InfraError when the harness
        broke the protocol."""
        for stream, payload in self._demux.feed(data):
            if stream == STDERR:
                self.harness_stderr += payload[: max(0, _STDERR_KEEP - len(self.harness_stderr))]
            elif stream == STDOUT:
                for line in self._lines.feed(payload):
                    if self.ended:
                        raise Tampered("a line after the harness's last word")
                    try:
                        event = self._verifier.event(line)
                        self._check(event)
                    except protocol.ForgedLine as exc:
                        raise Tampered(str(exc)) from exc
                    except protocol.ProtocolError as exc:
                        raise InfraError(engine.SANDBOX_PROTOCOL, f"the sandbox broke the protocol: {exc}") from exc
                    if isinstance(event, protocol.Output | protocol.Frame):
                        yield event

    def _check(self, event: protocol.Event) -> None:
        t = self.transcript
        compiles = self._plan.job.compile is not None
        running = self._started and t.report is None and (not compiles or t.compile_report is not None)
        match event:
            case protocol.Failure():
                if event.code == protocol.FAILURE_TAMPERED:
                    raise protocol.ForgedLine(f"the harness found its state changed: {event.message}")
                t.failure = event
            case protocol.Started() if not self._started:
                self._started = True
            case protocol.CompileReport() if self._started and compiles and t.compile_report is None:
                t.compile_report = event
            case protocol.Output() if running:
                self._output_left -= len(event.data)
                if self._output_left < 0:
                    raise protocol.ProtocolError("more output than the session's limit")
            case protocol.Frame() if running and self._plan.job.graphics is not None:
                self._check_frame(event)
            case protocol.TestReport() if running and event.name == self._plan.job.tests[0]:
                t.report = event
            case protocol.Done() if t.report is not None or (t.compile_report is not None and not t.compile_report.ok):
                t.done = True
            case _:
                raise protocol.ForgedLine(f"{type(event).__name__} out of order")

    def _check_frame(self, frame: protocol.Frame) -> None:
        graphics = self._plan.job.graphics
        assert graphics is not None
        if len(frame.image.data) > graphics.max_image_bytes:
            raise protocol.ProtocolError("a frame larger than the job's pictures may be")
        checked_image(frame.image, graphics)  # InfraError when it is not the PNG it says
        now = time.monotonic()
        self._frame_times = [t for t in self._frame_times if now - t < 1.0]
        self._frame_times.append(now)
        if len(self._frame_times) > max(self._max_frames_per_s, 1.0) + 1:
            raise protocol.ProtocolError("frames faster than the job allows")
