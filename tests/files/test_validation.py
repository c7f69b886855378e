"""Uploads are judged by content and checked against every limit; each refusal has its own error
code and a clear message, and writes nothing (no row, no blob, no temporary file)."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from typing import Any

import aiohttp

from appliance import file_sniffing
from tests.conftest import ApiClient, LiveServer
from tests.files.conftest import (
    BINARY,
    BMP,
    ELF,
    GIF,
    JPEG,
    MP3,
    OGG,
    PE,
    PNG,
    WAV,
    RoomFactory,
    form,
    make_zip,
    state,
    upload,
    upload_ok,
)


async def refused(
    server: LiveServer,
    client: ApiClient,
    status: int,
    code: str,
    filename: str | None,
    data: bytes,
    *,
    fragment: str = "",
    **fields: str,
) -> dict[str, Any]:
    """Upload, expect the refusal, and prove nothing changed anywhere."""
    before = state(server)
    reply = await upload(client, filename, data, **fields)
    assert reply.status == status and reply.error_code == code, reply
    message = reply.error["message"] if reply.error else ""
    assert len(message) > 10 and fragment in message, reply
    assert state(server) == before, f"refused upload ({code}) wrote something"
    return dict(reply.json["error"])


ACCEPTED = (
    # (name, bytes, kind, media type)
    ("sprite.png", PNG, "png", "image/png"),
    ("photo.jpg", JPEG, "jpeg", "image/jpeg"),
    ("anim.gif", GIF, "gif", "image/gif"),
    ("tiles.bmp", BMP, "bmp", "image/bmp"),
    ("jump.wav", WAV, "wav", "audio/wav"),
    ("music.ogg", OGG, "ogg", "audio/ogg"),
    ("theme.mp3", MP3, "mp3", "audio/mpeg"),
    ("notes.txt", "Grüße, 世界\n".encode(), "text", "text/plain"),
    ("scores.csv", b"name,score\nada,10\n", "csv", "text/csv"),
    ("config.json", b'{"speed": 3}', "json", "application/json"),
    ("helper.py", b"def f():\n    return 1\n", "python", "text/x-python"),
    ("util.c", b"int f(void) { return 1; }\n", "source", "text/plain"),
    ("empty.txt", b"", "text", "text/plain"),
    # The name never decides the type: content does.
    ("not-an-image.png", b"just text\n", "text", "text/plain"),
    ("data.txt", PNG, "png", "image/png"),
    ("broken.json", b"{not json", "text", "text/plain"),
)


async def test_accepted_types_are_judged_by_content(room_factory: RoomFactory) -> None:
    room = await room_factory()
    for name, data, kind, media_type in ACCEPTED:
        # The declared part type is deliberately wrong: it must not matter.
        body = aiohttp.FormData(quote_fields=False)
        body.add_field("file", data, filename=name, content_type="application/x-msdownload")
        reply = await room.alice.post("/api/files", data=body)
        assert reply.status == 201, reply
        assert (reply.json["name"], reply.json["kind"], reply.json["media_type"]) == (name, kind, media_type)
        assert reply.json["size"] == len(data) and reply.json["deduplicated"] is False
        download = await room.alice.get(f"/api/files/{reply.json['id']}/content")
        assert download.body == data and download.headers["Content-Type"].startswith(media_type)
        assert download.headers["Content-Disposition"].startswith("attachment;")


REFUSED_CONTENT = (
    # (name, bytes, status, code)
    ("tool", ELF, 415, "executable_refused"),
    ("game.exe", PE, 415, "executable_refused"),
    ("Main.class", b"\xca\xfe\xba\xbe\x00\x00\x00\x3d" + b"\x00" * 16, 400, "reserved_file_name"),
    ("Helper.class", b"\xca\xfe\xba\xbe\x00\x00\x00\x3d" + b"\x00" * 16, 415, "executable_refused"),
    ("blob.bin", BINARY, 415, "unknown_file_type"),
    ("utf16.txt", "hello".encode("utf-16"), 415, "unknown_file_type"),
    ("bell.txt", b"ding\x07dong", 415, "unknown_file_type"),
    ("data.gz", gzip.compress(b"hello"), 415, "archive_refused"),
    ("bundle.zip", make_zip({"a.txt": b"a"}), 415, "archive_refused"),
)


async def test_refused_content(room_factory: RoomFactory) -> None:
    room = await room_factory()
    for name, data, status, code in REFUSED_CONTENT:
        await refused(room.server, room.alice, status, code, name, data)


async def test_tar_archives_are_refused(room_factory: RoomFactory) -> None:
    room = await room_factory()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("a.txt")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"a"))
    await refused(room.server, room.alice, 415, "archive_refused", "a.tar", buffer.getvalue(), fragment="tar")


async def test_type_allow_list_is_a_setting(room_factory: RoomFactory) -> None:
    room = await room_factory(file_types_allowed="text,csv")
    error = await refused(room.server, room.alice, 415, "file_type_not_allowed", "s.png", PNG, fragment="png")
    assert "text, csv" in error["message"]
    await refused(room.server, room.alice, 415, "file_type_not_allowed", "a.py", b"print(1)\n")
    await upload_ok(room.alice, "a.txt", b"fine")


UNSAFE_NAMES = (
    # (name, code, a fragment of the message)
    ("../etc/passwd", "invalid_file_name", "/"),
    ("dir/file.txt", "invalid_file_name", "/"),
    ("..\\..\\boot.ini", "invalid_file_name", "\\"),
    ("..", "invalid_file_name", "dot"),
    (".bashrc", "invalid_file_name", "dot"),
    ("bell\x07.txt", "invalid_file_name", "U+0007"),
    ("new\nline.txt", "invalid_file_name", "U+000A"),
    ("photo\u202egnp.exe", "invalid_file_name", "U+202E"),
    ("zero\u200bwidth.txt", "invalid_file_name", "U+200B"),
    ("x" * 101 + ".txt", "invalid_file_name", "100 characters"),
    ("   ", "invalid_file_name", "empty"),
    ("main.py", "reserved_file_name", "rename"),
    ("Main.java", "reserved_file_name", "rename"),
)


async def test_unsafe_names_are_refused(room_factory: RoomFactory) -> None:
    room = await room_factory()
    for name, code, fragment in UNSAFE_NAMES:
        # The name field overrides the part's file name, and is checked the same way. (Control
        # characters cannot travel in a part's header at all: the client refuses to send them.)
        await refused(room.server, room.alice, 400, code, "fine.txt", b"content", fragment=fragment, name=name)
        if name.isprintable():
            await refused(room.server, room.alice, 400, code, name, b"content", fragment=fragment)


async def test_names_are_normalized_and_unicode_is_welcome(room_factory: RoomFactory) -> None:
    room = await room_factory()
    created = await upload_ok(room.alice, "  Cafe\u0301 données.txt  ", b"x")
    assert created["name"] == "Café données.txt"  # NFC, surrounding spaces trimmed
    renamed = await upload_ok(room.alice, "upload.bin", b"y", name="given name.txt")
    assert renamed["name"] == "given name.txt"
    content = await room.alice.get(f"/api/files/{created['id']}/content")
    assert "filename*=UTF-8''Caf%C3%A9%20donn%C3%A9es.txt" in content.headers["Content-Disposition"]


async def test_size_limit_per_file(room_factory: RoomFactory) -> None:
    room = await room_factory(file_max_bytes=1000)
    await upload_ok(room.alice, "fits.txt", b"x" * 1000)
    await refused(room.server, room.alice, 413, "file_too_large", "big.txt", b"x" * 1001, fragment="1000 bytes")
    # Far beyond the limit, refused from Content-Length before the body is read.
    await refused(room.server, room.alice, 413, "file_too_large", "huge.txt", b"x" * 200_000)


async def test_count_and_byte_quotas_per_user(room_factory: RoomFactory) -> None:
    room = await room_factory(files_max_per_user=2, files_max_bytes_per_user=100)
    await upload_ok(room.alice, "one.txt", b"1" * 40)
    await upload_ok(room.alice, "two.txt", b"2" * 40)
    await refused(room.server, room.alice, 409, "too_many_files", "three.txt", b"3", fragment="at most 2 files")
    # The quota is per user: Bob is not affected by Alice.
    await upload_ok(room.bob, "three.txt", b"3")
    listing = (await room.alice.get("/api/files")).json
    assert listing["quota"] == {"files": 2, "max_files": 2, "bytes": 80, "max_bytes": 100}
    one = next(f for f in listing["files"] if f["name"] == "one.txt")
    assert (await room.alice.delete(f"/api/files/{one['id']}")).status == 204
    await refused(room.server, room.alice, 413, "quota_exceeded", "big.txt", b"b" * 61, fragment="100 bytes")
    await upload_ok(room.alice, "fits.txt", b"f" * 60)


async def test_duplicate_names(room_factory: RoomFactory) -> None:
    room = await room_factory()
    first = await upload_ok(room.alice, "data.csv", b"a,b\n")
    # The same name and the same bytes: the existing file comes back, nothing new is stored.
    before = state(room.server)
    same = await upload(room.alice, "data.csv", b"a,b\n")
    assert same.status == 200 and same.json["id"] == first["id"] and same.json["deduplicated"] is True, same
    assert state(room.server)[1] == before[1]
    # The same name with other bytes: refused unless replacing.
    await refused(room.server, room.alice, 409, "duplicate_name", "data.csv", b"c,d\n", fragment="replace=true")
    replaced = await upload(room.alice, "data.csv", b"c,d\n", replace="true")
    assert replaced.status == 201 and replaced.json["id"] != first["id"], replaced
    gone = await room.alice.get(f"/api/files/{first['id']}")
    assert gone.status == 404
    names = [f["name"] for f in (await room.alice.get("/api/files")).json["files"]]
    assert names == ["data.csv"]
    # Other users have their own names.
    await upload_ok(room.bob, "data.csv", b"bob's")


async def test_malformed_requests(room_factory: RoomFactory) -> None:
    room = await room_factory()
    server, alice = room.server, room.alice
    before = state(server)
    not_multipart = await alice.post("/api/files", json={"file": "x"})
    assert not_multipart.status == 415 and not_multipart.error_code == "unsupported_media_type", not_multipart
    no_file = aiohttp.FormData(default_to_multipart=True)
    no_file.add_field("name", "x.txt")
    missing = await alice.post("/api/files", data=no_file)
    assert missing.status == 400 and missing.error_code == "missing_field", missing
    unknown = await alice.post("/api/files", data=form("a.txt", b"a", owner="1"))
    assert unknown.status == 400 and unknown.error_code == "unknown_field", unknown
    bad_flag = await alice.post("/api/files", data=form("a.txt", b"a", replace="maybe"))
    assert bad_flag.status == 400 and bad_flag.error_code == "invalid_value", bad_flag
    twice = aiohttp.FormData()
    twice.add_field("file", b"a", filename="a.txt")
    twice.add_field("file", b"b", filename="b.txt")
    two = await alice.post("/api/files", data=twice)
    assert two.status == 400 and two.error_code == "duplicate_field", two
    broken = await alice.post(
        "/api/files", data=b"--xx\r\nnot a part", headers={"Content-Type": "multipart/form-data; boundary=yy"}
    )
    assert broken.status == 400 and broken.error_code == "invalid_multipart", broken
    assert state(server) == before


def _raw_part(part_headers: bytes, boundary: bytes = b"raw-boundary-42") -> tuple[bytes, dict[str, str]]:
    """A multipart body with one `file` part, its headers exactly as given (no client escaping)."""
    body = b"--" + boundary + b"\r\n" + part_headers + b"\r\n\r\nhello\r\n--" + boundary + b"--\r\n"
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary.decode()}"}


BROKEN_PART_HEADERS = (
    # Security review finding 12: a NUL in the file name was a 500.
    b'Content-Disposition: form-data; name="file"; filename="a\x00.txt"',
    b'Content-Disposition: form-data; name="file"; filename="a\r.txt"',
    b'Content-Disposition: form-data; name="file"; filename="a.txt"\r\n' + b"X-Padding: x\r\n" * 200,
    b'Content-Disposition: form-data; name="file"; filename="' + b"a" * 10_000 + b'.txt"',
)


async def test_malformed_part_headers_are_400(room_factory: RoomFactory) -> None:
    """Headers of a part that aiohttp's parser refuses: 400 invalid_multipart, nothing stored."""
    room = await room_factory()
    before = state(room.server)
    for path, client in (("/api/files", room.alice), (f"/api/problems/{room.problem_id}/assets", room.teacher)):
        for part_headers in BROKEN_PART_HEADERS:
            body, headers = _raw_part(part_headers)
            reply = await client.post(path, data=body, headers=headers)
            where = (path, part_headers[:70])
            assert reply.status == 400 and reply.error_code == "invalid_multipart", (where, reply)
            assert isinstance(reply.error["message"], str) and len(reply.error["message"]) > 10, (where, reply)
    assert state(room.server) == before
    # The server still works: the same upload with a clean name is stored.
    body, headers = _raw_part(b'Content-Disposition: form-data; name="file"; filename="a.txt"')
    reply = await room.alice.post("/api/files", data=body, headers=headers)
    assert reply.status == 201 and reply.json["name"] == "a.txt", reply


