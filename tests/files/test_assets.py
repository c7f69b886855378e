"""Problem assets: teacher-only uploads, content-hashed URLs with ETag, immutable caching and
Range, and data files put in every submission's working directory."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from tests.files.conftest import PNG, WAV, Room, RoomFactory, state, upload, upload_ok

IMMUTABLE = "public, max-age=31536000, immutable"
DATA = b"".join(f"{i},{i * i}\n".encode() for i in range(100))  # 590 bytes of CSV


async def add_asset(room: Room, name: str, data: bytes, **fields: str) -> dict:
    reply = await upload(room.teacher, name, data, path=f"/api/problems/{room.problem_id}/assets", **fields)
    assert reply.status == 201, reply
    return dict(reply.json)


async def test_asset_urls_are_content_hashed_and_cached_forever(room: Room) -> None:
    asset = await add_asset(room, "squares.csv", DATA)
    digest = hashlib.sha256(DATA).hexdigest()
    assert asset["sha256"] == digest and asset["url"] == f"/assets/{digest}/squares.csv"
    anon = room.server.client()
    full = await anon.get(asset["url"])
    assert full.status == 200 and full.body == DATA, full
    etag = f'"{digest}"'
    assert full.headers["ETag"] == etag
    assert full.headers["Cache-Control"] == IMMUTABLE
    assert full.headers["Accept-Ranges"] == "bytes"
    assert full.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert full.headers["X-Content-Type-Options"] == "nosniff"
    # Revalidation: 304 with no body, for the exact, a weak or a listed tag, and for *.
    for tag in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        cached = await anon.get(asset["url"], headers={"If-None-Match": tag})
        assert cached.status == 304 and cached.body == b"" and cached.headers["ETag"] == etag, cached
    assert (await anon.get(asset["url"], headers={"If-None-Match": '"other"'})).status == 200
    # Ranges: a slice, an open end, a suffix; past the end is 416.
    part = await anon.get(asset["url"], headers={"Range": "bytes=0-9"})
    assert part.status == 206 and part.body == DATA[:10], part
    assert part.headers["Content-Range"] == f"bytes 0-9/{len(DATA)}"
    assert part.headers["ETag"] == etag and part.headers["Cache-Control"] == IMMUTABLE
    tail = await anon.get(asset["url"], headers={"Range": "bytes=580-"})
    assert tail.status == 206 and tail.body == DATA[580:], tail
    suffix = await anon.get(asset["url"], headers={"Range": "bytes=-5"})
    assert suffix.status == 206 and suffix.body == DATA[-5:], suffix
    beyond = await anon.get(asset["url"], headers={"Range": "bytes=9999-"})
    assert beyond.status == 416 and beyond.headers["Content-Range"] == f"bytes */{len(DATA)}", beyond
    # A range for another version of the content (If-Range) gets the whole current one.
    stale = await anon.get(asset["url"], headers={"Range": "bytes=0-9", "If-Range": '"older"'})
    assert stale.status == 200 and stale.body == DATA
    # Multiple ranges may be ignored (RFC 9110): the whole content.
    multi = await anon.get(asset["url"], headers={"Range": "bytes=0-1,5-6"})
    assert multi.status == 200 and multi.body == DATA
    head = await anon.request("HEAD", asset["url"])
    assert head.status == 200 and head.body == b"" and head.headers["ETag"] == etag


async def test_asset_base_url_points_links_at_a_cdn(room_factory: RoomFactory) -> None:
    room = await room_factory(asset_base_url="https://cdn.example.org/labrunner/")
    asset = await add_asset(room, "sprite image.png", PNG)
    assert asset["url"] == f"https://cdn.example.org/labrunner/assets/{asset['sha256']}/{quote('sprite image.png')}"
    listed = (await room.alice.get(f"/api/problems/{room.problem_id}/assets")).json["assets"]
    assert [a["url"] for a in listed] == [asset["url"]]
    # The appliance itself still serves the path the CDN fetches from.
    served = await room.server.client().get(f"/assets/{asset['sha256']}/sprite%20image.png")
    assert served.status == 200 and served.body == PNG


async def test_only_the_problems_teacher_manages_assets(room: Room) -> None:
    path = f"/api/problems/{room.problem_id}/assets"
    before = state(room.server)
    student = await upload(room.alice, "x.png", PNG, path=path)
    assert student.status == 403 and student.error_code == "forbidden", student
    other = await upload(room.other_teacher, "x.png", PNG, path=path)
    assert other.status == 404 and other.error_code == "not_found", other
    assert state(room.server) == before
    asset = await add_asset(room, "x.png", PNG)
    # Students of the class see the list; others do not see the problem at all.
    assert (await room.alice.get(path)).json["assets"][0]["name"] == "x.png"
    outsider = await room.server.make_user("student")
    assert (await outsider.get(path)).status == 404
    assert (await room.other_teacher.delete(f"{path}/{asset['id']}")).status == 404
    assert (await room.alice.delete(f"{path}/{asset['id']}")).status == 403
    assert (await room.teacher.delete(f"{path}/{asset['id']}")).status == 204
    assert (await room.server.client().get(asset["url"])).status == 404
    assert (await room.alice.get(path)).json["assets"] == []


async def test_asset_uploads_are_validated_like_files(room_factory: RoomFactory) -> None:
    room = await room_factory(asset_max_bytes=1000, assets_max_per_problem=2)
    path = f"/api/problems/{room.problem_id}/assets"
    before = state(room.server)
    for name, data, status, code in (
        ("big.csv", b"x" * 1001, 413, "file_too_large"),
        ("tool", b"\x7fELF" + b"\0" * 60, 415, "executable_refused"),
        ("../up.png", PNG, 400, "invalid_file_name"),
        ("a.zip", b"PK\x05\x06" + b"\0" * 18, 415, "archive_refused"),
    ):
        reply = await upload(room.teacher, name, data, path=path)
        assert reply.status == status and reply.error_code == code, reply
    assert state(room.server) == before
    await add_asset(room, "one.png", PNG)
    same = await upload(room.teacher, "one.png", PNG, path=path)
    assert same.status == 200, same  # identical: nothing new
    clash = await upload(room.teacher, "one.png", WAV, path=path)
    assert clash.status == 409 and clash.error_code == "duplicate_name", clash
    replaced = await upload(room.teacher, "one.png", WAV, path=path, replace="true")
    assert replaced.status == 201 and replaced.json["kind"] == "wav", replaced
    await add_asset(room, "two.png", PNG)
    third = await upload(room.teacher, "three.png", PNG, path=path)
    assert third.status == 409 and third.error_code == "too_many_assets", third


async def test_user_files_are_never_served_as_assets(room: Room) -> None:
    mine = await upload_ok(room.alice, "diary.txt", b"my secret diary\n")
    digest = hashlib.sha256(b"my secret diary\n").hexdigest()
    for path in (f"/assets/{digest}/diary.txt", f"/assets/{digest}/x", f"/assets/{'0' * 64}/diary.txt"):
        reply = await room.bob.get(path)
        assert reply.status == 404 and b"diary" not in reply.body.replace(b"diary.txt", b""), reply
    assert mine["id"]


async def test_data_files_are_in_every_submissions_working_directory(room: Room) -> None:
    await add_asset(room, "squares.csv", DATA)
    await add_asset(room, "statement-picture.png", PNG, in_workdir="false")
    own = await upload_ok(room.alice, "mine.txt", b"my own input\n")
    submitted = await room.alice.post(
        f"/api/problems/{room.problem_id}/submissions",
        json={"language": "python", "code": "print(open('squares.csv').read())", "files": [own["id"]]},
    )
    assert submitted.status == 202, submitted
    result = await room.alice.get(f"/api/submissions/{submitted.json['id']}?wait=10")
    assert result.json["status"] == "done", result
    given = {f.name: f.data for f in room.sandbox.requests[-1].files}
    assert given == {"squares.csv": DATA, "mine.txt": b"my own input\n"}
    # A user file may not shadow a data file the problem gives everyone.
    clash = await upload_ok(room.bob, "squares.csv", b"fake data\n")
    refused = await room.bob.post(
        f"/api/problems/{room.problem_id}/submissions",
        json={"language": "python", "code": "print(2)", "files": [clash["id"]]},
    )
    assert refused.status == 409 and refused.error_code == "file_name_conflict", refused
    # Runs are not submissions: no problem, no data files.
    run = await room.alice.post("/api/runs", json={"language": "python", "code": "1", "files": [own["id"]]})
    await room.alice.get(f"/api/runs/{run.json['id']}?wait=10")
    assert [f.name for f in room.sandbox.requests[-1].files] == ["mine.txt"]


async def test_rejudge_uses_the_submissions_files_and_current_data(room: Room) -> None:
    own = await upload_ok(room.alice, "mine.txt", b"v1\n")
    submitted = await room.alice.post(
        f"/api/problems/{room.problem_id}/submissions",
        json={"language": "python", "code": "print(3)", "files": [own["id"]]},
    )
    await room.alice.get(f"/api/submissions/{submitted.json['id']}?wait=10")
    await add_asset(room, "added-later.csv", DATA)
    # The student replaces the file afterwards: the rejudge still uses what was submitted.
    await upload(room.alice, "mine.txt", b"v2\n", replace="true")
    rejudge = await room.teacher.post(f"/api/problems/{room.problem_id}/rejudge", json={})
    assert rejudge.status == 202, rejudge
    rejudge_id = rejudge.json["rejudges"][0]
    await room.teacher.get(f"/api/submissions/{rejudge_id}?wait=10")
    given = {f.name: f.data for f in room.sandbox.requests[-1].files}
    assert given == {"added-later.csv": DATA, "mine.txt": b"v1\n"}


async def test_submission_dedup_tells_file_sets_apart(room: Room) -> None:
    a = await upload_ok(room.alice, "a.txt", b"a")
    b = await upload_ok(room.alice, "b.txt", b"b")
    path = f"/api/problems/{room.problem_id}/submissions"
    body = {"language": "python", "code": "print(open('a.txt').read())"}
    first = await room.alice.post(path, json={**body, "files": [a["id"], b["id"]]})
    same = await room.alice.post(path, json={**body, "files": [b["id"], a["id"]]})  # order does not matter
    other = await room.alice.post(path, json={**body, "files": [a["id"]]})
    none = await room.alice.post(path, json=body)
    assert first.status == same.status == other.status == none.status == 202
    assert same.json["id"] == first.json["id"] and same.json["deduplicated"] is True
    assert len({first.json["id"], other.json["id"], none.json["id"]}) == 3


async def test_range_positions_of_any_length(room: Room) -> None:
    """Security review finding 12: a 5000-digit position was a 500 (int() refuses that many digits).

    Any length is valid syntax (RFC 9110 §14.1.1): a last position or a suffix past the end means
    "to the end" (206), a first position past the end is unsatisfiable (416, the error shape).
    """
    asset = await add_asset(room, "squares.csv", DATA)
    anon = room.server.client()
    huge = "9" * 5000
    before = state(room.server)
    for header, status, body in (
        (f"bytes=0-{huge}", 206, DATA),
        (f"bytes=-{huge}", 206, DATA),
        (f"bytes={'0' * 5000}5-9", 206, DATA[5:10]),
        (f"bytes=10-{'0' * 4999}19", 206, DATA[10:20]),
        (f"bytes={huge}-", 416, None),
        (f"bytes={huge[:4000]}-{huge[:4000]}", 416, None),  # (two of 5000 would pass the header size limit)
        (f"bytes={huge[:4000]}-{huge[:3999]}", 200, DATA),  # last before first: invalid, ignored
        (f"bytes=5-{'0' * 5000}", 200, DATA),  # last (0) before first (5): invalid, ignored
    ):
        reply = await anon.get(asset["url"], headers={"Range": header})
        where = f"Range: {header[:30]}…"
        assert reply.status == status, (where, reply)
        if status == 416:
            assert reply.error_code == "range_not_satisfiable" and isinstance(reply.error["message"], str), reply
            assert reply.headers["Content-Range"] == f"bytes */{len(DATA)}", (where, reply)
        else:
            assert reply.body == body, (where, reply)
        if status == 206:
            first = len(DATA) - len(body) if header.startswith("bytes=-") else DATA.index(body)
            assert reply.headers["Content-Range"] == f"bytes {first}-{first + len(body) - 1}/{len(DATA)}", where
    assert state(room.server) == before
    part = await anon.get(asset["url"], headers={"Range": "bytes=0-9"})  # the server still works
    assert part.status == 206 and part.body == DATA[:10], part
