"""Per-student export and erasure (issue 10), against the real SQLite file and blob store.

A class with two students who both ran, submitted, drafted, uploaded and drew pictures. One
student's export holds all of their data and nobody else's; after their erasure no table, no byte
of the database file or its WAL and no blob holds their username, birth date, code or files,
while the other student's data is untouched and the gradebook adds up as before. No Docker: the
"sandbox" echoes the code and draws a picture made of it.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from appliance.app_keys import BLOBS
from runner.executor import ExecRequest, ExecResult, Image, TestOutcome
from tests.conftest import SYNC_CHANGE_LOG, ApiClient, LiveServer, years_ago
from tests.files.conftest import upload_ok
from tests.ui.conftest import EchoExecutor, FakeSandbox, Room, engine_down, make_room
from tests.ui.test_classroom_api import submit, wait_done

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class DrawingEcho(EchoExecutor):
    """Every test echoes the code and "draws" one picture whose bytes carry the code: each
    student's pictures are their own blobs."""

    async def execute(self, request: ExecRequest) -> ExecResult:
        return ExecResult(
            None,
            [
                TestOutcome(
                    t.name,
                    "ok",
                    0,
                    request.code.encode(),
                    b"",
                    3,
                    images=[Image("image/png", "frame 1", 1, 1, PNG_SIGNATURE + f"{t.name}:{request.code}".encode())],
                )
                for t in request.tests
            ],
        )


@dataclass
class Pupil:
    """A student with a little of everything, and the text that marks it as theirs."""

    client: ApiClient
    tag: str
    birthdate: str
    file_bytes: bytes
    shared_bytes: bytes
    run_id: int
    submission_ids: list[int]

    @property
    def code(self) -> str:
        # Longer than the stored result row (result_max_bytes): its full output goes to the blob store.
        return f"print('code-{self.tag}')  # " + "x" * 300

    @property
    def markers(self) -> list[bytes]:
        return [
            self.client.username.encode(),
            self.birthdate.encode(),
            f"code-{self.tag}".encode(),
            f"draft-{self.tag}".encode(),
            f"stdin-{self.tag}".encode(),
            f"comment-{self.tag}".encode(),
            self.file_bytes,
        ]


@dataclass
class School:
    room: Room
    pupil: Pupil
    peer: Pupil
    other_teacher: ApiClient

    @property
    def server(self) -> LiveServer:
        return self.room.server


async def _pupil(room: Room, client: ApiClient, birthdate: str, shared: bytes) -> Pupil:
    tag = os.urandom(6).hex()
    pupil = Pupil(client, tag, birthdate, f"file-{tag}\n".encode() * 3, shared, 0, [])
    problem = room.problem_id
    for url, code in ((f"/api/problems/{problem}/draft", f"draft-{tag}"), ("/api/drafts/scratch", f"draft-{tag}!")):
        assert (await client.put(url, json={"language": "python", "code": code})).status == 200
    own = await upload_ok(client, f"data-{tag}.txt", pupil.file_bytes)
    await upload_ok(client, "shared.txt", shared)
    run = await client.post(
        "/api/runs",
        json={"language": "python", "code": pupil.code, "stdin": f"stdin-{tag}", "files": [own["id"]]},
    )
    assert run.status == 202, run
    pupil.run_id = run.json["id"]
    await wait_done(client, "runs", pupil.run_id)
    # The first passes the visible test (the echo prints its code), the second passes nothing.
    for code in ("HELLO\n", pupil.code):
        pupil.submission_ids.append((await submit(client, problem, code))["id"])
    comment = await room.teacher.post(
        f"/api/submissions/{pupil.submission_ids[1]}/comments", json={"body": f"comment-{tag}: look again"}
    )
    assert comment.status == 201, comment
    await client.create_token("homework script")
    return pupil


async def _student(room: Room, birthdate: str) -> ApiClient:
    client = await room.server.make_user("student", birthdate=birthdate)
    assert (await client.post("/api/classes/join", json={"code": room.join_code})).status == 200
    return client


@pytest.fixture
async def school(server_factory: Callable[..., Any]) -> School:
    server = await server_factory(app_options={"sandbox": FakeSandbox(DrawingEcho)}, result_max_bytes=200)
    room = await make_room(server)
    # A birth date no other account has (the others are 15 or 16, staff have none): finding it
    # anywhere means finding theirs.
    born = date(datetime.now(UTC).year - 14, 3, 9).isoformat()
    shared = f"the same file for both {os.urandom(4).hex()}".encode()
    pupil = await _pupil(room, await _student(room, born), born, shared)
    peer = await _pupil(room, await _student(room, years_ago(16)), years_ago(16), shared)
    # Another teacher who added the student by username: that gives no right to their data.
    other_teacher = await server.make_user("teacher")
    other_class = await other_teacher.post("/api/classes", json={"name": "Chess club"})
    added = await other_teacher.post(
        f"/api/classes/{other_class.json['id']}/members", json={"usernames": [pupil.client.username]}
    )
    assert added.status == 200, added
    return School(room, pupil, peer, other_teacher)


