"""Live runs: a student's program running while they type into it, play it, or stop it.

A live run is created by a request (its code, language and files checked as a run's are), then
started when its page connects; it waits `live_connect_s` for that. It needs no queue worker, only
the student's sandbox, so the limits here are its own: one live run per user at a time, and
`live_sessions_max` on the machine; it also counts as a run against the student's runs a minute.
What passes between the page and the program is translated here, both ways, so the HTTP handler
only carries messages.
"""

from __future__ import annotations

import asyncio
import codecs
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from appliance import limit_overrides, user_files
from appliance.accounts import User
from appliance.blobs import BlobStore
from appliance.db import Database
from appliance.errors import Conflict, Invalid, NotFound, Unavailable
from appliance.jobs.queueing import check_language
from appliance.rate_limits import UserRates
from appliance.settings import Settings
from runner import graphics
from runner.executor import ExecRequest, InputFile, TestInput
from runner.live_session import LiveEnded, LiveFrame, LiveOutput, LiveUpdate, PersonMessage
from runner.worker import owner_of
from sandbox import protocol

_TEST_NAME = "live"
# A typed line, as a terminal takes it (its line discipline keeps at most 4095 bytes a line).
MAX_LINE_CHARS = 4000
_RETRY_AFTER_S = 30


@dataclass
class LiveRun:
    id: str
    user_id: int
    request: ExecRequest
    graphical: bool
    created_at: float = field(default_factory=time.monotonic)
    connected: bool = False


class LiveRuns:
    """The live runs of this appliance, from creation to their page's disconnection."""

    def __init__(self, settings: Settings, rates: UserRates) -> None:
        self._settings = settings
        self._rates = rates
        self._runs: dict[str, LiveRun] = {}
        self._by_user: dict[int, str] = {}

    def count(self) -> int:
        return len(self._runs)

    async def create(
        self,
        db: Database,
        blobs: BlobStore,
        user: User,
        language: str,
        code: str,
        file_ids: Sequence[str] = (),
        graphical: bool | None = None,
    ) -> LiveRun:
        check_language(language)
        settings = self._settings
        self._check_room(user)
        checked = await user_files.check_job_files(db, settings, user, file_ids, None)
        files = []
        for file_id in checked:
            row, data = await user_files.content_for(db, blobs, user, file_id)
            files.append(InputFile(row["name"], data))
        limits = await limit_overrides.effective(db, settings, user)
        # Again, with no await before the run takes its place: others may have got in meanwhile.
        self._check_room(user)
        self._rates.admit("run", user.id, limits.runs_per_user_per_minute).commit()
        is_graphical = graphics.is_graphical(language, code) if graphical is None else graphical
        request = ExecRequest(
            language=language,
            code=code,
            tests=[TestInput(_TEST_NAME, b"")],
            files=files,
            time_limit_ms=settings.default_time_limit_ms,
            memory_limit_mb=settings.default_memory_limit_mb,
            graphical=is_graphical,
            owner=owner_of(user.id),
            live=True,
        )
        run = LiveRun(secrets.token_urlsafe(16), user.id, request, is_graphical)
        self._runs[run.id] = run
        self._by_user[user.id] = run.id
        asyncio.get_running_loop().call_later(settings.live_connect_s, self._drop_unconnected, run.id)
        return run

    def _check_room(self, user: User) -> None:
        if user.id in self._by_user:
            raise Conflict(
                "live_run_active",
                "you already have a live run going: stop it (or close its tab) before you start another",
            )
        if len(self._runs) >= self._settings.live_sessions_max:
            raise Unavailable(
                "live_runs_full",
                f"all {self._settings.live_sessions_max} live runs this machine holds are in use; try again in a"
                " minute, or run with the input box",
                retry_after=_RETRY_AFTER_S,
            )

    def connect(self, run_id: str, user: User) -> LiveRun:
        """The run, for its owner's page to start and follow, once; NotFound for anyone else."""
        run = self._runs.get(run_id)
        if run is None or run.user_id != user.id:
            raise NotFound("not_found", "no such live run (it ended, or it is not yours)")
        if run.connected:
            raise Conflict("live_run_connected", "this live run is already open in another tab")
        run.connected = True
        return run

    def end(self, run: LiveRun) -> None:
        if self._runs.pop(run.id, None) is not None:
            self._by_user.pop(run.user_id, None)

    def _drop_unconnected(self, run_id: str) -> None:
        run = self._runs.get(run_id)
        if run is not None and not run.connected:
            self.end(run)


def person_message(data: Any) -> PersonMessage | protocol.Stop:
    """What a page sent, as the program is to get it; Invalid for anything else."""
    if not isinstance(data, dict) or not isinstance(kind := data.get("type"), str):
        raise Invalid("bad_message", "a live message is an object with a type")
    if kind == "stdin":
        text = data.get("text")
        if not isinstance(text, str) or len(text) > MAX_LINE_CHARS:
            raise Invalid("bad_message", f"stdin takes a line of at most {MAX_LINE_CHARS} characters")
        return protocol.TypeIn(text.encode("utf-8", errors="replace"))
    if kind == "eof":
        return protocol.CloseStdin()
    if kind == "stop":
        return protocol.Stop()
    if kind == "close_window":
        return protocol.CloseWindow()
    if kind == "key":
        key, code, down = data.get("key"), data.get("code"), data.get("down")
        if not isinstance(key, str) or not isinstance(code, str) or not isinstance(down, bool):
            raise Invalid("bad_message", "a key event has key, code and down")
        if not (_key_name(key) and _key_name(code)):
            raise Invalid("bad_message", "key names are short and printable")
        return protocol.KeyEvent(key, code, down)
    if kind == "pointer":
        pointer, x, y, button = data.get("kind"), data.get("x"), data.get("y"), data.get("button", 0)
        if pointer not in protocol.POINTER_KINDS or not all(_small_int(v) for v in (x, y, button)):
            raise Invalid("bad_message", "a pointer event has kind (move, down, up), x, y and button")
        return protocol.PointerEvent(pointer, x, y, button)
    raise Invalid("bad_message", f"unknown live message type {kind!r}")


def _key_name(name: str) -> bool:
    # Printable: no control characters for whatever types the key into the window, and no lone
    # surrogates (not UTF-8, they would break it there).
    return len(name) <= 32 and name.isprintable()


def _small_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100_000


class UpdateText:
    """A session's updates as the page gets them: output decoded as UTF-8 across chunk edges."""

    def __init__(self) -> None:
        self._decoders = {
            stream: codecs.getincrementaldecoder("utf-8")(errors="replace") for stream in protocol.STREAMS
        }

    def to_json(self, update: LiveUpdate) -> dict[str, Any]:
        match update:
            case LiveOutput():
                return {
                    "type": "output",
                    "stream": update.stream,
                    "text": self._decoders[update.stream].decode(update.data),
                }
            case LiveFrame():
                return {"type": "frame", "width": update.width, "height": update.height}
            case LiveEnded():
                return {
                    "type": "ended",
                    "ending": update.ending,
                    "exit_code": update.exit_code,
                    "time_ms": update.time_ms,
                    "message": update.message,
                    "compile_output": update.compile_output,
                }
