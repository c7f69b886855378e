"""Problems and their test cases: who sees what, editing, deleting, export and import."""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ApiClient, LiveServer
from tests.core.conftest import Classroom, Markers, problem_body

STUDENT_TEST_KEYS = {"id", "name", "stdin", "expected_stdout", "weight"}


async def test_owner_sees_everything(classroom: Classroom) -> None:
    m = classroom.markers
    reply = await classroom.teacher.get(f"/api/problems/{classroom.problem_id}")
    assert reply.status == 200, reply
    problem = reply.json
    assert problem["classes"] == [classroom.class_id]
    assert problem["hidden_test_count"] == 2  # what students cannot see now: a past reveal date shows a test
    tests = problem["test_cases"]
    assert [t["visibility"] for t in tests] == ["visible", "hidden", "reveal_later", "reveal_later"]
    assert [t["stdin"] for t in tests] == [m.visible_in, m.hidden_in, m.future_in, m.past_in]
    assert tests[2]["weight"] == 2 and tests[2]["reveal_at"].endswith("Z")
    every = await classroom.teacher.get(f"/api/problems/{classroom.problem_id}/test-cases/all")
    assert every.status == 200
    assert [t["expected_stdout"] for t in every.json["test_cases"]] == [
        m.visible_out,
        m.hidden_out,
        m.future_out,
        m.past_out,
    ]
    admin = await classroom.admin.get(f"/api/problems/{classroom.problem_id}/test-cases/all")
    assert admin.status == 200 and len(admin.json["test_cases"]) == 4


async def test_student_of_the_class_sees_visible_and_revealed_only(classroom: Classroom) -> None:
    m = classroom.markers
    pid = classroom.problem_id
    listed = await classroom.student.get("/api/problems")
    assert [p["id"] for p in listed.json["problems"]] == [pid]
    classroom.assert_no_secret(listed.body, "GET /api/problems")

    reply = await classroom.student.get(f"/api/problems/{pid}")
    assert reply.status == 200, reply
    classroom.assert_no_secret(reply.body, reply.path)
    tests = reply.json["test_cases"]
    assert [(t["stdin"], t["expected_stdout"]) for t in tests] == [
        (m.visible_in, m.visible_out),
        (m.past_in, m.past_out),
    ]
    assert all(set(t) == STUDENT_TEST_KEYS for t in tests)  # no visibility, no reveal dates
    assert reply.json["hidden_test_count"] == 2
    assert "classes" not in reply.json

    visible = await classroom.student.get(f"/api/problems/{pid}/test-cases")
    assert visible.status == 200
    classroom.assert_no_secret(visible.body, visible.path)
    assert visible.json["test_cases"] == tests

    for path in (f"/api/problems/{pid}/test-cases/all", f"/api/problems/{pid}/export"):
        refused = await classroom.student.get(path)
        assert refused.status == 404 and refused.error_code == "not_found", refused
        classroom.assert_no_secret(refused.body, path)


async def test_other_students_and_teachers_get_404(classroom: Classroom) -> None:
    pid = classroom.problem_id
    missing = await classroom.outsider.get("/api/problems/999999")
    assert missing.status == 404
    for client in (classroom.outsider, classroom.other_teacher):
        for path in (f"/api/problems/{pid}", f"/api/problems/{pid}/test-cases"):
            reply = await client.get(path)
            assert reply.status == 404 and reply.json == missing.json, reply
        assert (await client.get("/api/problems")).json["problems"] == []
    reply = await classroom.other_teacher.get(f"/api/problems/{pid}/test-cases/all")
    assert reply.status == 404 and reply.error_code == "not_found", reply
    before = classroom.server.db_rows()
    edit = await classroom.other_teacher.patch(f"/api/problems/{pid}", json={"title": "mine now"})
    assert edit.status == 404, edit
    gone = await classroom.other_teacher.delete(f"/api/problems/{pid}")
    assert gone.status == 404, gone
    assert classroom.server.db_rows() == before


