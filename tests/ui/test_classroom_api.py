"""The API pieces the web UI added: drafts, roster import, password resets, gradebooks, progress
and "check my solution". No browser and no Docker: the sandbox is the EchoExecutor stand-in."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable
from typing import Any

from tests.conftest import ApiClient, LiveServer
from tests.ui.conftest import Room, echo, make_room, no_docker


async def wait_done(client: ApiClient, kind: str, job_id: int) -> dict[str, Any]:
    for _ in range(20):
        reply = await client.get(f"/api/{kind}/{job_id}", params={"wait": "5"})
        assert reply.status == 200, reply
        if reply.json["status"] in ("done", "failed"):
            return dict(reply.json)
    raise AssertionError(f"{kind} {job_id} did not finish")


async def submit(client: ApiClient, problem_id: int, code: str) -> dict[str, Any]:
    reply = await client.post(f"/api/problems/{problem_id}/submissions", json={"language": "python", "code": code})
    assert reply.status == 202, reply
    return await wait_done(client, "submissions", reply.json["id"])


# --- drafts -------------------------------------------------------------------------------------


async def test_problem_draft_revisions_and_conflicts(room: Room) -> None:
    url = f"/api/problems/{room.problem_id}/draft"
    empty = await room.student.get(url)
    assert empty.status == 200 and empty.json == {"draft": None}

    first = await room.student.put(url, json={"language": "python", "code": "print(1)", "stdin": "4 5"})
    assert first.status == 200, first
    assert first.json["draft"] | {"updated_at": None} == {
        "problem_id": room.problem_id,
        "language": "python",
        "code": "print(1)",
        "stdin": "4 5",
        "revision": 1,
        "updated_at": None,
    }
    second = await room.student.put(url, json={"language": "python", "code": "print(2)", "base_revision": 1})
    assert second.json["draft"]["revision"] == 2 and second.json["draft"]["stdin"] == ""

    # A tab still on revision 1 must not overwrite revision 2 silently.
    stale = await room.student.put(url, json={"language": "python", "code": "old tab", "base_revision": 1})
    assert stale.status == 409 and stale.error_code == "draft_conflict", stale
    assert (await room.student.get(url)).json["draft"]["code"] == "print(2)"
    forced = await room.student.put(url, json={"language": "python", "code": "old tab", "base_revision": None})
    assert forced.status == 200 and forced.json["draft"]["revision"] == 3

    # Drafts are per user: the teacher's reference solution is a separate draft.
    assert (await room.teacher.get(url)).json == {"draft": None}


async def test_drafts_follow_problem_access(room: Room) -> None:
    url = f"/api/problems/{room.problem_id}/draft"
    for reply in (
        await room.outsider.get(url),
        await room.outsider.put(url, json={"language": "python", "code": "x"}),
        await room.student.get("/api/problems/999999/draft"),
    ):
        assert reply.status == 404 and reply.error_code == "not_found", reply
    anonymous = await room.server.client().get(url)
    assert anonymous.status == 401


async def test_draft_validation(room: Room) -> None:
    settings = room.server.settings
    cases = [
        ({"language": "cobol", "code": "x"}, "unknown_language"),
        ({"language": "python", "code": "x" * (settings.max_code_chars + 1)}, "too_long"),
        ({"language": "python", "code": "x", "stdin": "y" * (settings.max_test_case_bytes + 1)}, "too_long"),
        ({"language": "python", "code": "x", "base_revision": 0}, "out_of_range"),
        ({"language": "python", "code": "x", "extra": 1}, "unknown_field"),
        ({"language": "python"}, "missing_field"),
    ]
    for body, code in cases:
        reply = await room.student.put("/api/drafts/scratch", json=body)
        assert reply.status == 400 and reply.error_code == code, (body, reply)
    ok = await room.student.put("/api/drafts/scratch", json={"language": "python", "code": ""})
    assert ok.status == 200 and ok.json["draft"]["code"] == ""


async def test_drafts_survive_a_restart_and_go_with_their_problem(
    server_factory: Callable[..., Any], tmp_path_factory: Any
) -> None:
    data_dir = tmp_path_factory.mktemp("restart")
    first = await server_factory(data_dir=data_dir, app_options=no_docker())
    room = await make_room(first)
    url = f"/api/problems/{room.problem_id}/draft"
    await room.student.put(url, json={"language": "python", "code": "kept = True"})
    await room.student.put("/api/drafts/scratch", json={"language": "c", "code": "int main(void) {}", "stdin": "1"})
    username, password = room.student.username, room.student.password
    await first.close()

    second = await server_factory(data_dir=data_dir, app_options=no_docker())
    client = second.client()
    assert (await client.login(username, password)).status == 200
    assert (await client.get(url)).json["draft"]["code"] == "kept = True"
    scratch = (await client.get("/api/drafts/scratch")).json["draft"]
    assert (scratch["language"], scratch["code"], scratch["stdin"]) == ("c", "int main(void) {}", "1")

    teacher = second.client()
    assert (await teacher.login(room.teacher.username, room.teacher.password)).status == 200
    assert (await teacher.delete(f"/api/problems/{room.problem_id}")).status == 204
    rows = second.db_rows()["drafts"]
    assert len(rows) == 1 and rows[0][2] is None  # only the scratchpad is left


# --- roster -------------------------------------------------------------------------------------


async def test_roster_import_creates_and_enrolls(room: Room) -> None:
    taken = await room.server.make_user("student")
    # What a spreadsheet in a semicolon locale saves: a byte-order mark and ';' between cells.
    data = (
        "\ufeffUsername;Password;Birthdate\r\n"
        "ana.k;;2013-02-03\r\n"
        f"ben-l;{'pw-for-ben-1'};\r\n"
        f"{taken.username};ignored-here;\r\n"
        f"{room.student.username};;\r\n"
        ";;\r\n"
    ).encode()
    reply = await room.teacher.post(
        f"/api/classes/{room.class_id}/roster/import", data=data, headers={"Content-Type": "text/csv"}
    )
    assert reply.status == 201, reply
    created = {c["username"]: c for c in reply.json["created"]}
    assert set(created) == {"ana.k", "ben-l"}
    assert created["ana.k"]["generated"] and not created["ben-l"]["generated"]
    assert created["ben-l"]["password"] == "pw-for-ben-1"
    assert reply.json["added"] == [taken.username]
    assert reply.json["already_members"] == [room.student.username]

    members = (await room.teacher.get(f"/api/classes/{room.class_id}")).json["members"]
    assert {m["username"] for m in members} == {"ana.k", "ben-l", taken.username, room.student.username}
    ana = room.server.client()
    assert (await ana.login("ana.k", created["ana.k"]["password"])).status == 200
    # The taken account keeps its own password: the file's value was for new accounts only.
    assert (await room.server.client().login(taken.username, "ignored-here")).status == 401


async def test_roster_import_is_all_or_nothing(room: Room) -> None:
    other_teacher = await room.server.make_user("teacher")
    before = len(room.server.db_rows()["users"])
    data = f"username\nfine-one\nx\nfine-one\n{other_teacher.username}\n".encode()
    reply = await room.teacher.post(
        f"/api/classes/{room.class_id}/roster/import", data=data, headers={"Content-Type": "text/csv"}
    )
    assert reply.status == 400 and reply.error_code == "invalid_rows", reply
    message = reply.error["message"]
    assert "row 3" in message and "row 4" in message and "listed twice" in message and "teacher" in message
    assert len(room.server.db_rows()["users"]) == before


async def test_roster_import_refusals(server_factory: Callable[..., Any]) -> None:
    server = await server_factory(app_options=no_docker(), max_roster_import_rows=2)
    room = await make_room(server)
    other = await server.make_user("teacher")
    url = f"/api/classes/{room.class_id}/roster/import"
    csv_type = {"Content-Type": "text/csv"}
    cases = [
        (room.teacher, b"username\na1a\nb2b\nc3c\n", csv_type, 400, "too_many_rows"),
        (room.teacher, b"name\nsomeone\n", csv_type, 400, "missing_column"),
        (room.teacher, "username\nzoë\n".encode("latin-1"), csv_type, 400, "invalid_encoding"),
        (room.teacher, b"", csv_type, 400, "empty_file"),
        (room.teacher, b"username\nok-name\n", {"Content-Type": "application/json"}, 415, "unsupported_media_type"),
        (other, b"username\nok-name\n", csv_type, 404, "not_found"),
        (room.student, b"username\nok-name\n", csv_type, 403, "forbidden"),
    ]
    for client, data, headers, status, code in cases:
        reply = await client.post(url, data=data, headers=headers)
        assert (reply.status, reply.error_code) == (status, code), (data, reply)


async def test_teacher_resets_a_students_password(room: Room) -> None:
    reply = await room.teacher.post(f"/api/users/{room.student.user_id}/reset-password", json={})
    assert reply.status == 200, reply
    new = reply.json["password"]
    assert reply.json["generated"] and reply.json["username"] == room.student.username and len(new) >= 8
    # Every session of the student ended: someone else may know the old password.
    assert (await room.student.get("/api/me")).status == 401
    assert (await room.server.client().login(room.student.username, room.student.password)).status == 401
    assert (await room.server.client().login(room.student.username, new)).status == 200

    chosen = await room.teacher.post(
        f"/api/users/{room.student.user_id}/reset-password", json={"password": "chosen-by-teacher"}
    )
    assert chosen.status == 200 and not chosen.json["generated"]
    weak = await room.teacher.post(f"/api/users/{room.student.user_id}/reset-password", json={"password": "short"})
    assert weak.status == 400 and weak.error_code == "weak_password"


async def test_password_reset_only_for_own_students(room: Room) -> None:
    other_teacher = await room.server.make_user("teacher")
    for target in (room.outsider.user_id, other_teacher.user_id, room.teacher.user_id, 999999):
        reply = await room.teacher.post(f"/api/users/{target}/reset-password", json={})
        assert reply.status == 404 and reply.error_code == "not_found", (target, reply)
    by_student = await room.student.post(f"/api/users/{room.outsider.user_id}/reset-password", json={})
    assert by_student.status == 403
    admin = await room.server.make_user("admin")
    assert (await admin.post(f"/api/users/{room.outsider.user_id}/reset-password", json={})).status == 200


# --- gradebook, progress ------------------------------------------------------------------------


async def test_gradebook_and_progress(server_factory: Callable[..., Any]) -> None:
    server: LiveServer = await server_factory(app_options=echo())
    room = await make_room(server, title='=HYPERLINK("http://x")')
    idle = await server.make_user("student")
    assert (await idle.post("/api/classes/join", json={"code": room.join_code})).status == 200

    half = await submit(room.student, room.problem_id, "HELLO\n")  # passes the visible test only
    assert half["verdict"] == "wrong_answer" and half["score"] == 50
    full = await submit(room.student, room.problem_id, room.hidden_out)  # passes the hidden one only
    assert full["score"] == 50
    zero = await submit(room.student, room.problem_id, "nothing")
    assert zero["score"] == 0

    book = await room.teacher.get(f"/api/classes/{room.class_id}/gradebook")
    assert book.status == 200, book
    by_name = {s["username"]: s for s in book.json["students"]}
    cell = by_name[room.student.username]["cells"][str(room.problem_id)]
    assert (cell["attempts"], cell["best_score"], cell["best_verdict"], cell["solved"]) == (
        3,
        50,
        "wrong_answer",
        False,
    )
    assert by_name[idle.username]["cells"][str(room.problem_id)]["attempts"] == 0

    long = await room.teacher.get(f"/api/classes/{room.class_id}/gradebook.csv")
    assert long.status == 200 and long.headers["Content-Type"].startswith("text/csv")
    assert long.body.startswith(b"\xef\xbb\xbf")  # utf-8-sig: Excel reads accents right
    rows = list(csv.reader(io.StringIO(long.body.decode("utf-8-sig"))))
    assert rows[0][:6] == ["class", "username", "problem_id", "problem", "attempts", "best_score"]
    assert len(rows) == 3  # header + one row per student × problem
    assert all(row[3] == '\'=HYPERLINK("http://x")' for row in rows[1:]), rows  # no formula runs
    wide = await room.teacher.get(f"/api/classes/{room.class_id}/gradebook.csv", params={"layout": "wide"})
    wide_rows = list(csv.reader(io.StringIO(wide.body.decode("utf-8-sig"))))
    assert wide_rows[0] == ["username", f'\'=HYPERLINK("http://x") (id {room.problem_id})', "total", "solved"]
    assert [room.student.username, "50", "50", "0"] in wide_rows

    bad = await room.teacher.get(f"/api/classes/{room.class_id}/gradebook.csv", params={"layout": "tall"})
    assert bad.status == 400 and bad.error_code == "invalid_layout"
    assert (await room.student.get(f"/api/classes/{room.class_id}/gradebook")).status == 404
    other = await server.make_user("teacher")
    assert (await other.get(f"/api/classes/{room.class_id}/gradebook.csv")).status == 404

    progress = (await room.student.get("/api/me/progress")).json["progress"]
    assert progress == [
        {
            "problem_id": room.problem_id,
            "attempts": 3,
            "best_score": 50,
            "best_verdict": "wrong_answer",
            "solved": False,
            "last_status": "done",
            "last_verdict": "wrong_answer",
            "last_submitted_at": progress[0]["last_submitted_at"],
            "late_attempts": 0,
            "best_late": False,
        }
    ]


# --- check my solution --------------------------------------------------------------------------


async def test_check_my_solution_runs_all_tests_every_time(room: Room) -> None:
    url = f"/api/problems/{room.problem_id}/check"
    body = {"language": "python", "code": room.hidden_out}
    first = await room.teacher.post(url, json=body)
    second = await room.teacher.post(url, json=body)
    assert first.status == second.status == 202, (first, second)
    # Never deduplicated: tests may have changed in between, so each check is a new run.
    assert first.json["id"] != second.json["id"] and not second.json["deduplicated"]
    result = await wait_done(room.teacher, "submissions", first.json["id"])
    assert [(t["name"], t["visibility"], t["verdict"]) for t in result["tests"]] == [
        ("example", "visible", "wrong_answer"),
        ("secret", "hidden", "accepted"),
    ]
    assert result["tests"][1]["stdin"] == room.hidden_in  # the teacher sees hidden tests in full

    assert (await room.student.post(url, json=body)).status == 403
    other = await room.server.make_user("teacher")
    assert (await other.post(url, json=body)).status == 404
    assert (await room.teacher.post(url, json={"language": "cobol", "code": "x"})).error_code == "unknown_language"


async def test_students_never_get_hidden_test_details(room: Room) -> None:
    result = await submit(room.student, room.problem_id, "HELLO\n")
    # By default hidden tests show only as a count (the teacher may choose a verdict each).
    assert [t["name"] for t in result["tests"]] == ["example"]
    assert result["hidden_tests"] == {"passed": 0, "total": 1}
    everything = [
        await room.student.get(f"/api/submissions/{result['id']}"),
        await room.student.get(f"/api/problems/{room.problem_id}"),
        await room.student.get(f"/api/problems/{room.problem_id}/draft"),
        await room.student.get("/api/me/progress"),
        await room.student.get(f"/problems/{room.problem_id}"),
    ]
    for reply in everything:
        assert reply.status == 200, reply
        assert room.hidden_in.encode() not in reply.body and room.hidden_out.encode() not in reply.body, reply


async def test_concurrent_draft_saves_keep_one_winner(room: Room) -> None:
    url = f"/api/problems/{room.problem_id}/draft"
    await room.student.put(url, json={"language": "python", "code": "v1"})
    replies = await asyncio.gather(
        *(room.student.put(url, json={"language": "python", "code": f"tab {i}", "base_revision": 1}) for i in range(4))
    )
    assert sorted(r.status for r in replies) == [200, 409, 409, 409]


async def test_adding_a_student_by_name_grants_no_password_reset(room: Room) -> None:
    # Any teacher can add any student by username; that must not hand them the student's account.
    intruder = await room.server.make_user("teacher")
    own = await intruder.post("/api/classes", json={"name": "Intruders"})
    added = await intruder.post(f"/api/classes/{own.json['id']}/members", json={"usernames": [room.student.username]})
    assert added.status == 200, added
    reply = await intruder.post(f"/api/users/{room.student.user_id}/reset-password", json={})
    assert reply.status == 404 and reply.error_code == "not_found", reply
    # The student's own teacher (joined with the code) still can, and old script tokens stop working.
    token = await room.student.create_token()
    assert (await room.teacher.post(f"/api/users/{room.student.user_id}/reset-password", json={})).status == 200
    assert (await room.student.with_token(token).get("/api/me")).status == 401
