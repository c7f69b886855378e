"""Data folders for the problem-set tests: a publisher (the central instance) with problems whose
hidden tests carry strings no student answer may ever contain, and a classroom that trusts it."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import DEFAULT_PASSWORD, ApiClient, dump_db
from tests.sync.conftest import NOW, Classroom, cli, make_classroom, ok, sql

SECRET_IN = "SECRET-HIDDEN-IN-7f3a"
SECRET_OUT = "SECRET-HIDDEN-OUT-7f3a"
# What importing may write on the classroom (the scheduler's job history and sessions move on their own).
IMPORT_TABLES = (
    "problems",
    "test_cases",
    "problem_assets",
    "problem_classes",
    "problem_origins",
    "problem_set_inbox",
    "trusted_publishers",
)


@dataclass
class Publisher:
    data_dir: Path
    public_key: str
    fingerprint: str
    sum_id: int
    echo_id: int

    def publish(self, name: str, *ids: int, out: Path | None = None) -> str:
        return ok(cli(self.data_dir, "publish", "--name", name, *map(str, ids), *(["--out", str(out)] if out else [])))


def identity_of(data_dir: Path) -> tuple[str, str]:
    lines = dict(line.split(":", 1) for line in ok(cli(data_dir, "identity")).splitlines())
    return lines["public key"].strip(), lines["fingerprint"].strip()


def make_publisher(data_dir: Path) -> Publisher:
    """make_classroom's data (problem "Sum": a visible test, a hidden one, an asset) plus a hidden test
    with the secret strings and a second problem "Echo" with a visible test only."""
    base: Classroom = make_classroom(data_dir)
    with sql(data_dir) as conn:
        conn.execute(
            "INSERT INTO test_cases (problem_id, position, name, stdin, expected_stdout, visibility)"
            " VALUES (?, 3, 'secret', ?, ?, 'hidden')",
            (base.problem_id, SECRET_IN, SECRET_OUT),
        )
        teacher = conn.execute("SELECT owner_id FROM problems WHERE id = ?", (base.problem_id,)).fetchone()[0]
        echo = conn.execute(
            "INSERT INTO problems (owner_id, title, statement, language, time_limit_ms, memory_limit_mb, comparison,"
            " created_at, updated_at) VALUES (?, 'Echo', 'Print what you read.', 'python', 2000, 256, 'exact', ?, ?)",
            (teacher, NOW, NOW),
        ).lastrowid
        conn.execute(
            "INSERT INTO test_cases (problem_id, position, name, stdin, expected_stdout, visibility)"
            " VALUES (?, 1, 'echo', 'hi\n', 'hi\n', 'visible')",
            (echo,),
        )
    return Publisher(data_dir, base.public_key, base.fingerprint, base.problem_id, int(echo or 0))


def make_receiver(data_dir: Path, publisher: Publisher | None) -> tuple[str, str]:
    """A migrated classroom trusting `publisher` (None: trusting nobody); its key and fingerprint."""
    ok(cli(data_dir, "migrate"))
    if publisher is not None:
        added = ok(cli(data_dir, "publishers", "add", "Central", publisher.public_key))
        assert publisher.fingerprint in added, added
    return identity_of(data_dir)


def state(data_dir: Path) -> tuple[Any, ...]:
    """The rows a receive or an import may write, and every blob file."""
    rows = dump_db(data_dir / "labrunner.sqlite3")
    blobs = sorted(str(p.relative_to(data_dir)) for p in (data_dir / "blobs").rglob("*") if p.is_file())
    return {table: rows.get(table) for table in IMPORT_TABLES}, blobs


def rezip(raw: bytes, change: Any) -> bytes:
    """The bundle's members, `change`d (name -> bytes), zipped again as the writer does: every CRC
    right, so only the signed hashes can tell."""
    members = {}
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        infos = archive.infolist()
        for info in infos:
            members[info.filename] = archive.read(info)
    change(members)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for info in infos:
            archive.writestr(info, members[info.filename])
    return out.getvalue()


def reveal_hidden(members: dict[str, bytes]) -> None:
    """What a man in the middle would want: every hidden test of the set made visible."""
    lines = [json.loads(line) for line in members["problems.jsonl"].decode().split("\n") if line]
    for record in lines:
        for test in record["test_cases"]:
            test["visibility"] = "visible"
    members["problems.jsonl"] = b"".join(
        json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n" for r in lines
    )


def flip_byte(raw: bytes, text: bytes) -> bytes:
    at = raw.index(text)
    return raw[:at] + bytes([raw[at] ^ 0x01]) + raw[at + 1 :]


async def logged_in(url: str, username: str) -> ApiClient:
    client = ApiClient(url)
    reply = await client.login(username, DEFAULT_PASSWORD)
    assert reply.status == 200, reply
    if reply.json["user"]["pending_legal"]:
        versions = {f"accept_{p['kind']}": p["version"] for p in reply.json["user"]["pending_legal"]}
        assert (await client.post("/api/me/accept-legal", json=versions)).status == 200
    return client
