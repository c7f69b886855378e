"""The versioned wire protocol between the host runner and the harness inside a sandbox.

Host → harness, on the container's stdin: one frame, ``LABRUNNER-JOB <version> <length>\\n``
followed by <length> bytes of JSON. The length prefix means the harness never has to wait for
end-of-file, which a Docker attach stream cannot signal reliably. One container may serve several
jobs of one user, one after the other (a warm sandbox): after ``done`` the harness waits for the
next job frame, and end-of-file where a frame would start ends the container.

A live job (``Job.live``) has one test and no input frame: while its program runs the host sends
live frames, ``LABRUNNER-LIVE <length>\\n`` and a JSON message (typed input, end of input, Stop,
keys and the pointer on its window, the window closed), and after the harness's last word one
``end``, which the harness waits for before it reads the next job frame.

Harness → host, on the container's stdout: one JSON object per line: ``started`` once the job is
read and the sandbox set up for it, a compile report (languages with a compile or parse step),
one test report per test in order (a live job's ``output`` and ``frame`` events come before its
one report, as the program writes and draws), then ``done`` — or a ``failure`` when the harness
itself could not do its job (or, code ``tampered``, found its own limits or priorities changed by
a program, and so runs no other). Bytes travel base64-encoded, so output that is not UTF-8 arrives
unchanged and nothing on either side has to decode it. A graphical job's test reports carry the
pictures the program drew (PNG, and an APNG of its frames), within the job's limits.

Every line after the job was read is signed: ``<HMAC-SHA256 hex> <json>``, keyed by a secret the
host puts in the job and counted from 0, so the host can tell the harness's word from anything
else and from a replay or a reordering. No program can reach the stream (the harness is PID 1 and
not dumpable), so a line that fails the check means a program got around that: the host stops
listening to the sandbox. Only a failure to read the job itself, before any program ran, comes
unsigned (``- <json>``): the harness does not know the key then.

Stdlib only: imported by the host runner and by the image's own python3. Any change here changes
the image tag (runner/image.py hashes this file), so host and harness always agree on a version.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Final

PROTOCOL_VERSION: Final = 5
JOB_MAGIC: Final = b"LABRUNNER-JOB"
INPUT_MAGIC: Final = b"LABRUNNER-INPUT"
LIVE_MAGIC: Final = b"LABRUNNER-LIVE"
_MAX_HEADER_BYTES: Final = 64
KEY_BYTES: Final = 32
_MAC_HEX_CHARS: Final = 64  # SHA-256
_UNSIGNED: Final = b"-"

# The container layout both sides rely on: the host mounts sized tmpfs at WORK_DIR and TMP_DIR,
# the harness compiles in BUILD_DIR and gives every test a fresh RUN_DIR.
WORK_DIR: Final = "/work"
BUILD_DIR: Final = "/work/build"
RUN_DIR: Final = "/work/run"
TMP_DIR: Final = "/tmp"
# A compile command the harness runs itself: Python's syntax check of the file named after it.
PYTHON_SYNTAX_CHECK: Final = "labrunner:python-syntax"
# Every place a program can write; the harness empties them all between tests.
SCRATCH_DIRS: Final = (WORK_DIR, TMP_DIR, "/dev/shm", "/dev/mqueue")

STATUS_OK: Final = "ok"
STATUS_TIME_LIMIT: Final = "time_limit"
STATUS_MEMORY_LIMIT: Final = "memory_limit"
STATUS_OUTPUT_LIMIT: Final = "output_limit"
STATUS_RUNTIME_ERROR: Final = "runtime_error"
STATUS_STOPPED: Final = "stopped"  # a live job's program, ended by the host (Stop, idle)
TEST_STATUSES: Final = (
    STATUS_OK,
    STATUS_TIME_LIMIT,
    STATUS_MEMORY_LIMIT,
    STATUS_OUTPUT_LIMIT,
    STATUS_RUNTIME_ERROR,
    STATUS_STOPPED,
)
STREAMS: Final = ("stdout", "stderr")

MEDIA_PNG: Final = "image/png"
MEDIA_APNG: Final = "image/apng"
MEDIA_TYPES: Final = (MEDIA_PNG, MEDIA_APNG)

# Failure codes the harness reports about itself.
FAILURE_VERSION_MISMATCH: Final = "version_mismatch"
FAILURE_BAD_JOB: Final = "bad_job"
FAILURE_HARNESS_ERROR: Final = "harness_error"
# The harness found its own state (limits, priority, affinity) changed since it started, which only
# a program can have done: the host ends the job as tampered with, like a forged line.
FAILURE_TAMPERED: Final = "tampered"


class ProtocolError(ValueError):
    """A frame or message does not follow this protocol."""


class VersionMismatch(ProtocolError):
    """The other side speaks another protocol version."""


class ForgedLine(ProtocolError):
    """A line that is not the harness's signed word, in its place."""