async def test_zip_unpacks_into_files_within_limits(room_factory: RoomFactory) -> None:
    room = await room_factory()
    archive = make_zip(
        {
            "assets/": b"",
            "assets/player.png": PNG,
            "assets/jump.wav": WAV,
            "levels/level1.txt": b"#####\n",
            "__MACOSX/assets/._player.png": b"\x00\x05\x16\x07junk",
            "assets/.DS_Store": b"\x00\x00\x00\x01Bud1",
        }
    )
    reply = await upload(room.alice, "game.zip", archive, unpack="true")
    assert reply.status == 201, reply
    got = {f["name"]: f["kind"] for f in reply.json["files"]}
    assert got == {"player.png": "png", "jump.wav": "wav", "level1.txt": "text"}
    listed = {f["name"] for f in (await room.alice.get("/api/files")).json["files"]}
    assert listed == set(got)


ARCHIVE_REFUSALS = (
    # (members, status, code)
    ({f"f{i}.txt": b"x" for i in range(6)}, 413, "archive_too_many_members"),
    ({"a.txt": b"a" * 600, "b.txt": b"b" * 600}, 413, "archive_too_large"),
    ({"big.txt": b"y" * 1500}, 413, "file_too_large"),
    ({"ok.txt": b"fine", "../../escape.txt": b"evil"}, 400, "invalid_file_name"),
    ({"/etc/cron.d/job": b"evil"}, 400, "invalid_file_name"),
    ({"ok.txt": b"fine", "inner.zip": make_zip({"x.txt": b"x"})}, 415, "nested_archive"),
    ({"ok.txt": b"fine", "tool": ELF}, 415, "executable_refused"),
    ({"a/data.txt": b"1", "b/data.txt": b"2"}, 409, "duplicate_name"),
    ({"bad\x07name.txt": b"1"}, 400, "invalid_file_name"),
    ({}, 400, "invalid_archive"),
)


