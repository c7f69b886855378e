"""Classes: teachers own them, students join by code or are added; each sees only their own."""

from __future__ import annotations

from appliance.classes import JOIN_ALPHABET, JOIN_CODE_LENGTH
from tests.conftest import ApiClient, LiveServer


async def _new_class(teacher: ApiClient, name: str = "7B Informatics") -> dict:
    reply = await teacher.post("/api/classes", json={"name": name})
    assert reply.status == 201, reply
    return reply.json


async def test_teacher_creates_a_class_with_a_join_code(make_user) -> None:
    teacher = await make_user("teacher")
    created = await _new_class(teacher, "  Spaced Name  ")
    assert created["name"] == "Spaced Name"
    assert created["owner_id"] == teacher.user_id
    code = created["join_code"]
    assert len(code) == JOIN_CODE_LENGTH and set(code) <= set(JOIN_ALPHABET)
    listed = await teacher.get("/api/classes")
    assert [c["id"] for c in listed.json["classes"]] == [created["id"]]
    one = await teacher.get(f"/api/classes/{created['id']}")
    assert one.status == 200 and one.json["members"] == [] and one.json["join_code"] == code


async def test_students_join_by_code(server: LiveServer, make_user) -> None:
    teacher = await make_user("teacher")
    klass = await _new_class(teacher)
    student = await make_user("student")
    joined = await student.post("/api/classes/join", json={"code": f"  {klass['join_code'].lower()} "})
    assert joined.status == 200, joined
    assert joined.json["id"] == klass["id"]
    assert "join_code" not in joined.json  # students cannot pass the code on from the API
    again = await student.post("/api/classes/join", json={"code": klass["join_code"]})
    assert again.status == 200  # joining twice is harmless
    mine = await student.get("/api/classes")
    assert [c["id"] for c in mine.json["classes"]] == [klass["id"]]
    assert "join_code" not in mine.json["classes"][0]
    roster = (await teacher.get(f"/api/classes/{klass['id']}")).json["members"]
    assert [m["username"] for m in roster] == [student.username]


async def test_wrong_join_code(server: LiveServer, make_user) -> None:
    teacher = await make_user("teacher")
    await _new_class(teacher)
    student = await make_user("student")
    before = server.db_rows()
    for code in ("ZZZZZZZZ", "' OR '1'='1", "%", "_______"):
        reply = await student.post("/api/classes/join", json={"code": code})
        assert reply.status == 404, reply
        assert reply.error_code == "invalid_join_code"
    assert server.db_rows() == before
    assert (await student.get("/api/classes")).json["classes"] == []


async def test_only_students_join(make_user) -> None:
    teacher = await make_user("teacher")
    klass = await _new_class(teacher)
    other = await make_user("teacher")
    reply = await other.post("/api/classes/join", json={"code": klass["join_code"]})
    assert reply.status == 403 and reply.error_code == "students_only", reply


async def test_teacher_adds_members_by_username(server: LiveServer, make_user) -> None:
    teacher = await make_user("teacher")
    klass = await _new_class(teacher)
    alice = await make_user("student")
    bob = await make_user("student")
    reply = await teacher.post(
        f"/api/classes/{klass['id']}/members", json={"usernames": [alice.username, bob.username.upper()]}
    )
    assert reply.status == 200, reply
    assert sorted(m["username"] for m in reply.json["members"]) == sorted([alice.username, bob.username])
    assert [c["id"] for c in (await alice.get("/api/classes")).json["classes"]] == [klass["id"]]
    assert (await alice.get(f"/api/classes/{klass['id']}")).status == 200

    before = server.db_rows()
    other_teacher = await make_user("teacher")
    before = server.db_rows(exclude=("sessions", "users", "legal_acceptances"))
    for usernames, code in (
        ([alice.username, "no-such-student"], "unknown_user"),
        ([other_teacher.username], "not_a_student"),
    ):
        refused = await teacher.post(f"/api/classes/{klass['id']}/members", json={"usernames": usernames})
        assert refused.status == 400 and refused.error_code == code, refused
        assert refused.error["field"].startswith("usernames[")
    assert server.db_rows(exclude=("sessions", "users", "legal_acceptances")) == before