@dataclass(frozen=True)
class Limits:
    cpu_ms: int
    wall_ms: int
    memory_bytes: int  # the program's budget: above it a failure counts as memory_limit
    address_space_bytes: int | None  # RLIMIT_AS; None where the runtime bounds its own heap
    file_size_bytes: int
    open_files: int
    output_bytes: int  # per stream


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    limits: Limits


@dataclass(frozen=True)
class JobFile:
    name: str  # a plain base name, validated by the host
    data: bytes


@dataclass(frozen=True)
class Graphics:
    """How a graphical program runs: headless, with its pictures captured within these limits."""

    max_images: int  # per test: frames, figures and windows together (an animation comes on top)
    max_dimension: int  # longest side of a picture, in pixels
    max_image_bytes: int  # all pictures of the job together
    display: bool  # start a virtual X display for each test (tkinter, turtle)
    live_frame_ms: int = 0  # a live job's: time between two looks at the window


@dataclass(frozen=True)
class Job:
    key: bytes  # signs the harness's events; a fresh secret per job, from the host
    source_name: str
    source: bytes
    run: Command
    tests: tuple[str, ...]  # names, in the order they run; each one's stdin comes in its own frame
    env: dict[str, str]
    compile: Command | None = None
    files: tuple[JobFile, ...] = ()
    # Text a runtime prints when it ran out of memory (e.g. "MemoryError"): a failing test whose
    # stderr holds one counts as memory_limit.
    memory_markers: tuple[str, ...] = ()
    graphics: Graphics | None = None  # None: not a graphical program
    # Fork each test's process from a zygote started once per job (Python) instead of exec.
    fork_server: bool = False
    # A live job: one test, whose stdin comes in live frames as a person types it, whose output
    # goes out as it comes (Output events) and, for a graphical program, whose window is shown
    # as it changes (Frame events). It ends when the program does, or on the host's Stop.
    live: bool = False


@dataclass(frozen=True)
class CompileReport:
    ok: bool
    output: bytes  # compiler stdout and stderr, capped
    time_ms: int


@dataclass(frozen=True)
class Image:
    media_type: str  # one of MEDIA_TYPES
    label: str  # what it shows: "frame 3", "figure 1", "window 1", "animation"
    width: int
    height: int
    data: bytes


@dataclass(frozen=True)
class TestReport:
    name: str
    status: str  # one of TEST_STATUSES
    exit_code: int | None
    signal: int | None
    time_ms: int
    stdout: bytes
    stderr: bytes
    truncated: bool = False
    images: tuple[Image, ...] = ()


@dataclass(frozen=True)
class Output:
    """A live job's program wrote this, just now, to one of STREAMS."""

    stream: str
    data: bytes


@dataclass(frozen=True)
class Frame:
    """A live graphical job's window as it looks now (PNG), sent when it changed."""

    image: Image


@dataclass(frozen=True)
class Started:
    pass


@dataclass(frozen=True)
class Done:
    pass


@dataclass(frozen=True)
class Failure:
    code: str
    message: str


Event = Started | CompileReport | Output | Frame | TestReport | Done | Failure


