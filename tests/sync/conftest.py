"""Two Labrunner data folders, a classroom appliance and a central instance, driven through the
real command line as separate processes (`python -m appliance --data-dir ...`).

The classroom's data is written straight into its SQLite file: judging a submission needs the
Docker sandbox, which these tests are not about, and the change-log triggers see these writes
exactly as they see the server's.
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from appliance.blobs import BlobStore
from tests.conftest import dump_db
from tests.runner.appliance_process import ApplianceProcess, run_cli, serving

MINOR_USERNAME = "kid-anna-minor"
MINOR_BIRTHDATE = "2014-03-04"
ADULT_USERNAME = "adult-ben"
TEACHER_USERNAME = "ms-lee"
ASSET = b"x,y\n1,2\n"
NOW = "2026-05-01T09:00:00.000000Z"


def cli(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli("--data-dir", str(data_dir), *args, env={**(env or {}), "PYTHONIOENCODING": "utf-8"})


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@contextmanager
def sql(data_dir: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(data_dir / "labrunner.sqlite3")
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    try:
        with conn:
            yield conn
    finally:
        conn.close()


@dataclass
class Classroom:
    data_dir: Path
    public_key: str
    fingerprint: str
    problem_id: int
    class_id: int
    minor_id: int
    adult_id: int
    submission_ids: list[int]

    def export(self, target: Path, *extra: str, env: dict[str, str] | None = None) -> str:
        return ok(cli(self.data_dir, "export", *extra, str(target), env=env))


def _identity(data_dir: Path) -> tuple[str, str]:
    lines = dict(line.split(":", 1) for line in ok(cli(data_dir, "identity")).splitlines())
    return lines["public key"].strip(), lines["fingerprint"].strip()


def make_classroom(data_dir: Path) -> Classroom:
    ok(cli(data_dir, "migrate"))
    public_key, fingerprint = _identity(data_dir)
    blob = BlobStore(data_dir / "blobs").put(ASSET)
    with sql(data_dir) as conn:

        def user(name: str, role: str, birthdate: str | None) -> int:
            return int(
                conn.execute(
                    "INSERT INTO users (username, password_hash, role, birthdate, created_at) VALUES (?, 'x', ?, ?, ?)",
                    (name, role, birthdate, NOW),
                ).lastrowid
                or 0
            )

        teacher = user(TEACHER_USERNAME, "teacher", None)
        minor = user(MINOR_USERNAME, "student", MINOR_BIRTHDATE)
        adult = user(ADULT_USERNAME, "student", "1990-01-01")
        class_id = conn.execute(
            "INSERT INTO classes (name, owner_id, join_code, created_at) VALUES ('7B', ?, 'JOIN7B', ?)", (teacher, NOW)
        ).lastrowid
        conn.executemany(
            "INSERT INTO class_members (class_id, user_id, added_at) VALUES (?, ?, ?)",
            [(class_id, minor, NOW), (class_id, adult, NOW)],
        )
        problem = conn.execute(
            "INSERT INTO problems (owner_id, title, statement, language, time_limit_ms, memory_limit_mb, comparison,"
            " created_at, updated_at) VALUES (?, 'Sum', 'Add two numbers.', 'python', 2000, 256, 'exact', ?, ?)",
            (teacher, NOW, NOW),
        ).lastrowid
        conn.execute("INSERT INTO problem_classes (problem_id, class_id) VALUES (?, ?)", (problem, class_id))
        conn.executemany(
            "INSERT INTO test_cases (problem_id, position, name, stdin, expected_stdout, visibility)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(problem, 1, "visible", "1 2\n", "3\n", "visible"), (problem, 2, "hidden", "5 5\n", "10\n", "hidden")],
        )
        conn.execute(
            "INSERT INTO problem_assets (problem_id, name, kind, media_type, size, blob, created_at)"
            " VALUES (?, 'data.csv', 'csv', 'text/csv', ?, ?, ?)",
            (problem, len(ASSET), blob, NOW),
        )
        submissions = [submit(conn, student, int(problem or 0), "accepted", 1.0) for student in (adult, minor)]
    return Classroom(
        data_dir, public_key, fingerprint, int(problem or 0), int(class_id or 0), minor, adult, submissions
    )


def submit(conn: sqlite3.Connection, user_id: int, problem_id: int, verdict: str, score: float) -> int:
    code = f"print(sum(map(int, input().split())))  # by {user_id}"
    return int(
        conn.execute(
            "INSERT INTO jobs (kind, user_id, problem_id, language, code, code_hash, priority, status, verdict, score,"
            " created_at, finished_at) VALUES ('submission', ?, ?, 'python', ?, ?, 1, 'done', ?, ?, ?, ?)",
            (user_id, problem_id, code, hashlib.sha256(code.encode()).hexdigest(), verdict, score, NOW, NOW),
        ).lastrowid
        or 0
    )


@dataclass
class Central:
    data_dir: Path

    def import_(self, bundle: Path) -> subprocess.CompletedProcess[str]:
        return cli(self.data_dir, "import", str(bundle))

    def state(self) -> tuple[Any, ...]:
        """Every row and every blob file: what a refused import must leave as it was."""
        blobs = sorted(str(p.relative_to(self.data_dir)) for p in (self.data_dir / "blobs").rglob("*") if p.is_file())
        return dump_db(self.data_dir / "labrunner.sqlite3"), blobs

    def synced(self, table: str) -> list[sqlite3.Row]:
        with sql(self.data_dir) as conn:
            return list(conn.execute(f"SELECT * FROM {table} ORDER BY appliance_id, local_id"))


@pytest.fixture
def classroom(tmp_path: Path) -> Classroom:
    return make_classroom(tmp_path / "classroom")


@pytest.fixture
def central(tmp_path: Path, classroom: Classroom) -> Central:
    """A central instance that registered the classroom's key."""
    data_dir = tmp_path / "central"
    added = ok(cli(data_dir, "appliances", "add", "Room 12", classroom.public_key))
    assert classroom.fingerprint in added
    return Central(data_dir)


@pytest.fixture
def central_server(central: Central) -> Iterator[ApplianceProcess]:
    """The central instance, served by its own process."""
    with serving(central.data_dir) as server:
        yield server
