"""Red-team attempts on a server whose store may be PostgreSQL (session 7), kept so they stay refused.

Every test here runs on both engines (`pytest --db=postgresql` for PostgreSQL) and asserts what a
secure server does on either: a clear 4xx error code and the data unchanged, or exactly the rows
the limits allow. Attackers: a student on the LAN (often a minor), a curious teacher, a stranger.
What PostgreSQL refuses and SQLite took (NUL characters in text, a string where a BIGINT goes,
integers past 2^63), what it does differently (a connection pool beside one writer; identity ids
never reused; CITEXT usernames) and the visibility filters rewritten for it are what is tried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from appliance.app_keys import DB
from appliance.db import open_database
from appliance.settings import Settings
from appliance.store.queue import SqliteJobStore
from tests import dbaccess
from tests.conftest import SYNC_CHANGE_LOG, ApiClient, LiveServer, class_with, problem_for, years_ago
from tests.core.conftest import Classroom, Markers, iso_in, problem_body
from tests.core.test_leak import scan, walk
from tests.core.test_rate_limits_http import jobs_of, lesson, run, submit
from tests.ui.conftest import echo, engine_down

ServerFactory = Callable[..., Awaitable[LiveServer]]
# Nothing but the cap under test refuses: per-minute rates and per-problem budgets are off.
NO_RATES = {
    "runs_per_user_per_minute": 0,
    "submissions_per_user_per_minute": 0,
    "submissions_per_problem_per_minute": 0,
    "submissions_per_problem_per_hour": 0,
    "register_max_per_address": 1000,
}
PARALLEL = 12
# Characters the placeholder translation (appliance/db/dialect.py) acts on, and SQL's own.
TRANSLATOR_BAIT = "? ?? :name :1 $1 $$x$$ ::text '' \" -- /* */ ; %s \\ E'\\''"


def count_rows(settings: Settings, table: str, where: str = "1 = 1", params: tuple[Any, ...] = ()) -> int:
    return int(dbaccess.query(settings, f"SELECT COUNT(*) FROM {table} WHERE {where}", params)[0][0])


# --- NUL characters and other text PostgreSQL refuses --------------------------------------------


async def test_a_nul_in_an_asset_url_is_a_404_for_a_stranger(server: LiveServer) -> None:
    """/assets/{sha256}/{name} answers anyone: a NUL in the name (PostgreSQL refuses it in text)
    must be the same 404 as any unknown asset, not a 500 an unauthenticated stranger can cause."""
    stranger = server.client()
    before = server.db_rows()
    digest = "a" * 64
    for name in ("x%00y", "%00", "statement%00.png"):
        reply = await stranger.get(f"/assets/{digest}/{name}")
        assert reply.status == 404 and reply.error_code == "not_found", reply
        head = await stranger.request("HEAD", f"/assets/{digest}/{name}")
        assert head.status == 404, head
    assert server.db_rows() == before


async def test_a_nul_in_the_job_history_filter_is_no_500(server: LiveServer) -> None:
    """?job= of the admin's job history goes into the SQL as text: a NUL in it finds no runs (SQLite)
    or is refused with a 400; never a 500."""
    admin = await server.make_user("admin")
    reply = await admin.get("/api/admin/jobs/history", params={"job": "backup\x00"})
    assert reply.status in (200, 400), reply
    if reply.status == 200:
        assert reply.json == {"runs": []}, reply
    else:
        assert reply.error_code, reply


async def test_nul_characters_in_every_json_text_field_are_refused(server: LiveServer) -> None:
    """Usernames, code, stdin, titles, markdown, names: a NUL is a 400 before any SQL, on every route
    a student or teacher reaches with text, and nothing is written."""
    teacher = await server.make_user("teacher")
    student = await server.make_user("student")
    klass = await class_with(teacher, [student])
    problem_id = await problem_for(teacher, klass["id"], "Echo", {"stdin": "1\n", "expected_stdout": "1\n"})
    anon = server.client()
    before = server.db_rows(exclude=SYNC_CHANGE_LOG)
    nul = "a\x00b"
    attempts: list[tuple[ApiClient, str, str, dict[str, Any]]] = [
        (anon, "POST", "/api/auth/register", {"username": nul, "password": "x" * 12, "birthdate": years_ago(15)}),
        (anon, "POST", "/api/auth/login", {"username": student.username, "password": nul}),
        (student, "POST", "/api/runs", {"language": "python", "code": nul, "stdin": ""}),
        (student, "POST", "/api/runs", {"language": "python", "code": "print(1)", "stdin": nul}),
        (student, "POST", f"/api/problems/{problem_id}/submissions", {"language": "python", "code": nul}),
        (student, "PUT", f"/api/problems/{problem_id}/draft", {"language": "python", "code": nul}),
        (student, "POST", "/api/classes/join", {"code": nul}),
        (student, "POST", "/api/tokens", {"name": nul}),
        (teacher, "POST", "/api/classes", {"name": nul}),
        (teacher, "PATCH", f"/api/problems/{problem_id}", {"title": nul}),
        (teacher, "PATCH", f"/api/problems/{problem_id}", {"statement": nul}),
    ]
    for client, method, path, body in attempts:
        reply = await client.request(method, path, json=body)
        assert 400 <= reply.status < 500 and reply.error_code, (path, body, reply)
    assert server.db_rows(exclude=SYNC_CHANGE_LOG) == before


async def test_translator_characters_in_values_are_stored_literally(server: LiveServer) -> None:
    """`?`, `:name`, `$1`, quotes and comment marks in values go as parameters on both engines: they
    come back byte for byte, and nothing else changes (no value ever reaches the SQL text)."""
    teacher = await server.make_user("teacher")
    student = await server.make_user("student")
    klass = await teacher.post("/api/classes", json={"name": TRANSLATOR_BAIT})
    assert klass.status == 201, klass
    assert (await teacher.get(f"/api/classes/{klass.json['id']}")).json["name"] == TRANSLATOR_BAIT
    joined = await student.post("/api/classes/join", json={"code": klass.json["join_code"]})
    assert joined.status == 200, joined
    problem = await teacher.post(
        "/api/problems",
        json={
            "title": TRANSLATOR_BAIT,
            "statement": TRANSLATOR_BAIT,
            "language": "python",
            "classes": [klass.json["id"]],
            "test_cases": [
                {"name": TRANSLATOR_BAIT, "stdin": TRANSLATOR_BAIT, "expected_stdout": "x", "visible": True}
            ],
        },
    )
    assert problem.status == 201, problem
    seen = await student.get(f"/api/problems/{problem.json['id']}")
    assert seen.json["title"] == TRANSLATOR_BAIT and seen.json["test_cases"][0]["stdin"] == TRANSLATOR_BAIT, seen
    draft = await student.put(
        f"/api/problems/{problem.json['id']}/draft", json={"language": "python", "code": TRANSLATOR_BAIT}
    )
    assert draft.status == 200, draft
    assert (await student.get(f"/api/problems/{problem.json['id']}/draft")).json["draft"]["code"] == TRANSLATOR_BAIT
    # A lookup keyed by a bait value finds nothing rather than everything.
    wrong = await student.post("/api/classes/join", json={"code": "' OR '1'='1"})
    assert wrong.status in (400, 404) and wrong.error_code, wrong
    assert count_rows(server.settings, "users") == 2


# --- integers and types PostgreSQL is strict about -----------------------------------------------


async def test_integers_at_the_edge_of_bigint_are_clear_4xx(server: LiveServer) -> None:
    """Ids of 2^63-1 (the largest BIGINT), and past it in paths and query strings: a 4xx, no rows."""
    teacher = await server.make_user("teacher")
    student = await server.make_user("student")
    klass = await class_with(teacher, [student])
    before = server.db_rows(exclude=SYNC_CHANGE_LOG)
    top = 2**63 - 1
    body = problem_body(Markers.new(), [top])
    reply = await teacher.post("/api/problems", json=body)
    assert 400 <= reply.status < 500 and reply.error_code, reply
    reply = await teacher.post("/api/problems", json=problem_body(Markers.new(), [2**63]))
    assert reply.status == 400 and reply.error_code == "out_of_range", reply
    exam = {
        "title": "T",
        "starts_at": iso_in(-_minutes(1)),
        "ends_at": iso_in(_minutes(30)),
        "problem_ids": [top],
    }
    reply = await teacher.post(f"/api/classes/{klass['id']}/exams", json=exam)
    assert 400 <= reply.status < 500 and reply.error_code, reply
    for path in (f"/api/problems/{top}", f"/api/problems/{2**63}", f"/api/submissions/{2**64}", "/api/exams/-1"):
        reply = await student.get(path)
        assert reply.status == 404 and reply.error_code == "not_found", reply
    for value in (str(top), str(2**63), "1e3", "1.5", "-1", "0x10"):
        reply = await teacher.get("/api/submissions", params={"user_id": value})
        assert reply.status in (200, 400), reply
        if reply.status == 200:
            assert reply.json == {"submissions": []}, reply
    reply = await student.post("/api/runs", json={"language": "python", "code": "x", "stdin": "", "files": [top]})
    assert reply.status == 400 and reply.error_code, reply
    assert server.db_rows(exclude=SYNC_CHANGE_LOG) == before


def _minutes(n: int) -> Any:
    from datetime import timedelta

    return timedelta(minutes=n)


# --- usernames: case and Unicode ------------------------------------------------------------------


async def test_one_name_in_two_cases_registered_at_once_makes_one_account(server_factory: ServerFactory) -> None:
    """Registrations of 'Mallory7', 'MALLORY7' and 'mallory7' at the same moment: one account, the
    others 409 username_taken (CITEXT on PostgreSQL, NOCASE on SQLite)."""
    server = await server_factory(**NO_RATES)
    versions = await server.legal_versions()
    names = ["Mallory7", "MALLORY7", "mallory7", "mAlLoRy7"] * 3
    clients = [server.client() for _ in names]
    body = {"password": "correct-horse-battery", "birthdate": years_ago(15), **versions}
    replies = await asyncio.gather(
        *(c.post("/api/auth/register", json={**body, "username": n}) for c, n in zip(clients, names, strict=True))
    )
    statuses = sorted(r.status for r in replies)
    assert statuses == [201] + [409] * (len(names) - 1), replies
    assert all(r.error_code == "username_taken" for r in replies if r.status == 409), replies
    assert count_rows(server.settings, "users", "lower(username) = ?", ("mallory7",)) == 1


async def test_lookalike_usernames_neither_register_nor_log_in_as_someone_else(server: LiveServer) -> None:
    """Turkish dotted/dotless i, the Kelvin sign, ß, fullwidth letters: refused at registration, and
    a login with one is no login as the ASCII account it resembles (PostgreSQL's CITEXT folds only
    ASCII in a C-ctype database; so does SQLite's NOCASE)."""
    admin = await server.make_user("admin", username="kiosk-admin")
    await server.make_user("student", username="strasse1")
    versions = await server.legal_versions()
    lookalikes = ["K\u0130OSK-ADMIN", "k\u0131osk-admin", "\u212aiosk-admin", "stra\u00dfe1", "\uff4biosk-admin"]
    for name in lookalikes:
        reply = await server.client().post(
            "/api/auth/register",
            json={"username": name, "password": "correct-horse-battery", "birthdate": years_ago(15), **versions},
        )
        assert reply.status == 400 and reply.error_code == "invalid_username", (name, reply)
        login = await server.client().login(name, admin.password)
        assert login.status in (400, 401), (name, login)
    # Case alone is the same account (both engines), with its own password only.
    assert (await server.client().login("KIOSK-ADMIN", admin.password)).status == 200
    assert (await server.client().login("KIOSK-ADMIN", "wrong password 123")).status == 401
    assert count_rows(server.settings, "users") == 2


# --- concurrency: the write transactions must stay one at a time ---------------------------------


async def test_parallel_submissions_never_pass_the_in_flight_cap(server_factory: ServerFactory) -> None:
    server = await server_factory(app_options=engine_down(), **{**NO_RATES, "max_jobs_in_flight_per_user": 3})
    room = await lesson(server, 1)
    student = room.students[0]
    identities = [student, student.with_token(await student.create_token())]
    replies = await asyncio.gather(
        *(submit(identities[i % 2], room.problem_id, f"print({i})") for i in range(PARALLEL)),
        *(run(identities[i % 2], f"print('r{i}')") for i in range(PARALLEL)),
    )
    accepted = [r for r in replies if r.status == 202]
    refused = [r for r in replies if r.status != 202]
    assert len(accepted) == 3, replies
    assert all(r.status == 429 and r.error_code == "too_many_jobs" for r in refused), refused
    assert len(jobs_of(server, student.user_id)) == 3


async def test_parallel_identical_submissions_queue_one_job(server_factory: ServerFactory) -> None:
    """The dedup check and the insert are one transaction: the same code sent a dozen times at
    once is one job, every answer naming it."""
    server = await server_factory(app_options=engine_down(), **{**NO_RATES, "max_jobs_in_flight_per_user": 0})
    room = await lesson(server, 1)
    student = room.students[0]
    replies = await asyncio.gather(*(submit(student, room.problem_id, "print('same')") for _ in range(PARALLEL)))
    assert all(r.status == 202 for r in replies), replies
    assert len({r.json["id"] for r in replies}) == 1, replies
    assert sum(not r.json["deduplicated"] for r in replies) == 1, replies
    assert len(jobs_of(server, student.user_id)) == 1


async def test_parallel_submissions_never_pass_an_exam_budget(server_factory: ServerFactory) -> None:
    server = await server_factory(app_options=engine_down(), **{**NO_RATES, "max_jobs_in_flight_per_user": 0})
    room = await lesson(server, 1)
    student = room.students[0]
    exam = await room.teacher.post(
        f"/api/classes/{room.class_id}/exams",
        json={
            "title": "Quiz",
            "starts_at": iso_in(-_minutes(1)),
            "ends_at": iso_in(_minutes(30)),
            "problem_ids": [room.problem_id],
            "max_submissions_per_problem": 2,
        },
    )
    assert exam.status == 201, exam
    replies = await asyncio.gather(*(submit(student, room.problem_id, f"print({i})") for i in range(PARALLEL)))
    assert sorted(r.status for r in replies) == [202] * 2 + [403] * (PARALLEL - 2), replies
    assert all(r.error_code == "exam_submission_limit" for r in replies if r.status == 403), replies
    assert len(jobs_of(server, student.user_id)) == 2


async def test_two_runner_processes_never_claim_one_job_twice(server_factory: ServerFactory) -> None:
    """Two runners on one database (as two processes: two Database objects, two pools on
    PostgreSQL) claim at the same time: every queued job is claimed exactly once."""
    # No worker of the server's own: the two claimers below are the only ones.
    server = await server_factory(
        app_options=engine_down(), workers=0, **{**NO_RATES, "max_jobs_in_flight_per_user": 0}
    )
    room = await lesson(server, 4)
    for i, student in enumerate(room.students):
        for j in range(3):
            assert (await run(student, f"print({i}, {j})")).status == 202
    queued = count_rows(server.settings, "jobs", "status = 'queued'")
    assert queued == 12
    other = open_database(server.settings.database_location)
    await other.open()
    try:
        stores = [SqliteJobStore(db, 1000, 64) for db in (server.app[DB], other)]
        claims = await asyncio.gather(*(stores[i % 2].claim(f"worker-{i}", 60) for i in range(queued + 6)))
    finally:
        await other.close()
    claimed = [c.id for c in claims if c is not None]
    assert len(claimed) == len(set(claimed)) == queued, claimed
    assert count_rows(server.settings, "jobs", "status = 'running'") == queued


# --- visibility: what a student sees must not depend on the engine -------------------------------


async def test_finished_results_never_show_hidden_tests(server_factory: ServerFactory) -> None:
    """Jobs judged at once (an echo sandbox, no Docker): the student's walk of every GET route shows
    the visible and revealed tests' data and none of the hidden or not-yet-revealed tests'."""
    server = await server_factory(app_options=echo())
    room = await _classroom(server)
    student = room.student
    # The echo sandbox's output is the code: the second passes the visible test and fails the rest.
    for code in ("print(1)", room.markers.visible_out):
        reply = await student.post(
            f"/api/problems/{room.problem_id}/submissions", json={"language": "python", "code": code}
        )
        assert reply.status == 202, reply
        done = await student.get(f"/api/submissions/{reply.json['id']}", params={"wait": "20"})
        assert done.status == 200 and done.json["status"] == "done", done
    replies = await walk(room, student)
    everything = b"".join(scan(r) for r in replies if r.status == 200)
    for marker in room.markers.shown:
        assert marker.encode() in everything, f"the walk never saw {marker}: it proves nothing"
    # Staff see the hidden data of the same results: the markers are there to leak.
    staff = await room.teacher.get("/api/submissions", params={"problem_id": str(room.problem_id)})
    first = staff.json["submissions"][0]["id"]
    assert room.markers.hidden_in.encode() in (await room.teacher.get(f"/api/submissions/{first}")).body


async def _classroom(server: LiveServer) -> Classroom:
    teacher = await server.make_user("teacher")
    other_teacher = await server.make_user("teacher")
    admin = await server.make_user("admin")
    student = await server.make_user("student")
    outsider = await server.make_user("student")
    klass = await class_with(teacher, [student], "with problem")
    other = await class_with(teacher, [outsider], "without problem")
    markers = Markers.new()
    created = await teacher.post("/api/problems", json=problem_body(markers, [klass["id"]]))
    assert created.status == 201, created
    return Classroom(
        server, teacher, other_teacher, admin, student, outsider, klass["id"], other["id"], created.json["id"], markers
    )


async def test_a_recreated_problem_inherits_nothing_of_a_deleted_one(server: LiveServer) -> None:
    """A teacher deletes their newest problem and another teacher creates one (SQLite may hand out
    the same id again; PostgreSQL never does): the new problem carries none of the old one's
    drafts, submissions or classes, and the first teacher cannot reach it."""
    alice, bob = await server.make_user("teacher"), await server.make_user("teacher")
    student = await server.make_user("student")
    klass = await class_with(alice, [student])
    old = await problem_for(alice, klass["id"], "Old", {"stdin": "OLD_SECRET_IN", "expected_stdout": "x"})
    draft = await student.put(f"/api/problems/{old}/draft", json={"language": "python", "code": "OLD_DRAFT"})
    assert draft.status == 200, draft
    assert (await alice.delete(f"/api/problems/{old}")).status in (200, 204)
    bobs_class = await class_with(bob, [student], "Bob's")
    new = await problem_for(bob, bobs_class["id"], "New", {"stdin": "NEW_SECRET_IN", "expected_stdout": "y"})
    mine = await student.get(f"/api/problems/{new}/draft")
    assert b"OLD_DRAFT" not in mine.body, mine
    for path in (f"/api/problems/{new}", f"/api/problems/{new}/test-cases/all", f"/api/problems/{new}/export"):
        reply = await alice.get(path)
        assert reply.status in (403, 404) and b"NEW_SECRET_IN" not in reply.body, reply
    bobs = await bob.get(f"/api/problems/{new}")
    assert bobs.json["classes"] == [bobs_class["id"]], bobs
    listed = await student.get("/api/submissions")
    assert listed.json["submissions"] == [], listed


# --- sync bundles: text a registered classroom appliance pushes -----------------------------------


async def test_a_pushed_bundle_with_nul_characters_is_no_500(server: LiveServer) -> None:
    """A rogue or buggy registered appliance pushes names, titles and a statement holding NUL (which
    PostgreSQL cannot store in text): refused as malformed with nothing stored, never a 500."""
    from appliance import sync_appliances
    from tests.sync.attack_bundles import Signer
    from tests.sync.test_attacks_central import NOW, ROOM_ID, _push, _room_bundle, _synced

    room = Signer(appliance_id=ROOM_ID)
    await sync_appliances.register(server.app[DB], "room", room.public_key)
    anyone = server.client(origin=None)
    before = _synced(server)
    bad = "p-\x00x"
    bundles = {
        "user name": _room_bundle(room, users=[{"id": 1, "role": "student", "name": bad, "created_at": NOW}]),
        "class name": _room_bundle(
            room, classes=[{"id": 1, "name": bad, "owner": 1, "created_at": NOW, "members": []}]
        ),
    }
    failures = []
    for what, raw in bundles.items():
        reply = await _push(anyone, raw, room)
        if reply.status >= 500 or (reply.status >= 400 and (not reply.error_code or _synced(server) != before)):
            failures.append((what, reply))
    assert not failures, failures