# What the host sends the harness during a live job, each in its own live frame.
@dataclass(frozen=True)
class TypeIn:
    """Bytes a person typed, for the program's stdin."""

    data: bytes


@dataclass(frozen=True)
class CloseStdin:
    """No more input: the program's stdin reaches end-of-file once it read what came before."""


@dataclass(frozen=True)
class Stop:
    """End the program now (the Stop button, an idle or forgotten session)."""


@dataclass(frozen=True)
class KeyEvent:
    """A key pressed (down) or released in the program's window; key and code as a browser's
    KeyboardEvent names them ("ArrowLeft", "KeyA"; "a")."""

    key: str
    code: str
    down: bool


@dataclass(frozen=True)
class PointerEvent:
    """The mouse in the program's window, in the window's own pixels."""

    kind: str  # one of POINTER_KINDS
    x: int
    y: int
    button: int  # 1 left, 2 middle, 3 right; 0 for a move


@dataclass(frozen=True)
class CloseWindow:
    """The viewer closed the program's window: the program gets QUIT (pygame) or its window's
    close (Tk)."""


@dataclass(frozen=True)
class EndLive:
    """The host heard Done and sends nothing more for this live job; the harness waits for it
    before it reads the next job frame, so no late live frame is taken for one."""


LiveMessage = TypeIn | CloseStdin | Stop | KeyEvent | PointerEvent | CloseWindow | EndLive
POINTER_KINDS: Final = ("move", "down", "up")
_MAX_KEY_CHARS: Final = 32


@dataclass
class _Reader:
    """Typed access to one decoded JSON object; anything unexpected is a ProtocolError."""

    obj: Any
    where: str = field(default="message")

    def __post_init__(self) -> None:
        if not isinstance(self.obj, dict):
            raise ProtocolError(f"{self.where}: expected an object")

    def _get(self, key: str, kind: type | tuple[type, ...]) -> Any:
        value = self.obj.get(key)
        # bool is an int in Python; a protocol int field must not accept true/false.
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise ProtocolError(f"{self.where}: field {key!r} is missing or has the wrong type")
        return value

    def text(self, key: str) -> str:
        return self._get(key, str)

    def integer(self, key: str) -> int:
        return self._get(key, int)

    def optional_integer(self, key: str) -> int | None:
        return None if self.obj.get(key) is None else self.integer(key)

    def flag(self, key: str) -> bool:
        return self._get(key, bool)

    def blob(self, key: str) -> bytes:
        try:
            return base64.b64decode(self.text(key), validate=True)
        except binascii.Error as exc:
            raise ProtocolError(f"{self.where}: field {key!r} is not base64") from exc

    def items(self, key: str) -> list[Any]:
        return self._get(key, list)

    def child(self, key: str) -> _Reader:
        return _Reader(self.obj.get(key), f"{self.where}.{key}")

    def optional_child(self, key: str) -> _Reader | None:
        return None if self.obj.get(key) is None else self.child(key)

    def children(self, key: str) -> list[_Reader]:
        return [_Reader(item, f"{self.where}.{key}[]") for item in self.items(key)]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _loads(data: bytes, where: str) -> _Reader:
    try:
        return _Reader(json.loads(data), where)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"{where}: not valid JSON") from exc


def _limits_to_json(limits: Limits) -> dict[str, Any]:
    return {
        "cpu_ms": limits.cpu_ms,
        "wall_ms": limits.wall_ms,
        "memory_bytes": limits.memory_bytes,
        "address_space_bytes": limits.address_space_bytes,
        "file_size_bytes": limits.file_size_bytes,
        "open_files": limits.open_files,
        "output_bytes": limits.output_bytes,
    }


def _limits_from_json(r: _Reader) -> Limits:
    return Limits(
        cpu_ms=r.integer("cpu_ms"),
        wall_ms=r.integer("wall_ms"),
        memory_bytes=r.integer("memory_bytes"),
        address_space_bytes=r.optional_integer("address_space_bytes"),
        file_size_bytes=r.integer("file_size_bytes"),
        open_files=r.integer("open_files"),
        output_bytes=r.integer("output_bytes"),
    )


