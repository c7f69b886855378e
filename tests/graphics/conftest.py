"""Graphical programs in the real sandbox: the Docker engine and this checkout's image.

As in tests/sandbox, a missing engine or image fails the tests under CI and skips them elsewhere.
Each test gets executors whose containers carry this session's instance label and checks that
none is left behind.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import docker
import pytest

from runner.docker_executor import DockerExecutor
from runner.executor import ExecRequest, TestInput, TestOutcome
from runner.sandbox_settings import SandboxSettings
from tests.sandbox.conftest import INSTANCE, assert_nothing_left, docker_client  # noqa: F401 (a fixture)

# Shorter than the default 10 s, so the programs that never end keep the suite quick.
WALL_S = 6.0


@dataclass(frozen=True)
class Drawn:
    outcome: TestOutcome
    seconds: float  # the whole job, from the request to its result

    @property
    def stderr(self) -> str:
        return self.outcome.stderr.decode(errors="replace")

    def stills(self) -> list[bytes]:
        return [image.data for image in self.outcome.images if image.media_type == "image/png"]

    def animation(self) -> bytes | None:
        return next((i.data for i in self.outcome.images if i.media_type == "image/apng"), None)


Draw = Callable[..., Awaitable[Drawn]]


@pytest.fixture
async def draw(docker_client: docker.DockerClient) -> AsyncIterator[Draw]:  # noqa: F811 (the fixture)
    """draw(code, stdin=b"", memory_limit_mb=256, **sandbox_settings) -> Drawn, run as graphical."""
    executors: list[DockerExecutor] = []

    async def _draw(code: str, stdin: bytes = b"", memory_limit_mb: int = 256, **settings: Any) -> Drawn:
        chosen = {"graphical_wall_time_s": WALL_S, **settings}
        executor = DockerExecutor(docker_client, SandboxSettings(instance=INSTANCE, pool_size=0, **chosen))
        executors.append(executor)
        started = time.monotonic()
        result = await executor.execute(
            ExecRequest(
                language="python",
                code=code,
                tests=[TestInput("run", stdin)],
                time_limit_ms=1000,
                memory_limit_mb=memory_limit_mb,
                graphical=True,
            )
        )
        seconds = time.monotonic() - started
        await executor.settle()
        assert_nothing_left(docker_client)
        return Drawn(result.tests[0], seconds)

    yield _draw
    for executor in executors:
        await executor.close()


def labels(drawn: Drawn) -> Sequence[str]:
    return [image.label for image in drawn.outcome.images]
