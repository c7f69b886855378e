"""A populated classroom for the problem and leak tests (who is who, unique markers), and a copy of
the migrations with one more for the migration tests."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from appliance import migrations
from appliance.migrations import SCHEMA_DIR
from tests.conftest import ApiClient, LiveServer


@pytest.fixture(autouse=True)
def _fast_passwords(fast_passwords: None) -> None:
    """Every core test makes accounts; production-cost scrypt would dominate the suite's time."""


@pytest.fixture
def settings_defaults() -> dict[str, object]:
    """No idle containers: the core tests are about the API and the store, and a server's pool of
    started sandboxes and a warm sandbox per login would cost each test about half a second of
    engine work at start and at stop. Jobs still run in real sandboxes, started on demand; the
    pool and warm sandboxes have their own tests (tests/sandbox, tests/runner)."""
    return {"sandbox_pool_size": 0, "sandbox_prewarm": False}


@dataclass
class Markers:
    """Unique strings planted in each kind of test case; any of `secret` in a student reply is a leak."""

    visible_in: str
    visible_out: str
    past_in: str
    past_out: str
    hidden_in: str
    hidden_out: str
    future_in: str
    future_out: str

    @classmethod
    def new(cls) -> Markers:
        tag = uuid.uuid4().hex[:12]
        return cls(*(f"{name.upper()}_{tag}" for name in cls.__dataclass_fields__))

    @property
    def secret(self) -> tuple[str, ...]:
        return (self.hidden_in, self.hidden_out, self.future_in, self.future_out)

    @property
    def shown(self) -> tuple[str, ...]:
        return (self.visible_in, self.visible_out, self.past_in, self.past_out)


def iso_in(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def problem_body(markers: Markers, class_ids: list[int], **changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "title": "Sum of two numbers",
        "statement": "Read *a* and *b*; print `a + b`.",
        "language": "python",
        "time_limit_ms": 1000,
        "memory_limit_mb": 128,
        "classes": class_ids,
        "test_cases": [
            {"name": "example", "stdin": markers.visible_in, "expected_stdout": markers.visible_out, "visible": True},
            {"name": "secret", "stdin": markers.hidden_in, "expected_stdout": markers.hidden_out, "visible": False},
            {
                "name": "after the deadline",
                "stdin": markers.future_in,
                "expected_stdout": markers.future_out,
                "visibility": "reveal_later",
                "reveal_at": iso_in(timedelta(days=30)),
                "weight": 2,
            },
            {
                "name": "already revealed",
                "stdin": markers.past_in,
                "expected_stdout": markers.past_out,
                "visibility": "reveal_later",
                "reveal_at": iso_in(-timedelta(days=1)),
            },
        ],
    }
    body.update(changes)
    return body


@dataclass
class Classroom:
    server: LiveServer
    teacher: ApiClient
    other_teacher: ApiClient
    admin: ApiClient
    student: ApiClient  # in the problem's class
    outsider: ApiClient  # a student of another class of the same teacher
    class_id: int
    other_class_id: int
    problem_id: int
    markers: Markers

    def assert_no_secret(self, data: bytes, where: str) -> None:
        for marker in self.markers.secret:
            assert marker.encode() not in data, f"hidden test data {marker} leaked in {where}"


@pytest.fixture
async def classroom(server: LiveServer) -> Classroom:
    teacher = await server.make_user("teacher")
    other_teacher = await server.make_user("teacher")
    admin = await server.make_user("admin")
    student = await server.make_user("student")
    outsider = await server.make_user("student")
    class_ids = []
    for name, member in (("with problem", student), ("without problem", outsider)):
        reply = await teacher.post("/api/classes", json={"name": name})
        assert reply.status == 201, reply
        class_ids.append(reply.json["id"])
        joined = await member.post("/api/classes/join", json={"code": reply.json["join_code"]})
        assert joined.status == 200, joined
    markers = Markers.new()
    created = await teacher.post("/api/problems", json=problem_body(markers, [class_ids[0]]))
    assert created.status == 201, created
    return Classroom(
        server,
        teacher,
        other_teacher,
        admin,
        student,
        outsider,
        class_ids[0],
        class_ids[1],
        created.json["id"],
        markers,
    )


ADD_NOTES = "-- a later migration\nALTER TABLE users ADD COLUMN note TEXT;\nCREATE INDEX users_note ON users(note);\n"


@pytest.fixture
def schema_copy(tmp_path: Path) -> Path:
    """A copy of schema/ (with its PostgreSQL forms) plus one more migration, so 'head' is beyond
    the shipped ones."""
    target = tmp_path / "schema"
    shutil.copytree(SCHEMA_DIR, target)
    head = len(migrations.discover(target))
    (target / f"{head + 1:04d}_user_notes.sql").write_text(ADD_NOTES, encoding="utf-8")
    return target