def _command_to_json(command: Command) -> dict[str, Any]:
    return {"argv": list(command.argv), "limits": _limits_to_json(command.limits)}


def _command_from_json(r: _Reader) -> Command:
    argv = r.items("argv")
    if not argv or not all(isinstance(arg, str) for arg in argv):
        raise ProtocolError(f"{r.where}: argv must be a non-empty list of strings")
    return Command(argv=tuple(argv), limits=_limits_from_json(r.child("limits")))


def _graphics_to_json(graphics: Graphics | None) -> dict[str, Any] | None:
    if graphics is None:
        return None
    return {
        "max_images": graphics.max_images,
        "max_dimension": graphics.max_dimension,
        "max_image_bytes": graphics.max_image_bytes,
        "display": graphics.display,
        "live_frame_ms": graphics.live_frame_ms,
    }


def _graphics_from_json(r: _Reader | None) -> Graphics | None:
    if r is None:
        return None
    return Graphics(
        max_images=r.integer("max_images"),
        max_dimension=r.integer("max_dimension"),
        max_image_bytes=r.integer("max_image_bytes"),
        display=r.flag("display"),
        live_frame_ms=r.integer("live_frame_ms"),
    )


def _image_to_json(image: Image) -> dict[str, Any]:
    return {
        "media_type": image.media_type,
        "label": image.label,
        "width": image.width,
        "height": image.height,
        "data": _b64(image.data),
    }


def _image_from_json(r: _Reader) -> Image:
    media_type = r.text("media_type")
    if media_type not in MEDIA_TYPES:
        raise ProtocolError(f"{r.where}: unknown media type {media_type!r}")
    return Image(
        media_type=media_type,
        label=r.text("label"),
        width=r.integer("width"),
        height=r.integer("height"),
        data=r.blob("data"),
    )


def _job_to_json(job: Job) -> dict[str, Any]:
    return {
        "key": _b64(job.key),
        "source_name": job.source_name,
        "source": _b64(job.source),
        "compile": None if job.compile is None else _command_to_json(job.compile),
        "run": _command_to_json(job.run),
        "tests": list(job.tests),
        "files": [{"name": f.name, "data": _b64(f.data)} for f in job.files],
        "env": dict(job.env),
        "memory_markers": list(job.memory_markers),
        "graphics": _graphics_to_json(job.graphics),
        "fork_server": job.fork_server,
        "live": job.live,
    }


def _job_from_json(r: _Reader) -> Job:
    env = r.obj.get("env")
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise ProtocolError("job: env must map strings to strings")
    markers = r.items("memory_markers")
    if not all(isinstance(m, str) for m in markers):
        raise ProtocolError("job: memory_markers must be strings")
    tests = r.items("tests")
    if not all(isinstance(name, str) for name in tests):
        raise ProtocolError("job: tests must be a list of names")
    files = [_Reader(f, "job.files[]") for f in r.items("files")]
    compile_reader = r.optional_child("compile")
    key = r.blob("key")
    if len(key) != KEY_BYTES:
        raise ProtocolError(f"job: the key must be {KEY_BYTES} bytes")
    return Job(
        key=key,
        source_name=r.text("source_name"),
        source=r.blob("source"),
        compile=None if compile_reader is None else _command_from_json(compile_reader),
        run=_command_from_json(r.child("run")),
        tests=tuple(tests),
        files=tuple(JobFile(name=f.text("name"), data=f.blob("data")) for f in files),
        env=env,
        memory_markers=tuple(markers),
        graphics=_graphics_from_json(r.optional_child("graphics")),
        fork_server=r.flag("fork_server"),
        live=r.flag("live"),
    )


def encode_job(job: Job) -> bytes:
    """The complete frame the host writes to the harness's stdin."""
    body = _dumps(_job_to_json(job))
    return b"%s %d %d\n" % (JOB_MAGIC, PROTOCOL_VERSION, len(body)) + body