async def test_students_cannot_write_problems(classroom: Classroom) -> None:
    pid = classroom.problem_id
    before = classroom.server.db_rows()
    body = problem_body(Markers.new(), [classroom.class_id])
    for method, path, json_body in (
        ("POST", "/api/problems", body),
        ("PATCH", f"/api/problems/{pid}", {"title": "hacked"}),
        ("DELETE", f"/api/problems/{pid}", None),
    ):
        kwargs = {} if json_body is None else {"json": json_body}
        reply = await classroom.student.request(method, path, **kwargs)
        assert reply.status == 403 and reply.error_code == "forbidden", reply
    assert classroom.server.db_rows() == before


async def test_patch_replaces_tests_and_fields(classroom: Classroom) -> None:
    pid = classroom.problem_id
    fresh = Markers.new()
    tests = [
        {"stdin": fresh.visible_in, "expected_stdout": fresh.visible_out, "visibility": "visible"},
        {"stdin": fresh.hidden_in, "expected_stdout": fresh.hidden_out},  # no flag: hidden by default
    ]
    reply = await classroom.teacher.patch(
        f"/api/problems/{pid}", json={"title": "  Renamed  ", "time_limit_ms": 3000, "test_cases": tests}
    )
    assert reply.status == 200, reply
    assert reply.json["title"] == "Renamed" and reply.json["time_limit_ms"] == 3000
    assert reply.json["statement"].startswith("Read")  # untouched fields stay
    got = reply.json["test_cases"]
    assert [(t["stdin"], t["visibility"], t["name"]) for t in got] == [
        (fresh.visible_in, "visible", "test 1"),
        (fresh.hidden_in, "hidden", "test 2"),
    ]
    rows = classroom.server.db_rows()["test_cases"]
    assert not any(classroom.markers.hidden_in in repr(row) for row in rows)  # old tests are gone
    student = await classroom.student.get(f"/api/problems/{pid}")
    assert [t["stdin"] for t in student.json["test_cases"]] == [fresh.visible_in]
    assert fresh.hidden_in not in student.text and fresh.hidden_out not in student.text

    moved = await classroom.teacher.patch(f"/api/problems/{pid}", json={"classes": [classroom.other_class_id]})
    assert moved.status == 200 and moved.json["classes"] == [classroom.other_class_id]
    assert (await classroom.student.get(f"/api/problems/{pid}")).status == 404
    assert (await classroom.outsider.get(f"/api/problems/{pid}")).status == 200


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"classes": [999999]}, "unknown_class"),
        ({"title": "   "}, "empty"),
        ({"language": "cobol"}, "invalid_value"),
        ({"time_limit_ms": 10}, "out_of_range"),
        ({"memory_limit_mb": 1_000_000}, "out_of_range"),
        ({"test_cases": [{"stdin": "1", "expected_stdout": "1", "visibility": "reveal_later"}]}, "missing_field"),
        (
            {"test_cases": [{"expected_stdout": "1", "visibility": "reveal_later", "reveal_at": "next tuesday"}]},
            "invalid_datetime",
        ),
        (
            {"test_cases": [{"expected_stdout": "1", "visibility": "hidden", "reveal_at": "2030-01-01T00:00:00Z"}]},
            "conflicting_fields",
        ),
        ({"test_cases": [{"expected_stdout": "1", "visibility": "hidden", "visible": True}]}, "conflicting_fields"),
        ({"test_cases": [{"stdin": "no expected output"}]}, "missing_field"),
        ({"test_cases": [{"expected_stdout": "1", "weight": -1}]}, "out_of_range"),
    ],
)
async def test_bad_problem_edits_change_nothing(classroom: Classroom, changes: dict, code: str) -> None:
    before = classroom.server.db_rows()
    reply = await classroom.teacher.patch(f"/api/problems/{classroom.problem_id}", json=changes)
    assert reply.status == 400, reply
    assert reply.error_code == code
    created = await classroom.teacher.post("/api/problems", json=problem_body(Markers.new(), [], **changes))
    assert created.status == 400 and created.error_code == code, created
    assert classroom.server.db_rows() == before


async def test_teacher_cannot_attach_another_teachers_class(classroom: Classroom) -> None:
    reply = await classroom.other_teacher.post("/api/problems", json=problem_body(Markers.new(), [classroom.class_id]))
    assert reply.status == 400 and reply.error_code == "unknown_class", reply


