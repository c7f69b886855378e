"""The person's side of a live session in runner-level tests: what came out so far (output,
decoded frames), how it ended, and the keys and clicks a person would send."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable

import docker

from runner.docker_executor import DockerExecutor
from runner.executor import ExecRequest, TestInput
from runner.live_session import LiveEnded, LiveFrame, LiveOutput, LiveSession, LiveUpdate
from runner.sandbox_settings import SandboxSettings
from sandbox import protocol
from tests.graphics.pngdecode import Picture, decode
from tests.sandbox.conftest import assert_nothing_left

OWNER = "user-1"
# Container, interpreter and display start-up on a busy 2-core machine; only a hang runs out.
WAIT_S = 30.0


def live_request(code: str, language: str = "python", *, graphical: bool = False) -> ExecRequest:
    return ExecRequest(
        language=language, code=code, tests=[TestInput("live", b"")], owner=OWNER, live=True, graphical=graphical
    )


@contextlib.asynccontextmanager
async def executor_with(
    client: docker.DockerClient, settings: SandboxSettings, **changes: object
) -> AsyncIterator[DockerExecutor]:
    """An executor of its own with these settings changed; nothing of it is left afterwards."""
    executor = DockerExecutor(client, dataclasses.replace(settings, **changes))
    try:
        yield executor
    finally:
        await executor.close()
    assert_nothing_left(client)


class Console:
    def __init__(self, session: LiveSession) -> None:
        self.session = session
        self.stdout = b""
        self.stderr = b""
        self.frames: list[Picture] = []
        self.ended: LiveEnded | None = None
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._follow(session.updates()))

    async def _follow(self, updates: AsyncIterator[LiveUpdate]) -> None:
        async for update in updates:
            if isinstance(update, LiveOutput):
                if update.stream == "stdout":
                    self.stdout += update.data
                else:
                    self.stderr += update.data
            elif isinstance(update, LiveFrame):
                picture = decode(update.png)
                assert (picture.width, picture.height) == (update.width, update.height)
                self.frames.append(picture)
            elif isinstance(update, LiveEnded):
                self.ended = update
            self._changed.set()

    async def until(self, done: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                while not done():
                    if self._task.done():
                        raise AssertionError(f"the session ended first: {self.ended}, stdout {self.stdout!r}")
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"not seen in {timeout_s:g} s: {len(self.frames)} frame(s), stdout {self.stdout!r}"
            ) from None

    async def wait_for(self, text: bytes, timeout_s: float = WAIT_S) -> None:
        await self.until(lambda: text in self.stdout, timeout_s)

    async def frame_where(self, looks_right: Callable[[Picture], bool]) -> Picture:
        await self.until(lambda: any(looks_right(frame) for frame in self.frames))
        return next(frame for frame in self.frames if looks_right(frame))

    async def end(self, timeout_s: float = WAIT_S) -> LiveEnded:
        async with asyncio.timeout(timeout_s):
            await self._task
        assert self.ended is not None
        return self.ended

    async def click(self, x: int, y: int) -> None:
        await self.session.send(protocol.PointerEvent("move", x, y, 0))
        await self.session.send(protocol.PointerEvent("down", x, y, 1))
        await self.session.send(protocol.PointerEvent("up", x, y, 1))

    async def press(self, name: str) -> None:
        await self.session.send(protocol.KeyEvent(name, name, True))
        await self.session.send(protocol.KeyEvent(name, name, False))