def _unzip(body: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(body)) as bundle:
        assert bundle.testzip() is None
        return {name: bundle.read(name) for name in bundle.namelist()}


def _db(server: LiveServer) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{server.settings.db_path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def _their_blobs(server: LiveServer, user_id: int) -> dict[str, set[str]]:
    """The blob hashes of the student's files, job files, pictures and full outputs, by kind."""
    jobs = "job_id IN (SELECT id FROM jobs WHERE user_id = ?)"
    queries = {
        "files": "SELECT blob FROM files WHERE owner_id = ?",
        "job_files": f"SELECT blob FROM job_files WHERE {jobs}",
        "pictures": f"SELECT blob FROM job_images WHERE {jobs}",
        "outputs": f"SELECT stdout_blob FROM job_tests WHERE stdout_blob IS NOT NULL AND {jobs}",
    }
    with _db(server) as conn:
        return {kind: {row[0] for row in conn.execute(sql, (user_id,))} for kind, sql in queries.items()}


async def test_export_holds_all_of_their_data_and_nobody_elses(school: School) -> None:
    pupil, peer, room = school.pupil, school.peer, school.room
    reply = await room.teacher.get(f"/api/users/{pupil.client.user_id}/export")
    assert reply.status == 200, reply
    assert reply.headers["Content-Type"] == "application/zip"
    assert "attachment" in reply.headers["Content-Disposition"]
    members = _unzip(reply.body)
    profile = json.loads(members["profile.json"])
    assert profile["user"]["username"] == pupil.client.username
    assert profile["user"]["birthdate"] == pupil.birthdate
    assert [c["id"] for c in profile["classes"]] == sorted(
        [room.class_id, *(c["id"] for c in (await school.other_teacher.get("/api/classes")).json["classes"])]
    )
    assert [t["name"] for t in profile["tokens"]] == ["homework script"]
    assert len(profile["sessions"]) == 1 and "id_hash" not in members["profile.json"].decode()

    # Every row of theirs in every table that holds their work is in it.
    with _db(school.server) as conn:
        uid = pupil.client.user_id
        drafts = {r[0] for r in conn.execute("SELECT code FROM drafts WHERE user_id = ?", (uid,))}
        files = {r[0]: r[1] for r in conn.execute("SELECT id, name FROM files WHERE owner_id = ?", (uid,))}
        submissions = [
            r[0]
            for r in conn.execute("SELECT id FROM jobs WHERE user_id = ? AND kind = 'submission' ORDER BY id", (uid,))
        ]
        runs = [
            r[0] for r in conn.execute("SELECT id FROM jobs WHERE user_id = ? AND kind = 'run' ORDER BY id", (uid,))
        ]
    assert (
        {d["code"] for d in json.loads(members["drafts.json"])}
        == drafts
        == {
            f"draft-{pupil.tag}",
            f"draft-{pupil.tag}!",
        }
    )
    listed = json.loads(members["files.json"])
    assert {f["id"]: f["name"] for f in listed} == files and len(files) == 2
    for entry in listed:
        expected = pupil.file_bytes if entry["name"].startswith("data-") else pupil.shared_bytes
        assert members[entry["path"]] == expected
    exported_subs = json.loads(members["submissions.json"])
    assert [s["id"] for s in exported_subs] == submissions == pupil.submission_ids
    assert [s["code"] for s in exported_subs] == ["HELLO\n", pupil.code]
    assert members[f"submissions/{submissions[1]}/main.py"] == pupil.code.encode()
    assert [c["body"] for c in exported_subs[1]["comments"]] == [f"comment-{pupil.tag}: look again"]
    exported_runs = json.loads(members["runs.json"])
    assert [r["id"] for r in exported_runs] == runs == [pupil.run_id]
    run = exported_runs[0]
    assert (run["code"], run["stdin"]) == (pupil.code, f"stdin-{pupil.tag}")
    run_dir = f"runs/{pupil.run_id}"
    assert members[f"{run_dir}/files/data-{pupil.tag}.txt"] == pupil.file_bytes
    # Full outputs (cut in the JSON) and pictures, as their original bytes.
    assert members[f"{run_dir}/outputs/1-stdout.txt"] == pupil.code.encode()
    assert [n for n in members if n.startswith(f"{run_dir}/pictures/")] == [f"{run_dir}/pictures/1-1.png"]
    assert members[f"{run_dir}/pictures/1-1.png"].startswith(PNG_SIGNATURE)
    assert pupil.code.encode() in members[f"{run_dir}/pictures/1-1.png"]
    sub_dir = f"submissions/{submissions[1]}"
    assert members[f"{sub_dir}/outputs/1-stdout.txt"] == pupil.code.encode()
    # The visible test's picture only: the hidden test's output and pictures are the teacher's test data.
    assert sorted(n for n in members if n.startswith(f"{sub_dir}/pictures/")) == [f"{sub_dir}/pictures/1-1.png"]

    everything = b"\n".join(members.values())
    for marker in pupil.markers:
        assert marker in everything, marker
    for foreign in [
        *peer.markers[:-1],
        room.student.username.encode(),
        room.hidden_in.encode(),
        room.hidden_out.encode(),
    ]:
        assert foreign not in everything, foreign

    # The student may have their own; an admin anyone's.
    mine = await pupil.client.get(f"/api/users/{pupil.client.user_id}/export")
    assert mine.status == 200 and set(_unzip(mine.body)) == set(members)
    admin = await school.server.make_user("admin")
    assert (await admin.get(f"/api/users/{pupil.client.user_id}/export")).status == 200


async def test_export_is_refused_to_everyone_else(school: School) -> None:
    url = f"/api/users/{school.pupil.client.user_id}/export"
    # The other teacher only added the student by username; the peer and the outsider are students.
    for client in (school.other_teacher, school.peer.client, school.room.outsider):
        reply = await client.get(url)
        assert reply.status == 404 and reply.error_code == "not_found", reply
    assert (await school.server.client().get(url)).status == 401
    # Nor is a teacher's own export, or a missing user's, a way to probe.
    assert (await school.room.teacher.get(f"/api/users/{school.room.teacher.user_id}/export")).status == 404
    assert (await school.room.teacher.get("/api/users/999999/export")).status == 404


def _text_cells(server: LiveServer) -> list[tuple[str, str, str]]:
    """(table, column, value) of every text value in every column of every table."""
    out = []
    with _db(server) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                out.extend((table, key, row[key]) for key in row.keys() if isinstance(row[key], str))
    return out


def _rows_of(server: LiveServer, user_id: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every row that belongs to one user, for a before/after comparison."""
    jobs = "job_id IN (SELECT id FROM jobs WHERE user_id = :u)"
    queries = {
        "users": "SELECT * FROM users WHERE id = :u",
        "sessions": "SELECT * FROM sessions WHERE user_id = :u",
        "api_tokens": "SELECT * FROM api_tokens WHERE user_id = :u",
        "drafts": "SELECT * FROM drafts WHERE user_id = :u",
        "files": "SELECT * FROM files WHERE owner_id = :u",
        "jobs": "SELECT * FROM jobs WHERE user_id = :u",
        "job_tests": f"SELECT * FROM job_tests WHERE {jobs}",
        "job_files": f"SELECT * FROM job_files WHERE {jobs}",
        "job_images": f"SELECT * FROM job_images WHERE {jobs}",
        "submission_comments": f"SELECT * FROM submission_comments WHERE {jobs}",
        "class_members": "SELECT * FROM class_members WHERE user_id = :u",
    }
    with _db(server) as conn:
        return {name: sorted(map(tuple, conn.execute(sql, {"u": user_id}))) for name, sql in queries.items()}


def _gradebook_facts(book: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Each student's counts and scores, by id (the list is sorted by username, which changes)."""
    return sorted((s["id"], s["total"], s["solved"], json.dumps(s["cells"], sort_keys=True)) for s in book["students"])


async def _erase(client: ApiClient, pupil: Pupil, confirm: str | None = None) -> Any:
    return await client.post(
        f"/api/users/{pupil.client.user_id}/erase", json={"confirm_username": confirm or pupil.client.username}
    )


async def test_erasure_leaves_nothing_of_them_and_the_gradebook_adds_up(school: School) -> None:
    server, pupil, peer, room = school.server, school.pupil, school.peer, school.room
    uid = pupil.client.user_id
    token = await pupil.client.create_token("another script")
    script = pupil.client.with_token(token)
    assert (await script.get("/api/me")).status == 200
    blobs = server.app[BLOBS]
    theirs = _their_blobs(server, uid)
    assert all(theirs.values()), theirs
    # The file both uploaded, and the pictures of the code both submitted ("HELLO"), are one blob each.
    shared = set().union(*theirs.values()) & set().union(*_their_blobs(server, peer.client.user_id).values())
    assert any(blobs.get(d) == pupil.shared_bytes for d in shared)
    peer_rows = _rows_of(server, peer.client.user_id)
    book = (await room.teacher.get(f"/api/classes/{room.class_id}/gradebook")).json
    assert any(s["total"] > 0 for s in book["students"] if s["id"] == uid)

    reply = await _erase(room.teacher, pupil)
    assert reply.status == 200, reply
    assert reply.json["username"] == f"erased #{uid}" and reply.json["storage_scrubbed"] is True
    assert reply.json["removed"]["runs"] == 1 and reply.json["removed"]["files"] == 2

    # Sessions and tokens stop at once; the old password opens nothing.
    assert (await pupil.client.get("/api/me")).status == 401
    assert (await script.get("/api/me")).status == 401
    assert (await server.client().login(pupil.client.username, pupil.client.password)).status == 401

    # The gradebook counts and totals as before, under the pseudonym.
    after = (await room.teacher.get(f"/api/classes/{room.class_id}/gradebook")).json
    assert _gradebook_facts(after) == _gradebook_facts(book)
    assert {s["id"]: s["username"] for s in after["students"]}[uid] == f"erased #{uid}"

    # Nothing of theirs in any text of any table…
    for table, column, value in _text_cells(server):
        for marker in pupil.markers:
            assert marker.decode() not in value, (table, column, marker)
    # …nor anywhere in the database file or its WAL (freed pages, old frames) …
    raw = b"".join(
        path.read_bytes() for path in (server.settings.db_path, Path(f"{server.settings.db_path}-wal")) if path.exists()
    )
    for marker in pupil.markers:
        assert marker not in raw, marker
    # …nor in a blob: those only they used are gone, those the peer has too are kept.
    gone = set().union(*theirs.values()) - shared
    assert gone and not any(blobs.exists(d) for d in gone)
    assert all(blobs.exists(d) for d in shared)
    for digest in blobs.digests():
        data = blobs.get(digest)
        for marker in pupil.markers:
            assert marker not in data, (digest, marker)

    # The other student's data is untouched, and still theirs to read.
    assert _rows_of(server, peer.client.user_id) == peer_rows
    assert (await peer.client.get(f"/api/runs/{peer.run_id}")).status == 200
    # The erased submissions are never run again (their code is gone); the peer's are.
    rejudged = await room.teacher.post(f"/api/problems/{room.problem_id}/rejudge")
    assert rejudged.status == 202, rejudged
    with _db(server) as conn:
        owners = {r[0] for r in conn.execute("SELECT user_id FROM jobs WHERE kind = 'rejudge'")}
        audit = conn.execute("SELECT user_id, erased_by, counts FROM erasures").fetchall()
    assert owners == {peer.client.user_id}
    assert [(a[0], a[1]) for a in audit] == [(uid, room.teacher.user_id)]

    again = await room.teacher.post(f"/api/users/{uid}/erase", json={"confirm_username": f"erased #{uid}"})
    assert again.status == 409 and again.error_code == "already_erased", again


async def test_erasure_needs_the_confirmation_and_the_right_caller(school: School) -> None:
    server, pupil = school.server, school.pupil
    before = server.db_rows()
    refusals = [
        (await _erase(school.room.teacher, pupil, confirm="someone-else"), 400, "confirmation_mismatch"),
        (
            await school.room.teacher.post(f"/api/users/{pupil.client.user_id}/erase", json={}),
            400,
            "missing_field",
        ),
        (await _erase(school.other_teacher, pupil), 404, "not_found"),
        (await _erase(school.peer.client, pupil), 403, "forbidden"),
        (await _erase(pupil.client, pupil), 403, "forbidden"),
    ]
    for reply, status, code in refusals:
        assert (reply.status, reply.error_code) == (status, code), reply
    assert server.db_rows() == before
    assert (await pupil.client.get("/api/me")).status == 200
    # The username is compared as logins compare it: regardless of case.
    assert (await _erase(school.room.teacher, pupil, confirm=pupil.client.username.upper())).status == 200


async def test_erasure_waits_for_queued_work(server_factory: Callable[..., Any]) -> None:
    room = await make_room(await server_factory(app_options=engine_down()))
    queued = await room.student.post(
        f"/api/problems/{room.problem_id}/submissions", json={"language": "python", "code": "print(1)"}
    )
    assert queued.status == 202, queued
    # The runner touches the waiting job's row meanwhile (its next try, which sync's change log
    # records); everything else stays.
    before = room.server.db_rows(exclude=("jobs", *SYNC_CHANGE_LOG))
    reply = await room.teacher.post(
        f"/api/users/{room.student.user_id}/erase", json={"confirm_username": room.student.username}
    )
    assert reply.status == 409 and reply.error_code == "jobs_in_progress", reply
    assert room.server.db_rows(exclude=("jobs", *SYNC_CHANGE_LOG)) == before
    assert [row[6] for row in room.server.db_rows()["jobs"]] == ["print(1)"]
