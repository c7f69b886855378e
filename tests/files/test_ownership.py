"""Files belong to their uploader, checked on every route (DESIGN.md §2.7).

Another user's file, a guessed id, a forged id and an expired file all get the same 404 body on
every route that takes a file id, and none of those refusals changes anything.
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import quote

from appliance.clock import db_epoch
from tests.conftest import ApiClient, Reply
from tests.files.conftest import Room, execute_sql, state, upload_ok

NOT_FOUND = {"error": {"code": "not_found", "message": "no such file"}}
# Within the request schema's 64-character bound for ids (longer is a malformed body: 400 too_long).
FORGED = ("1", "0", "-1", "..", "%2e%2e%2fetc%2fpasswd", "' OR '1'='1", "A" * 21 + "!", "x" * 64, "null", "")


async def _file_routes(client: ApiClient, file_id: str) -> list[Reply]:
    """Every way to touch a file by its id over HTTP (reading, downloading, deleting, using it)."""
    return [
        await client.get(f"/api/files/{file_id}"),
        await client.get(f"/api/files/{file_id}/content"),
        await client.delete(f"/api/files/{file_id}"),
    ]


async def _job_routes(room: Room, client: ApiClient, file_id: str) -> list[Reply]:
    run = await client.post("/api/runs", json={"language": "python", "code": "print(1)", "files": [file_id]})
    submission = await client.post(
        f"/api/problems/{room.problem_id}/submissions",
        json={"language": "python", "code": "print(1)", "files": [file_id]},
    )
    return [run, submission]


def _assert_not_found(replies: list[Reply], *, field: str | None = None) -> None:
    for reply in replies:
        assert reply.status == 404, reply
        expected = NOT_FOUND if field is None else {"error": {**NOT_FOUND["error"], "field": field}}
        assert reply.json == expected, reply


async def test_another_user_cannot_touch_a_file_by_any_route(room: Room) -> None:
    server, alice, bob = room.server, room.alice, room.bob
    secret = b"alice's private data " + secrets.token_bytes(8).hex().encode()
    mine = await upload_ok(alice, "private.txt", secret)
    bob_token = bob.with_token(await bob.create_token())
    assert (await bob_token.get("/api/me")).status == 200  # a token's first use records its last_used_at
    before = state(server)
    for client in (bob, bob_token):
        _assert_not_found(await _file_routes(client, mine["id"]))
        _assert_not_found(await _job_routes(room, client, mine["id"]), field="files[0]")
        listed = await client.get("/api/files")
        assert listed.status == 200 and listed.json["files"] == [], listed
        assert secret not in listed.body
    assert state(server) == before, "a refused request changed something"
    # The owner still has it, untouched.
    content = await alice.get(f"/api/files/{mine['id']}/content")
    assert content.status == 200 and content.body == secret


async def test_guessed_forged_and_expired_ids_fail_exactly_like_another_users(room: Room) -> None:
    server, alice, bob = room.server, room.alice, room.bob
    others = await upload_ok(bob, "bobs.txt", b"bob")
    expired = await upload_ok(alice, "old.txt", b"old data")
    execute_sql(server, "UPDATE files SET expires_at = ? WHERE id = ?", (db_epoch(time.time() - 1), expired["id"]))
    guessed = secrets.token_urlsafe(16)  # well formed, owned by nobody
    before = state(server)
    for file_id in (others["id"], guessed, expired["id"]):
        _assert_not_found(await _file_routes(alice, file_id))
        _assert_not_found(await _job_routes(room, alice, file_id), field="files[0]")
    for forged in FORGED:
        replies = await _file_routes(alice, forged)
        # A forged id may not even reach the route (e.g. '..' is normalized away by the client):
        # whatever answers, it is a 404 and never a file.
        for reply in replies:
            assert reply.status in (404, 405), reply
            if reply.status == 404 and reply.path.startswith("/api/files/"):
                assert reply.error_code == "not_found", reply
        _assert_not_found(await _job_routes(room, alice, forged), field="files[0]")
    _assert_not_found([await alice.get(f"/api/files/{quote(others['id'])}%00")])
    listed = (await alice.get("/api/files")).json["files"]
    assert [f["id"] for f in listed] == [], "an expired file is still listed"
    assert state(server) == before


async def test_teacher_reads_files_of_their_class_submissions_only(room: Room) -> None:
    alice = room.alice
    data = await upload_ok(alice, "data.csv", b"a,b\n1,2\n")
    unused = await upload_ok(alice, "unused.txt", b"not in any submission")
    submitted = await alice.post(
        f"/api/problems/{room.problem_id}/submissions",
        json={"language": "python", "code": "print(open('data.csv').read())", "files": [data["id"]]},
    )
    assert submitted.status == 202, submitted
    job = await room.teacher.get(f"/api/submissions/{submitted.json['id']}?wait=10")
    assert job.status == 200 and job.json["files"] == [{"id": data["id"], "name": "data.csv", "size": 8}], job
    # The class's teacher and an admin may read it; another teacher may not.
    for reader in (room.teacher, room.admin):
        assert (await reader.get(f"/api/files/{data['id']}")).status == 200
        content = await reader.get(f"/api/files/{data['id']}/content")
        assert content.status == 200 and content.body == b"a,b\n1,2\n", content
    _assert_not_found(await _file_routes(room.other_teacher, data["id"]))
    # A file of the student that no submission uses stays private, even from their teacher.
    _assert_not_found([await room.teacher.get(f"/api/files/{unused['id']}")])
    # Reading is not owning: the teacher can neither delete it nor run with it.
    refused = await room.teacher.delete(f"/api/files/{data['id']}")
    assert refused.status == 403 and refused.error_code == "forbidden", refused
    run = await room.teacher.post("/api/runs", json={"language": "python", "code": "1", "files": [data["id"]]})
    assert run.status == 404 and run.json["error"]["field"] == "files[0]", run
    # Listing shows only one's own files, for teachers and admins too.
    for client in (room.teacher, room.admin):
        assert (await client.get("/api/files")).json["files"] == []


async def test_staff_run_with_their_own_files(room: Room) -> None:
    mine = await upload_ok(room.teacher, "solution-data.txt", b"42\n")
    run = await room.teacher.post("/api/runs", json={"language": "python", "code": "1", "files": [mine["id"]]})
    assert run.status == 202, run
    done = await room.teacher.get(f"/api/runs/{run.json['id']}?wait=10")
    assert done.json["status"] == "done" and done.json["files"][0]["name"] == "solution-data.txt", done


async def test_a_deleted_file_a_submission_uses_stays_for_its_readers(room: Room) -> None:
    alice = room.alice
    data = await upload_ok(alice, "input.txt", b"kept for the teacher")
    submitted = await alice.post(
        f"/api/problems/{room.problem_id}/submissions",
        json={"language": "python", "code": "print(2)", "files": [data["id"]]},
    )
    assert submitted.status == 202, submitted
    deleted = await alice.delete(f"/api/files/{data['id']}")
    assert deleted.status == 204, deleted
    # Gone for its owner (and off the quota)...
    _assert_not_found(await _file_routes(alice, data["id"]))
    listing = (await alice.get("/api/files")).json
    assert listing["files"] == [] and listing["quota"]["files"] == 0
    # ...but the submission's teacher still reads what was submitted.
    content = await room.teacher.get(f"/api/files/{data['id']}/content")
    assert content.status == 200 and content.body == b"kept for the teacher"
    # A new file may take the name again.
    again = await upload_ok(alice, "input.txt", b"a new one")
    assert again["id"] != data["id"]