async def test_archive_limits(room_factory: RoomFactory) -> None:
    room = await room_factory(archive_max_members=5, archive_max_bytes=1000, file_max_bytes=1400)
    for members, status, code in ARCHIVE_REFUSALS:
        data = make_zip(members) if members else make_zip({"only/": b""})
        await refused(room.server, room.alice, status, code, "a.zip", data, unpack="true")


async def test_archive_ratio_limit(room_factory: RoomFactory) -> None:
    room = await room_factory(file_max_bytes=4_000_000, archive_max_bytes=4_000_000, archive_max_ratio=100)
    bomb = make_zip({"zeros.txt": b"0" * 3_000_000})
    assert len(bomb) < 30_000  # unpacks to 100+ times its packed size
    await refused(room.server, room.alice, 413, "archive_ratio", "bomb.zip", bomb, unpack="true")


async def test_damaged_archive_and_archives_switched_off(room_factory: RoomFactory) -> None:
    room = await room_factory(archive_unpack=False)
    await refused(room.server, room.alice, 415, "archive_refused", "a.zip", make_zip({"a.txt": b"a"}), unpack="true")
    room = await room_factory()
    good = make_zip({"a.txt": b"hello hello hello"}, method=zipfile.ZIP_STORED)
    damaged = good.replace(b"hello hello hello", b"HELLO hello hello")  # CRC no longer matches
    await refused(room.server, room.alice, 400, "invalid_archive", "a.zip", damaged, unpack="true")