async def test_teachers_see_only_their_classes(server: LiveServer, make_user) -> None:
    mine_teacher = await make_user("teacher")
    other_teacher = await make_user("teacher")
    admin = await make_user("admin")
    mine = await _new_class(mine_teacher, "mine")
    theirs = await _new_class(other_teacher, "theirs")
    student = await make_user("student")

    assert [c["id"] for c in (await mine_teacher.get("/api/classes")).json["classes"]] == [mine["id"]]
    reply = await mine_teacher.get(f"/api/classes/{theirs['id']}")
    assert reply.status == 404 and reply.error_code == "not_found", reply
    missing = await mine_teacher.get("/api/classes/999999")
    assert missing.status == 404 and missing.json == reply.json  # indistinguishable from a missing class
    before = server.db_rows()
    reply = await mine_teacher.post(f"/api/classes/{theirs['id']}/members", json={"usernames": [student.username]})
    assert reply.status == 404 and reply.error_code == "not_found", reply
    assert server.db_rows() == before

    everything = {c["id"] for c in (await admin.get("/api/classes")).json["classes"]}
    assert {mine["id"], theirs["id"]} <= everything
    assert (await admin.get(f"/api/classes/{theirs['id']}")).status == 200


async def test_students_see_only_their_own_classes(server: LiveServer, make_user) -> None:
    teacher = await make_user("teacher")
    joined = await _new_class(teacher, "joined")
    not_joined = await _new_class(teacher, "not joined")
    student = await make_user("student")
    assert (await student.post("/api/classes/join", json={"code": joined["join_code"]})).status == 200
    assert [c["id"] for c in (await student.get("/api/classes")).json["classes"]] == [joined["id"]]
    reply = await student.get(f"/api/classes/{not_joined['id']}")
    assert reply.status == 404 and reply.error_code == "not_found", reply
    own = await student.get(f"/api/classes/{joined['id']}")
    assert own.status == 200 and "members" not in own.json and "join_code" not in own.json
    assert not_joined["join_code"] not in (await student.get("/api/classes")).text


async def test_students_cannot_create_or_manage_classes(server: LiveServer, make_user) -> None:
    teacher = await make_user("teacher")
    klass = await _new_class(teacher)
    student = await make_user("student")
    before = server.db_rows()
    reply = await student.post("/api/classes", json={"name": "my own"})
    assert reply.status == 403 and reply.error_code == "forbidden", reply
    reply = await student.post(f"/api/classes/{klass['id']}/members", json={"usernames": [student.username]})
    assert reply.status == 403 and reply.error_code == "forbidden", reply
    assert server.db_rows() == before


async def test_non_numeric_and_huge_ids_are_404(make_user) -> None:
    teacher = await make_user("teacher")
    for raw in ("abc", "-1", "1.0", "9" * 40, "%20", "%C2%B2", "%D9%A1", "%EF%BC%91"):  # ², Arabic 1, fullwidth 1
        reply = await teacher.get(f"/api/classes/{raw}")
        assert reply.status == 404, reply
        assert reply.error_code == "not_found"


async def test_blank_class_names_are_refused(server: LiveServer, make_user) -> None:
    teacher = await make_user("teacher")
    before = server.db_rows()
    for name, code in (
        ("", "empty"),
        ("   ", "empty"),
        ("\t\n", "empty"),
        ("x" * 201, "too_long"),
        (None, "invalid_type"),
    ):
        reply = await teacher.post("/api/classes", json={"name": name})
        assert reply.status == 400 and reply.error_code == code, reply
        assert reply.error["field"] == "name"
    assert server.db_rows() == before