def read_job(stream: BinaryIO, max_bytes: int) -> Job | None:
    """Read one job frame, or None at end-of-file before it (the host has no more jobs); raises
    VersionMismatch or ProtocolError."""
    header = stream.readline(_MAX_HEADER_BYTES)
    if not header:
        return None
    parts = header.split()
    if len(parts) != 3 or parts[0] != JOB_MAGIC or not parts[1].isdigit() or not parts[2].isdigit():
        raise ProtocolError("job: bad frame header")
    if int(parts[1]) != PROTOCOL_VERSION:
        raise VersionMismatch(f"job: protocol version {int(parts[1])}, harness speaks {PROTOCOL_VERSION}")
    return _job_from_json(_loads(_read_body(stream, int(parts[2]), max_bytes, "job"), "job"))


def encode_input(stdin: bytes) -> bytes:
    """The frame carrying one test's stdin."""
    return b"%s %d\n" % (INPUT_MAGIC, len(stdin)) + stdin


def read_input(stream: BinaryIO, max_bytes: int) -> bytes:
    """Read one test's stdin frame; raises ProtocolError."""
    parts = stream.readline(_MAX_HEADER_BYTES).split()
    if len(parts) != 2 or parts[0] != INPUT_MAGIC or not parts[1].isdigit():
        raise ProtocolError("input: bad frame header")
    return _read_body(stream, int(parts[1]), max_bytes, "input")


def encode_live(message: LiveMessage) -> bytes:
    """The frame carrying one live message from the host."""
    obj: dict[str, Any]
    match message:
        case TypeIn():
            obj = {"type": "stdin", "data": _b64(message.data)}
        case CloseStdin():
            obj = {"type": "close_stdin"}
        case Stop():
            obj = {"type": "stop"}
        case KeyEvent():
            obj = {"type": "key", "key": message.key, "code": message.code, "down": message.down}
        case PointerEvent():
            obj = {"type": "pointer", "kind": message.kind, "x": message.x, "y": message.y, "button": message.button}
        case CloseWindow():
            obj = {"type": "close_window"}
        case EndLive():
            obj = {"type": "end"}
    body = _dumps(obj)
    return b"%s %d\n" % (LIVE_MAGIC, len(body)) + body


def read_live(stream: BinaryIO, max_bytes: int) -> LiveMessage:
    """Read one live frame; raises ProtocolError."""
    parts = stream.readline(_MAX_HEADER_BYTES).split()
    if len(parts) != 2 or parts[0] != LIVE_MAGIC or not parts[1].isdigit():
        raise ProtocolError("live: bad frame header")
    r = _loads(_read_body(stream, int(parts[1]), max_bytes, "live"), "live")
    kind = r.text("type")
    if kind == "stdin":
        return TypeIn(data=r.blob("data"))
    if kind == "close_stdin":
        return CloseStdin()
    if kind == "stop":
        return Stop()
    if kind == "key":
        key, code = r.text("key"), r.text("code")
        if len(key) > _MAX_KEY_CHARS or len(code) > _MAX_KEY_CHARS:
            raise ProtocolError("live: key names are short")
        return KeyEvent(key=key, code=code, down=r.flag("down"))
    if kind == "pointer":
        pointer_kind = r.text("kind")
        if pointer_kind not in POINTER_KINDS:
            raise ProtocolError(f"live: unknown pointer event {pointer_kind!r}")
        return PointerEvent(kind=pointer_kind, x=r.integer("x"), y=r.integer("y"), button=r.integer("button"))
    if kind == "close_window":
        return CloseWindow()
    if kind == "end":
        return EndLive()
    raise ProtocolError(f"live: unknown type {kind!r}")