async def test_delete(classroom: Classroom) -> None:
    pid = classroom.problem_id
    reply = await classroom.teacher.delete(f"/api/problems/{pid}")
    assert reply.status == 204, reply
    assert (await classroom.teacher.get(f"/api/problems/{pid}")).status == 404
    assert (await classroom.student.get(f"/api/problems/{pid}")).status == 404
    rows = classroom.server.db_rows()
    assert rows["test_cases"] == [] and rows["problem_classes"] == []
    assert (await classroom.teacher.delete(f"/api/problems/{pid}")).status == 404


# --- export and import --------------------------------------------------------------------------

COMPARED = ("title", "statement", "language", "time_limit_ms", "memory_limit_mb", "comparison", "tolerance")
TEST_COMPARED = ("name", "stdin", "expected_stdout", "visibility", "reveal_at", "weight")


def _comparable(problem: dict) -> dict:
    return {
        **{k: problem[k] for k in COMPARED},
        "tests": [{k: t[k] for k in TEST_COMPARED} for t in problem["test_cases"]],
    }


async def _import(client: ApiClient, data: bytes, content_type: str = "application/zip"):
    return await client.post("/api/problems/import", data=data, headers={"Content-Type": content_type})


async def test_export_import_round_trip(classroom: Classroom) -> None:
    teacher = classroom.teacher
    pid = classroom.problem_id
    unicode_body = {"statement": "Ünïcödé ✓ — 日本語\n\n```\ncode\n```", "comparison": "numeric", "tolerance": 0.001}
    assert (await teacher.patch(f"/api/problems/{pid}", json=unicode_body)).status == 200
    original = (await teacher.get(f"/api/problems/{pid}")).json

    exported = await teacher.get(f"/api/problems/{pid}/export")
    assert exported.status == 200, exported
    assert exported.headers["Content-Type"] == "application/zip"
    assert f'filename="problem-{pid}.zip"' in exported.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(exported.body)) as archive:
        names = set(archive.namelist())
        meta = json.loads(archive.read("problem.json"))
    assert {"problem.json", "statement.md", "tests/01.in", "tests/04.out"} <= names
    assert meta["format"] == "labrunner-problem/1"

    imported = await _import(teacher, exported.body)
    assert imported.status == 201, imported
    copy = imported.json
    assert copy["id"] != pid and copy["owner_id"] == teacher.user_id
    assert copy["classes"] == []  # an import is assigned to classes afterwards
    assert _comparable(copy) == _comparable(original)
    # Exporting the copy gives the same archive contents.
    again = await teacher.get(f"/api/problems/{copy['id']}/export")
    with zipfile.ZipFile(io.BytesIO(exported.body)) as a, zipfile.ZipFile(io.BytesIO(again.body)) as b:
        assert {n: a.read(n) for n in a.namelist()} == {n: b.read(n) for n in b.namelist()}


