"""Browser tests: Debian's Chromium driven by Playwright (async API, so it shares the event loop of
the in-process test server from tests/conftest.py).

Without Chromium (or, for tests that run code, the Docker sandbox: the ``sandbox_ready`` fixture)
a test fails when CI is set and is skipped otherwise (tests/requirements.py). Screenshots go to
test-artifacts/ui/ for people to look at.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from runner.executor import ExecRequest, ExecResult, TestOutcome
from tests.conftest import REPO_ROOT, ApiClient, LiveServer
from tests.requirements import unavailable

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "ui"
LAPTOP = {"width": 1366, "height": 768}
TABLET = {"width": 768, "height": 1024}


class NoExecutor:
    """For pages that never run code: any job just stays queued."""

    async def execute(self, request: ExecRequest) -> ExecResult:  # pragma: no cover - never called
        raise AssertionError("this test runs no code")

    async def close(self) -> None:
        return None


class EchoExecutor:
    """A stand-in sandbox for API tests: every test's output is the program's source text.

    So a "program" whose code is exactly a test's expected output passes that test and no other,
    which lets tests choose scores without Docker.
    """

    async def execute(self, request: ExecRequest) -> ExecResult:
        return ExecResult(None, [TestOutcome(t.name, "ok", 0, request.code.encode(), b"", 3) for t in request.tests])

    async def close(self) -> None:
        return None


class GatedEcho(EchoExecutor):
    """The EchoExecutor, answering only while `gate` is open: a job can be seen running."""

    def __init__(self, gate: asyncio.Event) -> None:
        self.gate = gate

    async def execute(self, request: ExecRequest) -> ExecResult:
        await self.gate.wait()
        return await super().execute(request)


class FakeSandbox:
    """The appliance's SandboxProvider without Docker: a chosen executor, and an engine that is up
    (or, with `up=False`, down: the runner then claims nothing and every job waits in the queue)."""

    def __init__(self, executor: Callable[[], Any], *, up: bool = True) -> None:
        self._executor = executor
        self._up = up

    async def new_executor(self) -> Any:
        return self._executor()

    async def engine_up(self) -> bool:
        return self._up

    async def image_state(self) -> str:
        return "ok" if self._up else "engine_unavailable"

    async def close(self) -> None:
        return None


def no_docker() -> dict[str, Any]:
    """`server_factory(app_options=no_docker())`: pages and API work; code never runs."""
    return {"sandbox": FakeSandbox(NoExecutor)}


def engine_down() -> dict[str, Any]:
    """`server_factory(app_options=engine_down())`: an outage; jobs are accepted and wait."""
    return {"sandbox": FakeSandbox(NoExecutor, up=False)}


def echo() -> dict[str, Any]:
    """`server_factory(app_options=echo())`: jobs finish at once with the EchoExecutor's output."""
    return {"sandbox": FakeSandbox(EchoExecutor)}


@dataclass
class Room:
    """A class with a problem (one visible, one hidden test), its teacher, a member and an outsider."""

    server: LiveServer
    teacher: ApiClient
    student: ApiClient
    outsider: ApiClient
    class_id: int
    join_code: str
    problem_id: int
    hidden_in: str
    hidden_out: str


async def make_room(server: LiveServer, *, title: str = "Shout it") -> Room:
    tag = os.urandom(5).hex()
    teacher = await server.make_user("teacher")
    student = await server.make_user("student")
    outsider = await server.make_user("student")
    created = await teacher.post("/api/classes", json={"name": "7B"})
    assert created.status == 201, created
    joined = await student.post("/api/classes/join", json={"code": created.json["join_code"]})
    assert joined.status == 200, joined
    hidden_in, hidden_out = f"secret-{tag}", f"SECRET-{tag}"
    problem = await teacher.post(
        "/api/problems",
        json={
            "title": title,
            "statement": "Print the input in capitals.",
            "language": "python",
            "classes": [created.json["id"]],
            "test_cases": [
                {"name": "example", "stdin": "hello\n", "expected_stdout": "HELLO\n", "visible": True},
                {"name": "secret", "stdin": hidden_in, "expected_stdout": hidden_out, "visible": False},
            ],
        },
    )
    assert problem.status == 201, problem
    return Room(
        server,
        teacher,
        student,
        outsider,
        created.json["id"],
        created.json["join_code"],
        problem.json["id"],
        hidden_in,
        hidden_out,
    )


@pytest.fixture
async def room(server_factory: Callable[..., Any]) -> Room:
    """A classroom on a server whose "sandbox" echoes the code (see EchoExecutor)."""
    return await make_room(await server_factory(app_options=echo()))


@dataclass
class NetworkLog:
    """Every response one browser context received, with its body, for leak checks."""

    base_url: str
    responses: list[Any] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def attach(self, context: Any) -> None:
        context.on("response", lambda response: self.responses.append(response))
        context.on(
            "request",
            lambda request: (
                None
                if request.url.startswith((self.base_url + "/", "data:", "blob:"))
                else self.foreign.append(request.url)
            ),
        )

    async def bodies(self) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        for response in self.responses:
            try:
                out.append((response.url, await response.body()))
            except Exception:  # redirects and aborted streams have no body to read
                out.append((response.url, b""))
        return out


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        unavailable("Debian's chromium is not installed: run packaging/ensure-browser.sh")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
def shot() -> Callable[..., Any]:
    """`await shot(page, "name")`: a full-page screenshot in test-artifacts/ui/name.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    async def take(page: Any, name: str, *, full_page: bool = True) -> Path:
        path = ARTIFACTS / f"{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.png"
        await page.screenshot(path=str(path), full_page=full_page)
        return path

    return take
