"""The central view: on a central instance fed by the real `export`/`import` commands, an admin
lists the appliances (last import, lag, the last bundle's changes) and one appliance's classes,
problems and scores per class and problem; a never-imported one shows no lag. The synced problem
records hold hidden test cases: none of their text reaches any central-view answer or page, and
only admins get in."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.identity import public_key_text
from tests.conftest import ApiClient, LiveServer
from tests.sync.conftest import Central, Classroom, cli, ok, sql, submit
from tests.ui.conftest import no_docker

HIDDEN_IN = "HIDDEN-STDIN-5Q9"
HIDDEN_OUT = "HIDDEN-EXPECTED-5Q9"
# A hidden test's name and the starter code: the central view has no reason to show them either.
HIDDEN_NAME = "HIDDEN-NAME-5Q9"
STARTER = "STARTER-CODE-5Q9"
MARKERS = (HIDDEN_IN, HIDDEN_OUT, HIDDEN_NAME, STARTER, '"record"')


def add_hidden_test(classroom: Classroom) -> None:
    with sql(classroom.data_dir) as conn:
        conn.execute(
            "INSERT INTO test_cases (problem_id, position, name, stdin, expected_stdout, visibility)"
            " VALUES (?, 3, 'secret', ?, ?, 'hidden')",
            (classroom.problem_id, HIDDEN_IN, HIDDEN_OUT),
        )
        conn.execute("UPDATE problems SET starter_code = ? WHERE id = ?", (STARTER, classroom.problem_id))
        conn.execute(
            "UPDATE test_cases SET name = ? WHERE problem_id = ? AND position = 2", (HIDDEN_NAME, classroom.problem_id)
        )


def push(classroom: Classroom, central: Central, tmp_path: Path, since: int = 0) -> None:
    bundle = tmp_path / f"bundle-{since}.zip"
    classroom.export(bundle, "--since", str(since))
    ok(central.import_(bundle))


def mark(data_dir: Path) -> int:
    with sql(data_dir) as conn:
        return int(conn.execute("SELECT seq FROM sync_counter").fetchone()[0])


async def central_server(server_factory: Callable[..., Any], central: Central) -> LiveServer:
    server: LiveServer = await server_factory(data_dir=central.data_dir, app_options=no_docker())
    return server


async def test_an_admin_sees_each_appliance_its_lag_and_its_scores_per_class_and_problem(
    tmp_path: Path, classroom: Classroom, central: Central, server_factory: Callable[..., Any]
) -> None:
    add_hidden_test(classroom)
    # The adult solves Sum on a second try (100), the minor stays at 40: mean 70, median 70, one solved.
    with sql(classroom.data_dir) as conn:
        conn.execute("UPDATE jobs SET score = 40, verdict = 'wrong_answer' WHERE user_id = ?", (classroom.minor_id,))
        conn.execute("UPDATE jobs SET score = 60, verdict = 'wrong_answer' WHERE user_id = ?", (classroom.adult_id,))
        submit(conn, classroom.adult_id, classroom.problem_id, "accepted", 100.0)
    push(classroom, central, tmp_path)
    first = mark(classroom.data_dir)
    other_key = public_key_text(Ed25519PrivateKey.generate().public_key())
    ok(cli(central.data_dir, "appliances", "add", "Room 14", other_key))

    server = await central_server(server_factory, central)
    admin = await server.make_user("admin")
    listed = await admin.get("/api/admin/central/appliances")
    assert listed.status == 200, listed
    by_name = {a["name"]: a for a in listed.json["appliances"]}
    room = by_name["Room 12"]
    assert room["fingerprint"] == classroom.fingerprint
    assert (room["classes"], room["problems"], room["students"], room["submissions"]) == (1, 1, 2, 3)
    assert room["last_import_at"] is not None and 0 <= room["lag_s"] < 600, room
    assert room["last_bundle"] == {"generation": 1, "since": 0, "watermark": first, "changes": None, "after_s": None}
    never = by_name["Room 14"]
    assert (never["last_import_at"], never["lag_s"], never["last_bundle"]) == (None, None, None), never

    # An incremental bundle: the list says how many changes it carried and how long after the first.
    with sql(classroom.data_dir) as conn:
        submit(conn, classroom.minor_id, classroom.problem_id, "wrong_answer", 20.0)
    push(classroom, central, tmp_path, since=first)
    room = {a["name"]: a for a in (await admin.get("/api/admin/central/appliances")).json["appliances"]}["Room 12"]
    assert room["last_bundle"]["changes"] == mark(classroom.data_dir) - first == 1, room
    assert room["last_bundle"]["after_s"] is not None and room["submissions"] == 4

    detail = await admin.get(f"/api/admin/central/appliances/{room['id']}")
    assert detail.status == 200, detail
    assert [(c["name"], c["students"]) for c in detail.json["class_list"]] == [("7B", 2)]
    assert [(p["title"], p["visible_tests"], p["other_tests"]) for p in detail.json["problem_list"]] == [("Sum", 1, 2)]
    (score,) = detail.json["scores"]
    assert (score["class_name"], score["problem_title"]) == ("7B", "Sum")
    assert (score["students"], score["attempted"], score["solved"]) == (2, 2, 1), score
    assert (score["mean_best"], score["median_best"]) == (70.0, 70.0), score
    assert score["last_submission_at"] is not None

    missing = await admin.get("/api/admin/central/appliances/999")
    assert (missing.status, missing.error_code) == (404, "appliance_not_found")
    empty = await admin.get(f"/api/admin/central/appliances/{never['id']}")
    assert empty.status == 200 and empty.json["scores"] == [] and empty.json["lag_s"] is None

    # No hidden test, teacher-only text or whole record in any answer, nor in the page.
    page = await admin.get("/admin/central")
    assert page.status == 200 and "Lag" in page.text
    for reply in (listed, detail, empty, page):
        leaked = [m for m in MARKERS if m in reply.text]
        assert not leaked, (reply.path, leaked)


async def test_only_admins_get_the_central_view(
    tmp_path: Path, classroom: Classroom, central: Central, server_factory: Callable[..., Any]
) -> None:
    add_hidden_test(classroom)
    push(classroom, central, tmp_path)
    server = await central_server(server_factory, central)
    callers: list[tuple[str, ApiClient]] = [
        ("teacher", await server.make_user("teacher")),
        ("student", await server.make_user("student")),
        ("anonymous", server.client()),
    ]
    for who, client in callers:
        for path in ("/api/admin/central/appliances", "/api/admin/central/appliances/1"):
            reply = await client.get(path)
            assert reply.status == (401 if who == "anonymous" else 403), (who, reply)
            assert not [m for m in (*MARKERS, "Room 12", classroom.fingerprint) if m in reply.text]
        # Staff pages are "not found" for others; a visitor is sent to log in.
        page = await client.get("/admin/central")
        assert page.status == (302 if who == "anonymous" else 404), (who, page)
        assert "Central view" not in page.text and "Room 12" not in page.text
