"""Uploads in the content-addressed blob store: stored once, compressed when that helps, written
atomically; expiry and the purges remove rows and exactly the blobs nothing references any more."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import time

from appliance import maintenance
from appliance.app_keys import BLOBS
from appliance.clock import db_epoch
from appliance.scheduler import Scheduler
from tests.conftest import REPO_ROOT, LiveServer
from tests.files.conftest import (
    WAV,
    Room,
    RoomFactory,
    blob_files,
    blob_path,
    execute_sql,
    form,
    state,
    upload_ok,
)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def age_blobs(server: LiveServer, seconds: float = 7200) -> None:
    """Make every blob look written long ago (past the orphan grace period)."""
    old = time.time() - seconds
    for path in server.settings.blob_dir.glob("??/*"):
        os.utime(path, (old, old))


async def expire(server: LiveServer, file_id: str) -> None:
    # Off the event loop: the server may be in the middle of a write transaction on it (a run
    # completing), which could not commit while this waited for the lock on the loop's thread.
    sql = "UPDATE files SET expires_at = ? WHERE id = ?"
    await asyncio.to_thread(execute_sql, server, sql, (db_epoch(time.time() - 1), file_id))


async def test_identical_content_is_stored_once_and_compressed_when_it_helps(room: Room) -> None:
    text = b"0123456789 the same line again\n" * 5000
    noise = WAV + os.urandom(50_000)
    a = await upload_ok(room.alice, "a.txt", text)
    b = await upload_ok(room.bob, "b.txt", text)  # another user, another name, the same bytes
    c = await upload_ok(room.alice, "noise.wav", noise)
    assert a["id"] != b["id"]
    assert blob_files(room.server) == {f"{sha(text)[:2]}/{sha(text)[2:]}", f"{sha(noise)[:2]}/{sha(noise)[2:]}"}
    packed = blob_path(room.server, sha(text)).read_bytes()
    assert packed[:1] == b"Z" and len(packed) < len(text) // 10  # zlib: far smaller
    raw = blob_path(room.server, sha(noise)).read_bytes()
    assert raw[:1] == b"R" and len(raw) == len(noise) + 1  # incompressible: kept as it is
    for file, data in ((a, text), (b, text), (c, noise)):
        owner = room.bob if file is b else room.alice
        assert (await owner.get(f"/api/files/{file['id']}/content")).body == data


async def test_expiry_removes_files_and_only_unreferenced_blobs(room: Room) -> None:
    server, alice, bob = room.server, room.alice, room.bob
    shared, own, in_run = b"shared by two users\n", b"only alice has this\n", b"given to a queued run\n"
    alice_shared = await upload_ok(alice, "shared.txt", shared)
    bob_shared = await upload_ok(bob, "shared.txt", shared)
    alice_own = await upload_ok(alice, "own.txt", own)
    alice_run = await upload_ok(alice, "run.txt", in_run)
    run = await alice.post("/api/runs", json={"language": "python", "code": "1", "files": [alice_run["id"]]})
    assert run.status == 202, run
    for file in (alice_shared, alice_own, alice_run):
        await expire(server, file["id"])
    result = await maintenance.purge_expired_files(server.app)
    assert result == {"files": 3, "blobs": 1}
    rows = {row[0] for row in server.db_rows()["files"]}
    assert rows == {bob_shared["id"]}
    assert not blob_path(server, sha(own)).exists()  # nothing uses it any more
    assert blob_path(server, sha(shared)).exists()  # Bob's file still does
    assert blob_path(server, sha(in_run)).exists()  # the run's snapshot still does
    assert (await bob.get(f"/api/files/{bob_shared['id']}/content")).body == shared
    done = await alice.get(f"/api/runs/{run.json['id']}?wait=10")
    assert done.json["status"] == "done" and done.json["files"] == [{"id": None, "name": "run.txt", "size": 22}]
    # The run still had its file: the sandbox got the bytes.
    given = {f.name: f.data for f in room.sandbox.requests[-1].files}
    assert given == {"run.txt": in_run}
    await expire(server, bob_shared["id"])
    assert await maintenance.purge_expired_files(server.app) == {"files": 1, "blobs": 1}
    assert not blob_path(server, sha(shared)).exists()
    assert server.db_rows()["files"] == []


async def test_a_file_lives_as_long_as_the_submission_using_it(room: Room) -> None:
    server, alice = room.server, room.alice
    data = b"kept with the submission\n"
    kept = await upload_ok(alice, "kept.txt", data)
    submitted = await alice.post(
        f"/api/problems/{room.problem_id}/submissions",
        json={"language": "python", "code": "print(1)", "files": [kept["id"]]},
    )
    assert submitted.status == 202, submitted
    await expire(server, kept["id"])
    assert await maintenance.purge_expired_files(server.app) == {"files": 0, "blobs": 0}
    age_blobs(server)
    await maintenance.purge_orphan_blobs(server.app)
    mine = await alice.get(f"/api/files/{kept['id']}")
    assert mine.status == 200 and mine.json["kept_for_submission"] is True, mine
    assert (await room.teacher.get(f"/api/files/{kept['id']}/content")).body == data
    # The submission goes (its problem is deleted): so does the file, at the next purge.
    assert (await room.teacher.delete(f"/api/problems/{room.problem_id}")).status == 204
    assert await maintenance.purge_expired_files(server.app) == {"files": 1, "blobs": 1}
    assert (await alice.get(f"/api/files/{kept['id']}")).status == 404
    # The test data the submission's results kept (migration 0011) goes at the next orphan purge.
    age_blobs(server)
    await maintenance.purge_orphan_blobs(server.app)
    assert blob_files(server) == set()


async def test_orphan_purge_keeps_every_referenced_blob(room: Room) -> None:
    server, alice = room.server, room.alice
    blobs = server.app[BLOBS]
    live = await upload_ok(alice, "live.txt", b"a live upload\n")
    asset = await room.teacher.post(
        f"/api/problems/{room.problem_id}/assets",
        data=form("jump.wav", WAV),
    )
    assert asset.status == 201, asset
    run = await alice.post("/api/runs", json={"language": "python", "code": "print(1)"})
    done = await alice.get(f"/api/runs/{run.json['id']}?wait=10")
    assert done.json["status"] == "done", done
    output = blobs.put(b"a full output kept for a test\n")
    execute_sql(server, "UPDATE job_tests SET stdout_blob = ? WHERE job_id = ?", (output, run.json["id"]))
    # A table added later by another part of the appliance, following the naming rule.
    execute_sql(server, "CREATE TABLE frames_for_test (job_id INTEGER, image_blob TEXT)")
    frame = blobs.put(b"GIF89a frame")
    execute_sql(server, "INSERT INTO frames_for_test VALUES (1, ?)", (frame,))
    orphan = blobs.put(b"nothing points at me\n")
    age_blobs(server)
    young = blobs.put(b"just written, its row is not committed yet\n")
    removed = await maintenance.purge_orphan_blobs(server.app)
    assert removed == 1
    assert not blobs.exists(orphan)
    for kept in (sha(b"a live upload\n"), asset.json["sha256"], output, frame, young):
        assert blobs.exists(kept), kept
    assert (await alice.get(f"/api/files/{live['id']}/content")).status == 200


async def test_purge_works_in_bounded_batches(room_factory: RoomFactory, monkeypatch) -> None:
    from appliance import file_expiry

    room = await room_factory()
    monkeypatch.setattr(file_expiry, "PURGE_BATCH", 2)
    ids = [(await upload_ok(room.alice, f"f{i}.txt", f"file {i}\n".encode()))["id"] for i in range(5)]
    for file_id in ids:
        await expire(room.server, file_id)
    assert await maintenance.purge_expired_files(room.server.app) == {"files": 5, "blobs": 5}
    assert blob_files(room.server) == set()


def test_purges_are_scheduled() -> None:
    scheduler = Scheduler()
    maintenance.setup_periodic(scheduler)
    names = {job.name: job.every_s for job in scheduler.jobs}
    assert names["purge_expired_files"] <= 3600
    assert "purge_orphan_blobs" in names


async def test_crash_while_writing_a_blob_leaves_no_partial_blob(room_factory: RoomFactory, server_factory) -> None:
    room = await room_factory()
    settings = room.server.settings
    data = b"an upload cut short by a crash\n" * 1000
    # A separate process stores a blob and is killed (SIGKILL: no cleanup runs) after writing the
    # temporary file and before the rename that would publish it.
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from appliance.blobs import BlobStore\n"
        "def crash(*args):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "os.replace = crash\n"
        f"BlobStore(Path({str(settings.blob_dir)!r})).put(sys.stdin.buffer.read())\n"
    )
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", script], input=data, cwd=REPO_ROOT, timeout=60
    )
    assert done.returncode == -signal.SIGKILL
    blobs = room.server.app[BLOBS]
    assert not blobs.exists(sha(data)), "a partial blob was published under its name"
    leftovers = [name for name in blob_files(room.server) if "/.tmp-" in name]
    assert leftovers, "the crash happened before anything was written; the test proves nothing"
    # The next start removes the partial file; the same upload then works.
    await room.server.close()
    restarted = await server_factory(data_dir=settings.data_dir)
    assert blob_files(restarted) == set()
    client = await restarted.make_user("student")
    stored = await upload_ok(client, "again.txt", data)
    assert (await client.get(f"/api/files/{stored['id']}/content")).body == data


async def test_a_client_that_stops_mid_upload_leaves_nothing(room: Room) -> None:
    server = room.server
    token = await room.alice.create_token()
    before = state(server)
    host, port = server.url.removeprefix("http://").split(":")
    boundary = "cut-short-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n\r\n'.encode()
        + b"x" * 100_000
    )
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        (
            "POST /api/files HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\n"
            f"Authorization: Bearer {token}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(head) + 1_000_000}\r\n\r\n"
        ).encode()
        + head
    )
    await writer.drain()
    # The server accepted the request and is reading the body: it has not answered (a 401 or 413
    # would come at once, and the test would prove nothing).
    try:
        early = await asyncio.wait_for(reader.read(100), 0.5)
    except TimeoutError:
        early = b""
    assert early == b"", early
    writer.close()  # the rest of the body never comes
    await asyncio.sleep(0.5)
    after = state(server)
    # The token row is the only change, made before the upload started.
    assert after[1] == before[1], "a blob was written for an upload that never finished"
    assert after[0]["files"] == before[0]["files"] == []


async def test_a_blob_a_purge_unlinked_under_an_upload_is_restored_after_its_transaction(
    room: Room, monkeypatch
) -> None:
    # The race: the upload's put finds the blob already there (an orphan), a purge unlinks it
    # before the upload's rows name it. The blob comes back after the transaction, not inside it.
    from appliance import problem_assets, user_files
    from appliance.db import Database

    server, alice = room.server, room.alice
    blobs = server.app[BLOBS]
    data, sound = b"the same bytes as an orphan\n", WAV + b"\x00" * 64
    real_transaction = Database.transaction
    in_transaction = False

    unlink_next: list[str] = []

    def transaction(self: Database):  # type: ignore[no-untyped-def]
        while unlink_next:  # the purge ran just before this transaction
            blobs.delete(unlink_next.pop())
        context = real_transaction(self)

        class Tracked:
            async def __aenter__(self):  # type: ignore[no-untyped-def]
                nonlocal in_transaction
                in_transaction = True
                return await context.__aenter__()

            async def __aexit__(self, *exc):  # type: ignore[no-untyped-def]
                nonlocal in_transaction
                in_transaction = False
                return await context.__aexit__(*exc)

        return Tracked()

    real_ensure = user_files.ensure_blobs

    async def ensure(*args):  # type: ignore[no-untyped-def]
        assert not in_transaction, "a blob was written while the writer was held"
        await real_ensure(*args)

    monkeypatch.setattr(Database, "transaction", transaction)
    monkeypatch.setattr(user_files, "ensure_blobs", ensure)
    monkeypatch.setattr(problem_assets, "ensure_blobs", ensure)
    unlink_next.append(sha(data))
    uploaded = await upload_ok(alice, "orphan.txt", data)
    unlink_next.append(sha(sound))
    asset = await room.teacher.post(f"/api/problems/{room.problem_id}/assets", data=form("sound.wav", sound))
    monkeypatch.setattr(Database, "transaction", real_transaction)
    assert asset.status == 201, asset
    assert blobs.exists(sha(data)) and blobs.exists(sha(sound))
    assert (await alice.get(f"/api/files/{uploaded['id']}/content")).body == data
