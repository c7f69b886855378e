"""Real programs in the real Docker sandbox read uploaded files from their working directory.

Needs the Docker engine and the sandbox image: skipped on a developer machine without them,
FAILED under CI (env CI set), which must prove this end to end.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.conftest import LiveServer
from tests.files.conftest import PNG, upload_ok

pytestmark = pytest.mark.docker

READER = """
import csv
rows = list(csv.reader(open("scores.csv", encoding="utf-8")))
print(sum(int(score) for _, score in rows[1:]), rows[0])
try:
    open("scores.csv", "a").write("cheat,100\\n")
    print("WRITABLE")
except OSError as exc:
    print("read-only:", type(exc).__name__)
"""

PYGAME = """
import os
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
import pygame
pygame.init()
image = pygame.image.load("sprite.png")
print("sprite", image.get_size())
"""


@pytest.fixture
async def docker_server(server_factory: Callable[..., Awaitable[LiveServer]], sandbox_ready: None) -> LiveServer:
    return await server_factory()  # the appliance as it ships: the Docker sandbox


async def _run(server: LiveServer, code: str, files: dict[str, bytes]) -> dict:
    student = await server.make_user("student")
    ids = [(await upload_ok(student, name, data))["id"] for name, data in files.items()]
    queued = await student.post("/api/runs", json={"language": "python", "code": code, "files": ids})
    assert queued.status == 202, queued
    for _ in range(12):  # the first job may wait for a container to start
        result = await student.get(f"/api/runs/{queued.json['id']}?wait=10")
        if result.json["status"] in ("done", "failed"):
            return dict(result.json)
    raise AssertionError(f"the run never finished: {result.json}")


async def test_a_python_program_reads_an_uploaded_file_read_only(docker_server: LiveServer) -> None:
    result = await _run(docker_server, READER, {"scores.csv": b"name,score\nada,7\nbo,5\n"})
    assert result["status"] == "done" and result["verdict"] == "accepted", result
    assert result["stdout"].splitlines() == ["12 ['name', 'score']", "read-only: PermissionError"], result


async def test_a_pygame_program_loads_an_uploaded_image(docker_server: LiveServer) -> None:
    result = await _run(docker_server, PYGAME, {"sprite.png": PNG})
    assert result["status"] == "done", result
    assert "sprite (3, 2)" in result["stdout"], result["stderr"]