async def test_job_file_limits(room_factory: RoomFactory) -> None:
    room = await room_factory(job_files_max=2, job_files_max_bytes=100)
    ids = [(await upload_ok(room.alice, f"f{i}.txt", b"x" * 40))["id"] for i in range(3)]
    before = state(room.server)

    async def run(file_ids: list[str]) -> Any:
        return await room.alice.post("/api/runs", json={"language": "python", "code": "1", "files": file_ids})

    too_many = await run(ids)
    assert too_many.status == 400 and too_many.error_code == "too_many", too_many  # the schema's bound
    twice = await run([ids[0], ids[0]])
    assert twice.status == 400 and twice.error_code == "duplicate_file", twice
    assert state(room.server) == before
    big = await upload_ok(room.alice, "big.txt", b"y" * 70)
    before = state(room.server)
    too_big = await run([ids[0], big["id"]])
    assert too_big.status == 413 and too_big.error_code == "job_files_too_large", too_big
    assert state(room.server) == before
    assert (await run([ids[0], ids[1]])).status == 202


def test_sniffing_never_trusts_weak_signatures_over_text() -> None:
    # Text that merely starts like a BMP, an MP3 or a Windows program is text.
    for data in (b"BM is a great car\n", b"MZ: a postcode\n", b"ID3 tags explained\n"):
        assert file_sniffing.sniff(data, "notes.txt") == "text"