def _zip(files: dict[str, bytes | str], meta: dict | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if meta is not None:
            archive.writestr("problem.json", json.dumps(meta))
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _meta(**changes: object) -> dict:
    meta = {
        "format": "labrunner-problem/1",
        "title": "Imported",
        "language": "python",
        "time_limit_ms": 1000,
        "memory_limit_mb": 128,
        "comparison": "exact",
        "tolerance": 0,
        "tests": [
            {"name": "t1", "visibility": "hidden", "weight": 1, "input": "tests/01.in", "output": "tests/01.out"}
        ],
    }
    meta.update(changes)
    return meta


GOOD_FILES = {"statement.md": "# S", "tests/01.in": "1 2\n", "tests/01.out": "3\n"}


def _lying_sizes(archive: bytes, member: str, declared: int) -> bytes:
    """Rewrite the central directory so `member` claims `declared` uncompressed bytes."""
    return _patch_central(archive, member, 24, "<I", declared)


def _patch_central(archive: bytes, member: str, offset: int, fmt: str, value: int) -> bytes:
    """Set one field of `member`'s central directory entry (offsets from the entry's signature)."""
    data = bytearray(archive)
    name = member.encode()
    position = 0
    while True:
        position = data.index(b"PK\x01\x02", position)
        name_length = struct.unpack_from("<H", data, position + 28)[0]
        if bytes(data[position + 46 : position + 46 + name_length]) == name:
            struct.pack_into(fmt, data, position + offset, value)
            return bytes(data)
        position += 4


def _corrupt_member(archive: bytes, member: str) -> bytes:
    """Flip bytes inside a member's compressed data (the CRC no longer matches)."""
    with zipfile.ZipFile(io.BytesIO(archive)) as parsed:
        info = parsed.getinfo(member)
    data = bytearray(archive)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for index in range(start, start + info.compress_size):
        data[index] ^= 0x55
    return bytes(data)


def _bomb() -> bytes:
    """A genuine zip bomb: 64 MiB of zeros compressed to about 64 KiB."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("problem.json", json.dumps(_meta()))
        archive.writestr("statement.md", "# S")
        archive.writestr("tests/01.in", b"\0" * (64 << 20))
        archive.writestr("tests/01.out", "3\n")
    return buffer.getvalue()


BAD_ARCHIVES = {
    "not a zip": (lambda: b"this is plainly not a zip archive", 400, "invalid_archive"),
    "empty body": (lambda: b"", 400, "invalid_archive"),
    "no problem.json": (lambda: _zip(GOOD_FILES), 400, "invalid_archive"),
    "problem.json not json": (lambda: _zip({**GOOD_FILES, "problem.json": "{nope"}), 400, "invalid_archive"),
    "problem.json a list": (lambda: _zip({**GOOD_FILES, "problem.json": "[]"}), 400, "invalid_archive"),
    "wrong format": (lambda: _zip(GOOD_FILES, _meta(format="labrunner-problem/99")), 400, "invalid_archive"),
    "no format": (
        lambda: _zip(GOOD_FILES, {k: v for k, v in _meta().items() if k != "format"}),
        400,
        "invalid_archive",
    ),
    "tests not a list": (lambda: _zip(GOOD_FILES, _meta(tests={"a": 1})), 400, "invalid_archive"),
    "zip slip ..": (
        lambda: _zip(
            {**GOOD_FILES, "../../etc/passwd": "root:x:0:0"},
            _meta(tests=[{"input": "../../etc/passwd", "output": "tests/01.out"}]),
        ),
        400,
        "invalid_archive",
    ),
    "zip slip absolute": (
        lambda: _zip(GOOD_FILES, _meta(tests=[{"input": "/etc/passwd", "output": "tests/01.out"}])),
        400,
        "invalid_archive",
    ),
    "missing member": (
        lambda: _zip(GOOD_FILES, _meta(tests=[{"input": "tests/09.in", "output": "tests/01.out"}])),
        400,
        "invalid_archive",
    ),
    "non-utf8 member": (lambda: _zip({**GOOD_FILES, "tests/01.in": b"\xff\xfe\x00"}, _meta()), 400, "invalid_encoding"),
    "bad field in problem.json": (lambda: _zip(GOOD_FILES, _meta(language="cobol")), 400, "invalid_value"),
    "zip bomb": (_bomb, 413, "archive_too_large"),
    "huge declared size": (
        lambda: _lying_sizes(_zip(GOOD_FILES, _meta()), "tests/01.in", 0xFFFFFFF0),
        413,
        "archive_too_large",
    ),
    "smaller declared size": (
        lambda: _lying_sizes(_zip({**GOOD_FILES, "tests/01.in": "x" * 5000}, _meta()), "tests/01.in", 10),
        400,
        "invalid_archive",
    ),
    "corrupt member": (lambda: _corrupt_member(_zip(GOOD_FILES, _meta()), "tests/01.out"), 400, "invalid_archive"),
    "encrypted member": (
        lambda: _patch_central(_zip(GOOD_FILES, _meta()), "tests/01.in", 8, "<H", 0x1),
        400,
        "invalid_archive",
    ),
    "unknown compression": (
        lambda: _patch_central(_zip(GOOD_FILES, _meta()), "tests/01.in", 10, "<H", 99),
        400,
        "invalid_archive",
    ),
    "too many members": (
        lambda: _zip({**GOOD_FILES, **{f"junk/{i}": "" for i in range(300)}}, _meta()),
        400,
        "invalid_archive",
    ),
}


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "sqlite3" not in p.name}


@pytest.mark.parametrize("case", list(BAD_ARCHIVES))
async def test_import_refuses_bad_archives_and_writes_nothing(server: LiveServer, make_user, case: str) -> None:
    make, status, code = BAD_ARCHIVES[case]
    teacher = await make_user("teacher")
    before, files_before = server.db_rows(), _files(server.settings.data_dir)
    reply = await _import(teacher, make())
    assert reply.status == status, reply
    assert reply.error_code == code, reply
    assert server.db_rows() == before
    assert _files(server.settings.data_dir) == files_before


async def test_import_checks_media_type_size_and_role(server_factory) -> None:
    server: LiveServer = await server_factory(max_import_bytes=50_000)
    teacher = await server.make_user("teacher")
    student = await server.make_user("student")
    good = _zip(GOOD_FILES, _meta())
    before = server.db_rows()
    reply = await _import(teacher, good, "text/plain")
    assert reply.status == 415 and reply.error_code == "unsupported_media_type", reply
    big = _zip({**GOOD_FILES, "padding.bin": os.urandom(60_000)}, _meta())
    assert len(big) > 50_000
    reply = await _import(teacher, big)
    assert reply.status == 413 and reply.error_code == "body_too_large", reply
    reply = await _import(student, good)
    assert reply.status == 403 and reply.error_code == "forbidden", reply
    assert server.db_rows() == before
    reply = await _import(teacher, good, "application/octet-stream")
    assert reply.status == 201, reply
    assert reply.json["test_cases"][0]["visibility"] == "hidden"


async def test_reveal_dates_are_normalized_to_utc(classroom: Classroom) -> None:
    tests = [
        {"expected_stdout": "a", "visibility": "reveal_later", "reveal_at": "2000-01-01T02:00:00+02:00"},
        {"expected_stdout": "b", "visibility": "reveal_later", "reveal_at": "2000-01-01T00:00:00"},  # naive: UTC
        {"expected_stdout": "c", "visibility": "reveal_later", "reveal_at": "2999-12-31T23:59:59Z"},
    ]
    reply = await classroom.teacher.patch(f"/api/problems/{classroom.problem_id}", json={"test_cases": tests})
    assert reply.status == 200, reply
    assert [t["reveal_at"] for t in reply.json["test_cases"]] == [
        "2000-01-01T00:00:00Z",
        "2000-01-01T00:00:00Z",
        "2999-12-31T23:59:59Z",
    ]
    student = await classroom.student.get(f"/api/problems/{classroom.problem_id}")
    assert [t["expected_stdout"] for t in student.json["test_cases"]] == ["a", "b"]
    assert student.json["hidden_test_count"] == 1


@pytest.mark.parametrize(
    ("reveal_at", "status"),
    [
        ("0999-01-01T00:00:00Z", 201),  # a year before 1000: stored zero-padded, sorted right
        ("0001-01-01T00:00:00+05:00", 400),  # no UTC form
        ("9999-12-31T23:59:59-05:00", 400),
    ],
)
async def test_reveal_dates_at_the_edges_of_the_calendar(make_user, reveal_at: str, status: int) -> None:
    teacher = await make_user("teacher")
    problem = {
        "title": "Edges",
        "statement": "s",
        "language": "python",
        "test_cases": [{"stdin": "", "expected_stdout": "x\n", "visibility": "reveal_later", "reveal_at": reveal_at}],
    }
    created = await teacher.post("/api/problems", json=problem)
    assert created.status == status, created
    if status == 201:
        shown = await teacher.get(f"/api/problems/{created.json['id']}/test-cases/all")
        assert shown.status == 200 and shown.json["test_cases"][0]["reveal_at"] == "0999-01-01T00:00:00Z", shown
    else:
        assert created.error_code == "invalid_datetime"
