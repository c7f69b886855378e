"""What teachers expect from an assignment (issue 15), through the API on the real SQLite file:
starter code, due dates per problem and class with their late policy, and teachers' comments on a
submission that only its student (and staff) read. The sandbox is the EchoExecutor stand-in."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from appliance.clock import iso, now
from tests.conftest import SYNC_CHANGE_LOG, ApiClient, LiveServer
from tests.ui.conftest import Room, echo, make_room
from tests.ui.test_classroom_api import submit, wait_done

# Rows that change on every request whatever the request does.
VOLATILE = ("sessions",)


def past(hours: float = 1) -> str:
    return iso(now() - timedelta(hours=hours))


def future(hours: float = 24) -> str:
    return iso(now() + timedelta(hours=hours))


async def set_due(room: Room, due_at: str | None, late_policy: str = "accept_late", *, client: ApiClient | None = None):
    body = {"due_dates": [{"class_id": room.class_id, "due_at": due_at, "late_policy": late_policy}]}
    return await (client or room.teacher).patch(f"/api/problems/{room.problem_id}", json=body)


async def submit_reply(client: ApiClient, problem_id: int, code: str = "HELLO\n") -> Any:
    return await client.post(f"/api/problems/{problem_id}/submissions", json={"language": "python", "code": code})


# --- starter code ---------------------------------------------------------------------------------


async def test_starter_code_is_set_read_and_kept_in_the_archive(room: Room) -> None:
    starter = "name = input()\n# print it in capitals\n"
    changed = await room.teacher.patch(f"/api/problems/{room.problem_id}", json={"starter_code": starter})
    assert changed.status == 200 and changed.json["starter_code"] == starter, changed
    # The student reads it with the problem (their editor starts from it).
    seen = await room.student.get(f"/api/problems/{room.problem_id}")
    assert seen.status == 200 and seen.json["starter_code"] == starter, seen

    exported = await room.teacher.get(f"/api/problems/{room.problem_id}/export")
    assert exported.status == 200
    with zipfile.ZipFile(io.BytesIO(exported.body)) as archive:
        assert '"starter_code": "name = input()' in archive.read("problem.json").decode()
    imported = await room.teacher.post(
        "/api/problems/import", data=exported.body, headers={"Content-Type": "application/zip"}
    )
    assert imported.status == 201 and imported.json["starter_code"] == starter, imported

    # A new problem without it starts empty; one given it at creation keeps it.
    created = await room.teacher.post(
        "/api/problems",
        json={
            "title": "Two",
            "statement": "",
            "language": "c",
            "starter_code": "int main(void) { return 0; }\n",
            "test_cases": [{"expected_stdout": ""}],
        },
    )
    assert created.status == 201 and created.json["starter_code"].startswith("int main"), created
    assert imported.json["id"] != created.json["id"]


async def test_starter_code_bad_input_changes_nothing(room: Room) -> None:
    url = f"/api/problems/{room.problem_id}"
    before = room.server.db_rows(exclude=VOLATILE)
    too_long = "x" * (room.server.settings.max_code_chars + 1)
    for body, code in (({"starter_code": too_long}, "too_long"), ({"starter_code": 5}, "invalid_type")):
        reply = await room.teacher.patch(url, json=body)
        assert reply.status == 400 and reply.error_code == code and reply.error["field"] == "starter_code", reply
    student = await room.student.patch(url, json={"starter_code": "print(42)"})
    assert student.status == 403, student
    assert room.server.db_rows(exclude=VOLATILE) == before


# --- due dates and late policies ------------------------------------------------------------------


async def test_teacher_sets_due_dates_per_class_and_students_see_theirs(server_factory: Callable[..., Any]) -> None:
    server: LiveServer = await server_factory(app_options=echo())
    room = await make_room(server)
    other_class = await room.teacher.post("/api/classes", json={"name": "8C"})
    assert other_class.status == 201
    other_id = other_class.json["id"]
    in_other = await server.make_user("student")
    assert (await in_other.post("/api/classes/join", json={"code": other_class.json["join_code"]})).status == 200
    due_here, due_there = past(2), future(48)
    reply = await room.teacher.patch(
        f"/api/problems/{room.problem_id}",
        json={
            "classes": [room.class_id, other_id],
            "due_dates": [
                {"class_id": room.class_id, "due_at": due_here, "late_policy": "close"},
                {"class_id": other_id, "due_at": due_there},
            ],
        },
    )
    assert reply.status == 200, reply
    assert reply.json["due_dates"] == [
        {"class_id": room.class_id, "due_at": due_here, "late_policy": "close"},
        {"class_id": other_id, "due_at": due_there, "late_policy": "accept_late"},
    ]

    mine = await room.student.get(f"/api/problems/{room.problem_id}")
    assert (mine.json["due_at"], mine.json["late_policy"], mine.json["past_due"]) == (due_here, "close", True)
    theirs = await in_other.get(f"/api/problems/{room.problem_id}")
    assert (theirs.json["due_at"], theirs.json["late_policy"], theirs.json["past_due"]) == (
        due_there,
        "accept_late",
        False,
    )
    listed = {p["id"]: p for p in (await room.student.get("/api/problems")).json["problems"]}
    assert listed[room.problem_id]["due_at"] == due_here and listed[room.problem_id]["past_due"] is True

    # A student in both classes gets the more lenient one: the later due date.
    both = await server.make_user("student")
    for code in (room.join_code, other_class.json["join_code"]):
        assert (await both.post("/api/classes/join", json={"code": code})).status == 200
    assert (await both.get(f"/api/problems/{room.problem_id}")).json["due_at"] == due_there

    # Changing which classes see the problem keeps the due date of a class that stays.
    kept = await room.teacher.patch(f"/api/problems/{room.problem_id}", json={"classes": [room.class_id]})
    assert kept.json["due_dates"] == [{"class_id": room.class_id, "due_at": due_here, "late_policy": "close"}]
    # Saving without due_dates leaves them; an empty list clears them.
    assert (await room.teacher.patch(f"/api/problems/{room.problem_id}", json={"title": "T"})).json["due_dates"][0][
        "due_at"
    ] == due_here
    cleared = await room.teacher.patch(f"/api/problems/{room.problem_id}", json={"due_dates": []})
    assert cleared.json["due_dates"] == [{"class_id": room.class_id, "due_at": None, "late_policy": "accept_late"}]
    assert (await room.student.get(f"/api/problems/{room.problem_id}")).json["due_at"] is None


async def test_close_refuses_students_after_the_due_date_and_changes_nothing(room: Room) -> None:
    assert (await set_due(room, past(), "close")).status == 200
    before = room.server.db_rows(exclude=VOLATILE)
    refused = await submit_reply(room.student, room.problem_id)
    assert refused.status == 403 and refused.error_code == "problem_closed", refused
    assert "due" in refused.error["message"]
    assert room.server.db_rows(exclude=VOLATILE) == before  # no job, nothing counted

    # The teacher (and an admin) are never refused, nor marked late.
    teacher = await submit_reply(room.teacher, room.problem_id)
    admin = await room.server.make_user("admin")
    by_admin = await submit_reply(admin, room.problem_id, "HELLO")
    assert teacher.status == 202 and by_admin.status == 202, (teacher, by_admin)
    assert (await wait_done(room.teacher, "submissions", teacher.json["id"]))["late"] is False

    # Before the due date the same student may submit, on time.
    assert (await set_due(room, future(), "close")).status == 200
    on_time = await submit(room.student, room.problem_id, "HELLO\n")
    assert on_time["late"] is False


async def test_accept_late_takes_the_submission_and_marks_it_everywhere(room: Room) -> None:
    early = await submit(room.student, room.problem_id, "HELLO\n")
    assert early["late"] is False
    assert (await set_due(room, past(), "accept_late")).status == 200
    late = await submit(room.student, room.problem_id, room.hidden_out + "\n")
    assert late["late"] is True and late["score"] == 50

    own = {s["id"]: s["late"] for s in (await room.student.get("/api/submissions")).json["submissions"]}
    assert own == {early["id"]: False, late["id"]: True}
    seen_by_teacher = await room.teacher.get("/api/submissions", params={"problem_id": str(room.problem_id)})
    assert {s["id"]: s["late"] for s in seen_by_teacher.json["submissions"]} == own
    assert (await room.teacher.get(f"/api/submissions/{late['id']}")).json["late"] is True

    book = await room.teacher.get(f"/api/classes/{room.class_id}/gradebook")
    cell = next(s for s in book.json["students"] if s["id"] == room.student.user_id)["cells"][str(room.problem_id)]
    assert (cell["attempts"], cell["late_attempts"], cell["best_late"]) == (2, 1, False)
    exported = await room.teacher.get(f"/api/classes/{room.class_id}/gradebook.csv")
    rows = list(csv.DictReader(io.StringIO(exported.body.decode("utf-8-sig"))))
    mine = next(row for row in rows if row["username"] == room.student.username)
    assert (mine["best_late"], mine["late_attempts"]) == ("no", "1")
    progress = (await room.student.get("/api/me/progress")).json["progress"]
    assert progress[0]["late_attempts"] == 1


async def test_a_grade_from_a_late_submission_is_marked_late(room: Room) -> None:
    assert (await set_due(room, past(), "accept_late")).status == 200
    await submit(room.student, room.problem_id, "HELLO\n")
    book = await room.teacher.get(f"/api/classes/{room.class_id}/gradebook")
    cell = next(s for s in book.json["students"] if s["id"] == room.student.user_id)["cells"][str(room.problem_id)]
    assert (cell["best_score"], cell["best_late"]) == (50, True)


async def test_invalid_due_dates_are_refused_and_change_nothing(room: Room) -> None:
    assert (await set_due(room, future(), "close")).status == 200
    stranger = await room.server.make_user("teacher")
    stranger_class = await stranger.post("/api/classes", json={"name": "X"})
    own_unlinked = await room.teacher.post("/api/classes", json={"name": "Not shown"})
    before = room.server.db_rows(exclude=VOLATILE)
    url = f"/api/problems/{room.problem_id}"

    def due(**fields: Any) -> dict[str, Any]:
        return {"due_dates": [{"class_id": room.class_id, "due_at": future(), **fields}]}

    cases = [
        (due(due_at="next friday"), "invalid_datetime", "due_dates[0].due_at"),
        (due(due_at="2026-13-40T25:00:00Z"), "invalid_datetime", "due_dates[0].due_at"),
        (due(late_policy="sometimes"), "invalid_value", "due_dates[0].late_policy"),
        (due(due_at=12), "invalid_type", "due_dates[0].due_at"),
        (due(extra=1), "unknown_field", "due_dates[0].extra"),
        ({"due_dates": [{"due_at": future()}]}, "missing_field", "due_dates[0].class_id"),
        ({"due_dates": {"class_id": room.class_id}}, "invalid_type", "due_dates"),
        (
            {"due_dates": [{"class_id": own_unlinked.json["id"], "due_at": future()}]},
            "class_not_assigned",
            "due_dates[0].class_id",
        ),
        (
            {"due_dates": [{"class_id": stranger_class.json["id"], "due_at": future()}]},
            "class_not_assigned",
            "due_dates[0].class_id",
        ),
        (
            {"due_dates": [{"class_id": room.class_id, "due_at": None}] * 2},
            "duplicate_class",
            "due_dates[1].class_id",
        ),
        # A due date for a class the same request unticks.
        ({"classes": [], **due()}, "class_not_assigned", "due_dates[0].class_id"),
    ]
    for body, code, field in cases:
        reply = await room.teacher.patch(url, json=body)
        assert reply.status == 400 and reply.error_code == code and reply.error.get("field") == field, (body, reply)
    # Students cannot set due dates; another teacher cannot even see the problem.
    assert (await set_due(room, None, client=room.student)).status == 403
    assert (await set_due(room, None, client=stranger)).status == 404
    assert room.server.db_rows(exclude=VOLATILE) == before


# --- teachers' comments ---------------------------------------------------------------------------


async def test_teacher_comments_and_only_the_owner_reads_them(room: Room) -> None:
    sub = await submit(room.student, room.problem_id, "HELLO\n")
    url = f"/api/submissions/{sub['id']}/comments"
    assert (await room.student.get(url)).json == {"comments": []}

    added = await room.teacher.post(url, json={"body": "  Good start: now check the hidden case.  "})
    assert added.status == 201, added
    comment = added.json
    assert (comment["body"], comment["author"], comment["submission_id"], comment["edited"]) == (
        "Good start: now check the hidden case.",
        room.teacher.username,
        sub["id"],
        False,
    )
    edited = await room.teacher.patch(f"{url}/{comment['id']}", json={"body": "Well done."})
    assert edited.status == 200 and edited.json["body"] == "Well done.", edited

    seen = await room.student.get(url)
    assert seen.status == 200 and [c["body"] for c in seen.json["comments"]] == ["Well done."]
    admin = await room.server.make_user("admin")
    assert (await admin.post(url, json={"body": "Seen by the admin."})).status == 201
    assert [c["body"] for c in (await room.student.get(url)).json["comments"]] == ["Well done.", "Seen by the admin."]

    # Another student, another teacher and a missing submission: all "not found".
    other_teacher = await room.server.make_user("teacher")
    for client, path in (
        (room.outsider, url),
        (other_teacher, url),
        (room.student, "/api/submissions/999999/comments"),
    ):
        assert (await client.get(path)).status == 404
        assert (await client.post(path, json={"body": "hi"})).status == 404
    assert (await room.outsider.patch(f"{url}/{comment['id']}", json={"body": "x"})).status == 404


async def test_comment_refusals_change_nothing(room: Room) -> None:
    settings = room.server.settings
    sub = await submit(room.student, room.problem_id, "HELLO\n")
    url = f"/api/submissions/{sub['id']}/comments"
    first = await room.teacher.post(url, json={"body": "first"})
    assert first.status == 201
    admin = await room.server.make_user("admin")
    by_admin = (await admin.post(url, json={"body": "admin's"})).json
    before = room.server.db_rows(exclude=VOLATILE)

    student = await room.student.post(url, json={"body": "I disagree"})
    assert student.status == 403 and student.error_code == "forbidden", student
    student_edit = await room.student.patch(f"{url}/{first.json['id']}", json={"body": "changed"})
    assert student_edit.status == 403, student_edit
    for body, code in (
        ({"body": "x" * (settings.max_comment_chars + 1)}, "too_long"),
        ({"body": "   \n "}, "empty"),
        ({"body": ""}, "empty"),
        ({}, "missing_field"),
        ({"body": "ok", "visible": True}, "unknown_field"),
    ):
        for reply in (
            await room.teacher.post(url, json=body),
            await room.teacher.patch(f"{url}/{first.json['id']}", json=body),
        ):
            assert reply.status == 400 and reply.error_code == code, (body, reply)
    not_mine = await room.teacher.patch(f"{url}/{by_admin['id']}", json={"body": "mine now"})
    assert not_mine.status == 403 and not_mine.error_code == "not_your_comment", not_mine
    missing = await room.teacher.patch(f"{url}/999999", json={"body": "x"})
    assert missing.status == 404
    # A comment id of another submission is not found through this one.
    other_sub = await submit(room.student, room.problem_id, "other")
    after_submit = room.server.db_rows(exclude=VOLATILE)
    crossed = await room.teacher.patch(
        f"/api/submissions/{other_sub['id']}/comments/{first.json['id']}", json={"body": "x"}
    )
    assert crossed.status == 404
    assert room.server.db_rows(exclude=VOLATILE) == after_submit
    # The second submission is new in jobs, its tests and sync's change log; everything else stayed.
    submitted = ("jobs", "job_tests", *SYNC_CHANGE_LOG)
    assert {k: v for k, v in after_submit.items() if k not in submitted} == {
        k: v for k, v in before.items() if k not in submitted
    }


async def test_comment_count_is_limited(server_factory: Callable[..., Any]) -> None:
    server: LiveServer = await server_factory(app_options=echo(), max_comments_per_submission=2)
    room = await make_room(server)
    sub = await submit(room.student, room.problem_id, "HELLO\n")
    url = f"/api/submissions/{sub['id']}/comments"
    for text in ("one", "two"):
        assert (await room.teacher.post(url, json={"body": text})).status == 201
    before = server.db_rows(exclude=VOLATILE)
    third = await room.teacher.post(url, json={"body": "three"})
    assert third.status == 409 and third.error_code == "too_many_comments", third
    assert server.db_rows(exclude=VOLATILE) == before
