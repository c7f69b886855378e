"""Down-sync on two real server processes on loopback (tests/runner/appliance_process.py): the
central instance publishes a problem set, the classroom's scheduled fetch receives it (verified
against the publishers the classroom trusts), a teacher imports chosen problems into a class of
their own, and its students see only the visible tests. Plus the central instance's offer routes
against requests that are not a registered classroom's."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance import identity
from appliance.problem_sets_offers import KEY_HEADER, SIGNATURE_HEADER, TIME_HEADER, sign_headers
from tests.conftest import ApiClient
from tests.runner.appliance_process import ApplianceProcess, create_account, free_port, serving
from tests.sync.conftest import cli, ok, sql
from tests.sync.problem_set_fixtures import (
    SECRET_IN,
    SECRET_OUT,
    Publisher,
    logged_in,
    make_publisher,
    make_receiver,
    state,
)

OFFERS = "/api/sync/problem-sets"


@pytest.fixture
def publisher(tmp_path: Path) -> Publisher:
    return make_publisher(tmp_path / "central")


@pytest.fixture
def central_server(publisher: Publisher) -> Iterator[ApplianceProcess]:
    with serving(publisher.data_dir) as server:
        yield server


async def _wait_for(condition: Any, what: str, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = await condition()
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_published_set_reaches_a_classroom_and_its_students_see_only_visible_tests(
    tmp_path: Path, publisher: Publisher, central_server: ApplianceProcess
) -> None:
    room = tmp_path / "room"
    room_key, _ = make_receiver(room, publisher)
    ok(cli(publisher.data_dir, "appliances", "add", "Room 12", room_key))
    publisher.publish("Week 1", publisher.sum_id, publisher.echo_id)
    for role, name in (("teacher", "t-ann"), ("teacher", "t-bob"), ("student", "s-cy"), ("student", "s-dee")):
        create_account(room, role, name)
    classroom = ApplianceProcess(
        room, free_port(), env={"LABRUNNER_SYNC_CENTRAL_URL": central_server.url, "LABRUNNER_SYNC_EVERY_S": "1"}
    )
    classroom.start()
    clients: list[ApiClient] = []
    try:
        ann, bob, cy, dee = [await logged_in(classroom.url, n) for n in ("t-ann", "t-bob", "s-cy", "s-dee")]
        clients += [ann, bob, cy, dee]
        klass = (await ann.post("/api/classes", json={"name": "7B"})).json
        assert (await cy.post("/api/classes/join", json={"code": klass["join_code"]})).status == 200
        bob_class = (await bob.post("/api/classes", json={"name": "8C"})).json
        assert (await dee.post("/api/classes/join", json={"code": bob_class["join_code"]})).status == 200

        async def inbox() -> list[dict[str, Any]]:
            reply = await ann.get("/api/problem-sets")
            assert reply.status == 200, reply
            return list(reply.json["problem_sets"])

        # The classroom's own scheduled job fetched it from the central instance.
        sets = await _wait_for(inbox, "the set in the classroom's inbox")
        (entry,) = sets
        assert (entry["name"], entry["version"]) == ("Week 1", 1)
        assert entry["publisher"] == {"name": "Central", "fingerprint": publisher.fingerprint}
        by_title = {p["title"]: p for p in entry["problems"]}
        assert (by_title["Sum"]["visible_tests"], by_title["Sum"]["hidden_tests"]) == (1, 2)
        assert (by_title["Echo"]["visible_tests"], by_title["Echo"]["hidden_tests"]) == (1, 0)
        assert SECRET_IN not in json.dumps(sets) and "5 5" not in json.dumps(sets)

        # Students: not the inbox, not the import (a staff GET answers "no such page", as every other does).
        for student in (cy, dee):
            hidden = await student.get("/api/problem-sets")
            assert (hidden.status, hidden.error_code) == (404, "not_found"), hidden
            assert "Week 1" not in hidden.text
            refused = await student.post(
                f"/api/problem-sets/{entry['id']}/import", json={"problems": [publisher.sum_id]}
            )
            assert refused.status == 403, refused
        assert (await cy.get("/teach/problem-sets")).status == 404

        # Another teacher's class: refused, nothing written.
        before = state(room)
        into_other = await bob.post(
            f"/api/problem-sets/{entry['id']}/import", json={"problems": [publisher.sum_id], "classes": [klass["id"]]}
        )
        assert (into_other.status, into_other.error_code) == (400, "unknown_class"), into_other
        assert state(room) == before

        imported = await ann.post(
            f"/api/problem-sets/{entry['id']}/import", json={"problems": [publisher.sum_id], "classes": [klass["id"]]}
        )
        assert imported.status == 200, imported
        ((created),) = imported.json["imported"]
        assert created["outcome"] == "created" and created["origin_id"] == publisher.sum_id
        local = created["problem_id"]

        mine = (await ann.get(f"/api/problems/{local}")).json
        assert mine["title"] == "Sum" and mine["classes"] == [klass["id"]]
        assert [t["visibility"] for t in mine["test_cases"]] == ["visible", "hidden", "hidden"]
        assert [a["name"] for a in (await ann.get(f"/api/problems/{local}/assets")).json["assets"]] == ["data.csv"]

        # The student of that class sees it, with only its visible test, on every student route.
        listed = (await cy.get("/api/problems")).json["problems"]
        assert [p["id"] for p in listed] == [local]
        for path in (
            f"/api/problems/{local}",
            f"/api/problems/{local}/test-cases",
            f"/problems/{local}",
            "/api/problems",
        ):
            reply = await cy.get(path)
            assert reply.status == 200, (path, reply)
            assert SECRET_IN not in reply.text and SECRET_OUT not in reply.text and "5 5" not in reply.text, path
        seen = (await cy.get(f"/api/problems/{local}")).json
        assert [t["stdin"] for t in seen["test_cases"]] == ["1 2\n"] and seen["hidden_test_count"] == 2
        for path in (f"/api/problems/{local}/test-cases/all", f"/api/problems/{local}/export"):
            assert (await cy.get(path)).status in (403, 404), path
        # Not in the class, not imported: nothing.
        assert (await dee.get("/api/problems")).json["problems"] == []
        assert (await dee.get(f"/api/problems/{local}")).status == 404

        # A newer version updates Ann's copy; no second problem.
        with sql(publisher.data_dir) as conn:
            conn.execute("UPDATE problems SET title = 'Sum of two' WHERE id = ?", (publisher.sum_id,))
        publisher.publish("Week 1", publisher.sum_id, publisher.echo_id)

        async def version_2() -> bool:
            return any(s["version"] == 2 for s in await inbox())

        await _wait_for(version_2, "version 2 in the inbox")
        again = await ann.post(f"/api/problem-sets/{entry['id']}/import", json={"problems": [publisher.sum_id]})
        assert again.status == 200 and again.json["imported"][0] == {
            "origin_id": publisher.sum_id,
            "problem_id": local,
            "outcome": "updated",
        }, again
        assert [p["title"] for p in (await ann.get("/api/problems")).json["problems"]] == ["Sum of two"]
        assert (await ann.get(f"/api/problems/{local}")).json["classes"] == [klass["id"]]

        # Ann edits her copy; version 3 does not silently overwrite it.
        assert (await ann.patch(f"/api/problems/{local}", json={"statement": "My own words."})).status == 200
        with sql(publisher.data_dir) as conn:
            conn.execute("UPDATE problems SET statement = 'Add them.' WHERE id = ?", (publisher.sum_id,))
        publisher.publish("Week 1", publisher.sum_id)

        async def version_3() -> bool:
            return any(s["version"] == 3 for s in await inbox())

        await _wait_for(version_3, "version 3 in the inbox")
        before = state(room)
        kept = await ann.post(f"/api/problem-sets/{entry['id']}/import", json={"problems": [publisher.sum_id]})
        assert (kept.status, kept.error_code) == (409, "problem_set_local_edits"), kept
        assert state(room) == before
        replaced = await ann.post(
            f"/api/problem-sets/{entry['id']}/import", json={"problems": [publisher.sum_id], "replace": True}
        )
        assert replaced.status == 200 and replaced.json["imported"][0]["outcome"] == "updated", replaced
        assert (await ann.get(f"/api/problems/{local}")).json["statement"] == "Add them."
        assert len((await ann.get("/api/problems")).json["problems"]) == 1
    finally:
        for client in clients:
            await client.close()
        classroom.stop()


def _get(url: str, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
            return response.status, (
                json.loads(body) if response.headers.get_content_type() == "application/json" else body
            )
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_offer_routes_answer_only_a_registered_classroom_with_a_fresh_request_signature(
    tmp_path: Path, publisher: Publisher, central_server: ApplianceProcess
) -> None:
    room = tmp_path / "room"
    make_receiver(room, publisher)
    me = identity.ensure(room)
    ok(cli(publisher.data_dir, "appliances", "add", "Room 12", me.public_key_text))
    published = publisher.publish("Week 1", publisher.sum_id)
    set_id = published.split("(set ")[1].split(",")[0]
    one = f"{OFFERS}/{set_id}"

    status, listing = _get(central_server.url + OFFERS, sign_headers(me, "GET", OFFERS))
    assert status == 200 and [(s["set_id"], s["version"]) for s in listing["problem_sets"]] == [(set_id, 1)]
    status, bundle = _get(central_server.url + one, sign_headers(me, "GET", one))
    assert status == 200 and bundle[:2] == b"PK"

    (tmp_path / "stranger").mkdir()
    stranger = identity.ensure(tmp_path / "stranger")  # a real appliance key, never registered
    now = int(time.time())
    context_swapped = me.private_key.sign(b"labrunner-sync-bundle/v1\n" + f"GET\n{one}\n{now}".encode())
    refusals = {
        "no signature": ({}, 401, "sync_request_unsigned"),
        "unregistered key": (sign_headers(stranger, "GET", one), 403, "sync_request_unknown_key"),
        "expired": (sign_headers(me, "GET", one, at=now - 3600), 401, "sync_request_expired"),
        "from the future": (sign_headers(me, "GET", one, at=now + 3600), 401, "sync_request_expired"),
        "signed for another path": (sign_headers(me, "GET", OFFERS), 401, "sync_request_bad_signature"),
        "signed for another method": (sign_headers(me, "POST", one), 401, "sync_request_bad_signature"),
        "another context": (
            {
                KEY_HEADER: me.public_key_text,
                TIME_HEADER: str(now),
                SIGNATURE_HEADER: base64.urlsafe_b64encode(context_swapped).decode().rstrip("="),
            },
            401,
            "sync_request_bad_signature",
        ),
        "a registered key's name, a stranger's signature": (
            {**sign_headers(stranger, "GET", one), KEY_HEADER: me.public_key_text},
            401,
            "sync_request_bad_signature",
        ),
    }
    for what, (headers, expected_status, code) in refusals.items():
        for path in (OFFERS, one):
            status, answer = _get(central_server.url + path, headers)
            if what.startswith("signed for another path") and path == OFFERS:
                continue  # that signature is the listing's own
            refused_with = answer["error"]["code"] if isinstance(answer, dict) and "error" in answer else None
            assert (status, refused_with) == (expected_status, code), (what, path, status)
    # A random key that is not even an appliance's.
    fake = Ed25519PrivateKey.generate()
    headers = {
        KEY_HEADER: identity.public_key_text(fake.public_key()),
        TIME_HEADER: str(now),
        SIGNATURE_HEADER: base64.urlsafe_b64encode(fake.sign(b"x")).decode().rstrip("="),
    }
    assert _get(central_server.url + one, headers)[0] == 403
