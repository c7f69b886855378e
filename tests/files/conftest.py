"""Fixtures for the file and asset tests: a server whose sandbox records what each job was given.

`RecordingSandbox` stands in for Docker where a test only needs to see the ExecRequest a job
produced (which files, with which bytes); its "program" prints a JSON map of the files it got,
name → SHA-256. The one test that proves a real program reads an uploaded file uses the real
Docker sandbox (the `sandbox_ready` fixture: a skip, or a failure under CI).
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import zipfile
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from runner.executor import ExecRequest, ExecResult, TestOutcome
from tests.conftest import ApiClient, LiveServer


def make_png(width: int, height: int) -> bytes:
    """A valid RGBA PNG, every pixel opaque red."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 6, 0, 0, 0])
    rows = b"".join(b"\x00" + b"\xff\x00\x00\xff" * width for _ in range(height))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


# A small PNG, and headers of the other accepted binary types (enough for content sniffing).
PNG = make_png(3, 2)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 32 + b"\xff\xd9"
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00"
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x44\xac\x00\x00\x88X\x01\x00\x02\x00\x10\x00"
OGG = b"OggS\x00\x02" + b"\x00" * 20 + b"\x01\x1e\x01vorbis"
BMP = (
    b"BM"
    + (58).to_bytes(4, "little")
    + b"\0\0\0\0"
    + (54).to_bytes(4, "little")
    + (40).to_bytes(4, "little")
    + b"\0" * 40
)
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" + b"\x00" * 32
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56
PE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48
BINARY = bytes(range(256)) * 4


class RecordingExecutor:
    def __init__(self, requests: list[ExecRequest]) -> None:
        self.requests = requests

    async def execute(self, request: ExecRequest) -> ExecResult:
        self.requests.append(request)
        listing = json.dumps({f.name: hashlib.sha256(f.data).hexdigest() for f in request.files}, sort_keys=True)
        outcomes = [TestOutcome(t.name, "ok", 0, listing.encode(), b"", 5) for t in request.tests]
        return ExecResult(None, outcomes)

    async def close(self) -> None:
        pass


class RecordingSandbox:
    """A SandboxProvider (appliance.runner_service) that records requests instead of running them."""

    def __init__(self) -> None:
        self.requests: list[ExecRequest] = []

    async def new_executor(self) -> RecordingExecutor:
        return RecordingExecutor(self.requests)

    async def engine_up(self) -> bool:
        return True

    async def image_state(self) -> str:
        return "ok"

    async def close(self) -> None:
        pass


@dataclass
class Room:
    """A class with a problem: who is who, and the recording sandbox behind the server."""

    server: LiveServer
    sandbox: RecordingSandbox
    teacher: ApiClient
    other_teacher: ApiClient
    admin: ApiClient
    alice: ApiClient  # a student of the class
    bob: ApiClient  # another student of the same class
    class_id: int
    problem_id: int
    extra: dict[str, Any] = field(default_factory=dict)


RoomFactory = Callable[..., Awaitable[Room]]


@pytest.fixture
def room_factory(server_factory: Callable[..., Awaitable[LiveServer]]) -> RoomFactory:
    """`await room_factory(**settings)`: a started server with a recording sandbox and a class."""

    async def make(**overrides: Any) -> Room:
        sandbox = RecordingSandbox()
        server = await server_factory(app_options={"sandbox": sandbox}, **overrides)
        teacher = await server.make_user("teacher")
        other_teacher = await server.make_user("teacher")
        admin = await server.make_user("admin")
        alice = await server.make_user("student")
        bob = await server.make_user("student")
        klass = await teacher.post("/api/classes", json={"name": "7B"})
        assert klass.status == 201, klass
        for student in (alice, bob):
            joined = await student.post("/api/classes/join", json={"code": klass.json["join_code"]})
            assert joined.status == 200, joined
        problem = await teacher.post(
            "/api/problems",
            json={
                "title": "Read the data",
                "statement": "Print the file.",
                "language": "python",
                "classes": [klass.json["id"]],
                "test_cases": [{"name": "t", "stdin": "", "expected_stdout": "x", "visible": True}],
            },
        )
        assert problem.status == 201, problem
        return Room(server, sandbox, teacher, other_teacher, admin, alice, bob, klass.json["id"], problem.json["id"])

    return make


@pytest.fixture
async def room(room_factory: RoomFactory) -> Room:
    return await room_factory()


def form(filename: str | None, data: bytes, **fields: str) -> aiohttp.FormData:
    """A multipart body as browsers send it: the file name as is (aiohttp would percent-encode it)."""
    body = aiohttp.FormData(quote_fields=False)
    for key, value in fields.items():
        body.add_field(key, value)
    body.add_field("file", data, filename=filename, content_type="application/octet-stream")
    return body


async def upload(client: ApiClient, filename: str | None, data: bytes, path: str = "/api/files", **fields: str) -> Any:
    return await client.post(path, data=form(filename, data, **fields))


async def upload_ok(client: ApiClient, filename: str, data: bytes, **fields: str) -> dict[str, Any]:
    reply = await upload(client, filename, data, **fields)
    assert reply.status == 201, reply
    return dict(reply.json)


def make_zip(members: dict[str, bytes], *, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def blob_files(server: LiveServer) -> set[str]:
    """Every file in the blob store, temporary ones included (a partial write would show here)."""
    root = server.settings.blob_dir
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def state(server: LiveServer) -> tuple[dict[str, list[tuple[Any, ...]]], set[str]]:
    """Everything a refused request must leave unchanged: all rows and all blob files."""
    return server.db_rows(exclude=("sessions",)), blob_files(server)


def execute_sql(server: LiveServer, sql: str, params: tuple[Any, ...] = ()) -> None:
    """Change rows behind the server's back (e.g. move an expiry into the past)."""
    conn = sqlite3.connect(server.settings.db_path, timeout=10)
    try:
        conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


def blob_path(server: LiveServer, digest: str) -> Path:
    return server.settings.blob_dir / digest[:2] / digest[2:]
