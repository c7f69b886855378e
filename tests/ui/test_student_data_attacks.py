"""Attacks on per-student export and erasure (issue 10), as a student and as a curious teacher.

Each test is one attempt; those that are refused stay as regression tests. No Docker: the
"sandbox" echoes each test's stdin, so a program's output on a hidden test IS the hidden input,
and it "draws" a picture carrying that input too.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runner.executor import ExecRequest, ExecResult, Image, TestOutcome
from tests.conftest import ApiClient, LiveServer
from tests.ui.conftest import FakeSandbox, echo, make_room
from tests.ui.test_classroom_api import submit
from tests.ui.test_student_data_api import PNG_SIGNATURE


class StdinEcho:
    """Every test prints its stdin (long: its full output goes to the blob store) and draws it."""

    async def execute(self, request: ExecRequest) -> ExecResult:
        return ExecResult(
            None,
            [
                TestOutcome(
                    t.name,
                    "ok",
                    0,
                    t.stdin * 40,
                    t.stdin,
                    3,
                    images=[Image("image/png", "frame", 1, 1, PNG_SIGNATURE + t.stdin)],
                )
                for t in request.tests
            ],
        )

    async def close(self) -> None:
        return None


def _unzip(body: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(body)) as bundle:
        return {name: bundle.read(name) for name in bundle.namelist()}


async def _erase(client: ApiClient, user_id: int, confirm: str) -> Any:
    return await client.post(f"/api/users/{user_id}/erase", json={"confirm_username": confirm})


@pytest.mark.parametrize("feedback", ["summary", "per_test"])
async def test_export_never_holds_hidden_or_unrevealed_test_data(
    server_factory: Callable[..., Any], feedback: str
) -> None:
    """Hidden and reveal-later tests: neither their input, nor the expected output, nor the
    program's output or pictures on them (which here are the input) reach the zip."""
    server = await server_factory(app_options={"sandbox": FakeSandbox(StdinEcho)}, result_max_bytes=200)
    teacher = await server.make_user("teacher")
    student = await server.make_user("student")
    created = await teacher.post("/api/classes", json={"name": "8C"})
    assert (await student.post("/api/classes/join", json={"code": created.json["join_code"]})).status == 200
    tag = os.urandom(5).hex()
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    problem = await teacher.post(
        "/api/problems",
        json={
            "title": "Echo",
            "statement": "Echo.",
            "language": "python",
            "classes": [created.json["id"]],
            "hidden_feedback": feedback,
            "test_cases": [
                {"name": "example", "stdin": f"open-{tag}", "expected_stdout": "x", "visible": True},
                {"name": "secret", "stdin": f"hiddenin-{tag}", "expected_stdout": f"hiddenout-{tag}"},
                {
                    "name": "later",
                    "stdin": f"laterin-{tag}",
                    "expected_stdout": f"laterout-{tag}",
                    "visibility": "reveal_later",
                    "reveal_at": later,
                },
            ],
        },
    )
    assert problem.status == 201, problem
    await submit(student, problem.json["id"], "print(input())")
    url = f"/api/users/{student.user_id}/export"
    for who in (student, teacher):  # a teacher's export is the student's view too
        reply = await who.get(url)
        assert reply.status == 200, reply
        everything = b"\n".join(_unzip(reply.body).values())
        assert f"open-{tag}".encode() in everything  # the visible test's output is there
        for secret in ("hiddenin", "hiddenout", "laterin", "laterout"):
            assert f"{secret}-{tag}".encode() not in everything, secret


async def _pair(server: LiveServer) -> tuple[ApiClient, ApiClient, ApiClient]:
    """A teacher, a student who joined their class by code, and a teacher of another class."""
    room = await make_room(server)
    return room.teacher, room.student, await server.make_user("teacher")


async def test_students_cannot_erase_anyone_not_even_themselves(server_factory: Callable[..., Any]) -> None:
    server = await server_factory(app_options=echo())
    room = await make_room(server)
    for target in (room.student, room.outsider):
        reply = await _erase(room.student, target.user_id, target.username)
        assert reply.status == 403 and reply.error_code == "forbidden", reply
    # Nor by a script's bearer token (no CSRF check applies there, the role check still does).
    script = room.student.with_token(await room.student.create_token())
    reply = await _erase(script, room.student.user_id, room.student.username)
    assert reply.status == 403, reply
    assert (await room.student.get("/api/me")).status == 200


async def test_teachers_reach_only_students_who_are_theirs(server_factory: Callable[..., Any]) -> None:
    """Another class's teacher, a teacher who added the student by username, and any teacher
    against another teacher or an admin: all 404, nothing erased."""
    server = await server_factory(app_options=echo())
    room = await make_room(server)
    stranger = await server.make_user("teacher")
    club = await stranger.post("/api/classes", json={"name": "Chess"})
    added = await stranger.post(f"/api/classes/{club.json['id']}/members", json={"usernames": [room.student.username]})
    assert added.status == 200, added
    admin = await server.make_user("admin")
    for target in (room.student, room.outsider):
        assert (await stranger.get(f"/api/users/{target.user_id}/export")).status == 404
        reply = await _erase(stranger, target.user_id, target.username)
        assert reply.status == 404 and reply.error_code == "not_found", reply
    for target in (stranger, admin):
        reply = await _erase(room.teacher, target.user_id, target.username)
        assert reply.status == 404, reply
        assert (await room.teacher.get(f"/api/users/{target.user_id}/export")).status == 404
    # Even an admin cannot "erase" staff through this route (it is for students' data).
    assert (await _erase(admin, room.teacher.user_id, room.teacher.username)).status == 404
    assert (await room.student.get("/api/me")).status == 200
    assert (await stranger.get("/api/me")).status == 200