def _read_body(stream: BinaryIO, length: int, max_bytes: int, where: str) -> bytes:
    if length > max_bytes:
        raise ProtocolError(f"{where}: {length} bytes is over the {max_bytes}-byte limit")
    chunks: list[bytes] = []
    remaining = length
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            raise ProtocolError(f"{where}: stream ended inside the frame")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def encode_event(event: Event) -> bytes:
    """One protocol line, newline included."""
    obj: dict[str, Any]
    match event:
        case CompileReport():
            obj = {"type": "compile", "ok": event.ok, "output": _b64(event.output), "time_ms": event.time_ms}
        case TestReport():
            obj = {
                "type": "test",
                "name": event.name,
                "status": event.status,
                "exit_code": event.exit_code,
                "signal": event.signal,
                "time_ms": event.time_ms,
                "stdout": _b64(event.stdout),
                "stderr": _b64(event.stderr),
                "truncated": event.truncated,
                "images": [_image_to_json(image) for image in event.images],
            }
        case Output():
            obj = {"type": "output", "stream": event.stream, "data": _b64(event.data)}
        case Frame():
            obj = {"type": "frame", "image": _image_to_json(event.image)}
        case Started():
            obj = {"type": "started"}
        case Done():
            obj = {"type": "done"}
        case Failure():
            obj = {"type": "failure", "code": event.code, "message": event.message}
    return _dumps(obj) + b"\n"


def decode_event(line: bytes) -> Event:
    """Parse one protocol line (with or without its newline); raises ProtocolError."""
    r = _loads(line, "event")
    kind = r.text("type")
    if kind == "compile":
        return CompileReport(ok=r.flag("ok"), output=r.blob("output"), time_ms=r.integer("time_ms"))
    if kind == "test":
        status = r.text("status")
        if status not in TEST_STATUSES:
            raise ProtocolError(f"event: unknown test status {status!r}")
        return TestReport(
            name=r.text("name"),
            status=status,
            exit_code=r.optional_integer("exit_code"),
            signal=r.optional_integer("signal"),
            time_ms=r.integer("time_ms"),
            stdout=r.blob("stdout"),
            stderr=r.blob("stderr"),
            truncated=r.flag("truncated"),
            images=tuple(_image_from_json(image) for image in r.children("images")),
        )
    if kind == "output":
        stream = r.text("stream")
        if stream not in STREAMS:
            raise ProtocolError(f"event: unknown stream {stream!r}")
        return Output(stream=stream, data=r.blob("data"))
    if kind == "frame":
        image = _image_from_json(r.child("image"))
        if image.media_type != MEDIA_PNG:
            raise ProtocolError("event: a live frame must be a PNG")
        return Frame(image=image)
    if kind == "started":
        return Started()
    if kind == "done":
        return Done()
    if kind == "failure":
        return Failure(code=r.text("code"), message=r.text("message"))
    raise ProtocolError(f"event: unknown type {kind!r}")


def _mac(key: bytes, sequence: int, body: bytes) -> bytes:
    return hmac.new(key, b"%d\n" % sequence + body, hashlib.sha256).hexdigest().encode("ascii")


class EventSigner:
    """The harness's side: each event as a signed line, numbered in the order they are sent."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._sequence = 0

    def line(self, event: Event) -> bytes:
        body = encode_event(event)
        mac = _mac(self._key, self._sequence, body[:-1])
        self._sequence += 1
        return mac + b" " + body


def unsigned_line(failure: Failure) -> bytes:
    """A failure to read the job, the one thing the harness says before it knows the key."""
    return _UNSIGNED + b" " + encode_event(failure)


class EventVerifier:
    """The host's side: takes a line only if the harness signed it, as the next in order."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._sequence = 0

    def event(self, line: bytes) -> Event:
        """The event on one line (without its newline); ForgedLine when it is not the harness's
        next word, ProtocolError when the harness's word does not parse."""
        mac, space, body = line.partition(b" ")
        if mac == _UNSIGNED and space and self._sequence == 0:
            # Before the first signed line no program has run: this can only be the harness.
            event = decode_event(body)
            if not isinstance(event, Failure):
                raise ForgedLine("only a failure may come unsigned")
            return event
        if len(mac) != _MAC_HEX_CHARS or not hmac.compare_digest(mac, _mac(self._key, self._sequence, body)):
            raise ForgedLine(f"line {self._sequence} is not signed by the harness")
        self._sequence += 1
        return decode_event(body)
