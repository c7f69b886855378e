"""A populated appliance for the backup and restore tests: users, a class, a graphical problem with a
hidden test and an asset, submissions and runs with pictures and a long output, uploads and drafts."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from runner.executor import ExecRequest, ExecResult, Image, TestOutcome
from sandbox.graphics import png
from tests.conftest import ApiClient, LiveServer, years_ago
from tests.ui.conftest import FakeSandbox

PASSWORD = "a-long-passphrase-9"


class PictureExecutor:
    """A stand-in sandbox: every test prints the program's source and draws one small picture."""

    async def execute(self, request: ExecRequest) -> ExecResult:
        picture = png.encode_rgb(4, 3, bytes((len(request.code) % 256, 0, 0)) * 12)
        image = Image("image/png", "frame 1", 4, 3, picture)
        return ExecResult(
            None, [TestOutcome(t.name, "ok", 0, request.code.encode(), b"", 3, images=[image]) for t in request.tests]
        )

    async def close(self) -> None:
        return None


def picture_sandbox() -> FakeSandbox:
    """The appliance with no Docker: every run draws a small picture (see PictureExecutor)."""
    return FakeSandbox(PictureExecutor)


@dataclass
class Classroom:
    server: LiveServer
    admin: ApiClient
    teacher: ApiClient
    student: ApiClient
    problem_id: int


def upload(data: bytes, name: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="text/plain")
    return form


async def populate(server: LiveServer) -> Classroom:
    admin = await server.make_user("admin")
    teacher = await server.make_user("teacher")
    klass = (await teacher.post("/api/classes", json={"name": "7B"})).json
    student = await server.make_user("student")
    young = await server.make_user("student", birthdate=years_ago(10))
    for pupil in (student, young):
        assert (await pupil.post("/api/classes/join", json={"code": klass["join_code"]})).status == 200
    problem = {
        "title": "Echo",
        "statement": "Print your program.",
        "language": "python",
        "graphical": True,
        "classes": [klass["id"]],
        "test_cases": [
            {"name": "shown", "stdin": "a\n", "expected_stdout": "print(1)", "visible": True},
            {"name": "secret", "stdin": "b\n", "expected_stdout": "print(1)", "visible": False},
        ],
    }
    made = await teacher.post("/api/problems", json=problem)
    assert made.status == 201, made
    problem_id = made.json["id"]
    asset = await teacher.post(f"/api/problems/{problem_id}/assets", data=upload(b"1,2,3\n", "data.csv"))
    assert asset.status == 201, asset
    uploaded = await student.post("/api/files", data=upload(b"numbers 1 2 3\n", "numbers.txt"))
    assert uploaded.status == 201, uploaded
    submitted = await student.post(
        f"/api/problems/{problem_id}/submissions", json={"language": "python", "code": "print(1)"}
    )
    assert submitted.status == 202, submitted
    assert (await student.get(f"/api/submissions/{submitted.json['id']}?wait=10")).json["status"] == "done"
    # A long output: its full text goes to the blob store.
    long_code = "x = 1  # " + "long line " * 8000
    for client, code in ((student, "print(2)"), (young, long_code)):
        run = await client.post("/api/runs", json={"language": "python", "code": code, "stdin": "", "files": []})
        assert run.status == 202, run
        assert (await client.get(f"/api/runs/{run.json['id']}?wait=10")).json["status"] == "done"
    draft = await young.put(f"/api/problems/{problem_id}/draft", json={"language": "python", "code": "draft"})
    assert draft.status == 200, draft
    return Classroom(server, admin, teacher, student, problem_id)


def blob_files(blob_dir: Path) -> dict[str, str]:
    """Every blob file's name and the hash of its bytes on disk."""
    return {
        f"{p.parent.name}/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(blob_dir.glob("??/*"))
        if not p.name.startswith(".tmp-")
    }


@pytest.fixture
async def classroom(server_factory: Callable[..., Awaitable[LiveServer]], fast_passwords: None) -> Classroom:
    server = await server_factory(app_options={"sandbox": picture_sandbox()}, backup_time="")
    return await populate(server)