async def test_erasure_cannot_be_triggered_cross_site(server_factory: Callable[..., Any]) -> None:
    server = await server_factory(app_options=echo())
    room = await make_room(server)
    url = f"/api/users/{room.student.user_id}/erase"
    body = {"confirm_username": room.student.username}
    for headers in ({}, {"Origin": "http://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}):
        # The teacher's cookie, from a page elsewhere (or a form that sends no Origin at all).
        forged = server.client(origin=None)
        forged.use_session(room.teacher.session_cookie or "")
        reply = await forged.post(url, json=body, headers=headers)
        assert reply.status == 403 and reply.error_code == "csrf_failed", (headers, reply)
    assert (await room.student.get("/api/me")).status == 200


async def test_confirmation_must_be_their_username(server_factory: Callable[..., Any]) -> None:
    """Case and surrounding spaces are forgiven; another student's name, a prefix, an empty string
    and Unicode characters that case-fold into the ASCII name (Kelvin sign, long s) are not."""
    server = await server_factory(app_options=echo())
    room = await make_room(server)
    name = f"ks{os.urandom(3).hex()}"
    victim = await server.make_user("student", username=name)
    assert (await victim.post("/api/classes/join", json={"code": room.join_code})).status == 200
    for wrong in (
        room.student.username,
        name[:-1],
        "",
        " ",
        "\u212a" + name[1:],  # KELVIN SIGN: casefolds to "k"
        "k\u017f" + name[2:],  # LATIN SMALL LETTER LONG S: casefolds to "s"
        name + "\u200b",  # a zero-width space (not whitespace to str.strip)
    ):
        reply = await _erase(room.teacher, victim.user_id, wrong)
        assert reply.status == 400 and reply.error_code == "confirmation_mismatch", (wrong, reply)
        assert (await victim.get("/api/me")).status == 200
    assert (await _erase(room.teacher, victim.user_id, f"  {name.upper()}\t")).status == 200


async def test_erased_account_is_gone_for_good(server_factory: Callable[..., Any]) -> None:
    """Sessions and tokens die; the pseudonym cannot log in, be registered, or be re-opened by a
    password reset; the old username can be registered by someone new without reaching the old data."""
    server = await server_factory(app_options=echo())
    room = await make_room(server)
    victim = await server.make_user("student")
    assert (await victim.post("/api/classes/join", json={"code": room.join_code})).status == 200
    await submit(victim, room.problem_id, "HELLO\n")
    script = victim.with_token(await victim.create_token())
    erased = await _erase(room.teacher, victim.user_id, victim.username)
    assert erased.status == 200, erased
    pseudonym = erased.json["username"]
    assert (await victim.get("/api/me")).status == 401
    assert (await script.get("/api/me")).status == 401
    assert (await server.client().login(pseudonym, "")).status in (400, 401)
    assert (await server.client().login(victim.username, victim.password)).status == 401
    # A password reset (by the teacher who may still manage the row) does not re-open it.
    reset = await room.teacher.post(
        f"/api/users/{victim.user_id}/reset-password", json={"password": "another pass 12345"}
    )
    if reset.status == 200:
        assert (await server.client().login(pseudonym, "another pass 12345")).status == 401
    versions = await server.legal_versions()
    for name in (pseudonym, pseudonym.replace(" ", ""), pseudonym.upper()):
        reply = await server.client().post(
            "/api/auth/register",
            json={"username": name, "password": "a long enough password 1", "birthdate": "2000-01-01", **versions},
        )
        assert reply.status == 400 and reply.error_code == "invalid_username", (name, reply)
    # The freed username is a new account: it sees none of the old one's work.
    newcomer = await server.make_user("student", username=victim.username)
    assert newcomer.user_id != victim.user_id
    assert (await newcomer.get(f"/api/users/{victim.user_id}/export")).status == 404
    mine = _unzip((await newcomer.get(f"/api/users/{newcomer.user_id}/export")).body)
    assert b"HELLO" not in b"\n".join(mine.values())


async def test_no_username_look_alike_with_a_trailing_newline(server_factory: Callable[..., Any]) -> None:
    """`$` in a regex also matches before a final newline: "alice\\n" would be a second "alice" on
    every roster (and a name a teacher types to confirm an erasure)."""
    server = await server_factory(app_options=echo())
    victim = await server.make_user("student")
    versions = await server.legal_versions()
    reply = await server.client().post(
        "/api/auth/register",
        json={"username": victim.username + "\n", "password": "a long enough password 1", "birthdate": "2000-01-01"}
        | versions,
    )
    assert reply.status == 400 and reply.error_code == "invalid_username", reply
