"""Attacks on the central instance's HTTP port (an in-process server on its real SQLite file): an
outsider, a rogue or buggy registered classroom appliance, a man in the middle replaying what it
overheard, and a teacher or student of the central instance itself."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from appliance import sync_appliances, sync_bundle
from appliance.app_keys import DB
from appliance.blobs import BlobStore
from appliance.problem_sets_offers import KEY_HEADER, REQUEST_CONTEXT, SIGNATURE_HEADER, TIME_HEADER
from appliance.sync_bundle import MANIFEST, SIGNATURE
from appliance.sync_intake import push_headers
from tests.conftest import SYNC_CHANGE_LOG, ApiClient, LiveServer
from tests.sync.attack_bundles import SECRET_IN, SECRET_OUT, Signer, classroom, problem, problem_set, raw_zip
from tests.sync.loop_watch import watch_event_loop

ServerFactory = Callable[..., Awaitable[LiveServer]]
OFFERS = "/api/sync/problem-sets"
ROOM_ID = "cd" * 16
OTHER_ID = "ef" * 16
NOW = "2026-05-01T09:00:00.000000Z"


def _synced(server: LiveServer) -> dict[str, Any]:
    rows = server.db_rows(exclude=SYNC_CHANGE_LOG)
    return {t: rows.get(t) for t in rows if t.startswith("synced_") or t in ("sync_appliances", "job_runs")}


async def _push(client: ApiClient, raw: bytes, signer: Signer | None) -> Any:
    """POST as the outbox does: the push signed by `signer` (None: unsigned, as an outsider sends it)."""
    headers = {"Content-Type": "application/zip"}
    if signer is not None:
        headers |= push_headers(signer.key, signer.public_key, raw)
    return await client.post("/api/sync/bundles", data=raw, headers=headers)


def _room_bundle(signer: Signer, **extra: Any) -> bytes:
    """A small classroom: a teacher, a student, a class, a problem with a hidden test, a submission."""
    records: dict[str, Any] = {
        "users": [
            {"id": 1, "role": "teacher", "name": "p-teacher", "created_at": NOW},
            {"id": 2, "role": "student", "name": "p-student", "created_at": NOW},
        ],
        "classes": [{"id": 1, "name": "7B", "owner": 1, "created_at": NOW, "members": [2]}],
        "problems": [
            {
                **problem(),
                "owner": 1,
                "created_at": NOW,
                "updated_at": NOW,
                "classes": [{"class": 1, "due_at": None, "late_policy": None}],
            }
        ],
        "submissions": [
            {
                "id": 1,
                "user": 2,
                "problem": 1,
                "language": "python",
                "status": "done",
                "verdict": "accepted",
                "score": 100.0,
                "late": False,
                "created_at": NOW,
                "finished_at": NOW,
            }
        ],
    }
    records.update(extra)
    return classroom(signer, **records)


async def test_a_nested_manifest_is_a_clear_refusal_not_a_server_error(server: LiveServer) -> None:
    """Parsed before the bundle's own signature is checked: an outsider's is refused unread (the push
    must be signed by a registered key), a registered appliance's (rogue or buggy) with a code."""
    room = Signer(appliance_id=ROOM_ID)
    await sync_appliances.register(server.app[DB], "room", room.public_key)
    client = server.client(origin=None)
    before = _synced(server)
    for nested in (b"[" * 100_000, b'{"a":' * 100_000):
        raw = raw_zip([(MANIFEST, nested), (SIGNATURE, b"\0" * 64)])
        reply = await _push(client, raw, None)
        assert (reply.status, reply.error_code) == (401, "bundle_key_required"), reply
        reply = await _push(client, raw, room)
        assert (reply.status, reply.error_code) == (400, "bundle_malformed"), reply
    assert _synced(server) == before


async def test_a_registered_appliance_cannot_write_as_another_nor_replay_nor_cross_kinds(server: LiveServer) -> None:
    room, rogue, stranger = Signer(appliance_id=ROOM_ID), Signer(appliance_id=ROOM_ID), Signer()
    await sync_appliances.register(server.app[DB], "room", room.public_key)
    await sync_appliances.register(server.app[DB], "rogue", rogue.public_key)
    anyone = server.client(origin=None)
    newer = _room_bundle(room, watermark=20)
    assert (await _push(anyone, newer, room)).status == 200
    before = _synced(server)
    attempts = {
        # The rogue's key, claiming the room's appliance id: its key is not the one pinned to that id.
        "bundle_appliance_mismatch": (_room_bundle(rogue, watermark=30), rogue),
        # An older bundle of the room's, overheard on the wire and replayed.
        "bundle_replayed": (_room_bundle(room, watermark=10), room),
        # A later generation's incremental bundle, with no full one first.
        "bundle_gap": (_room_bundle(room, watermark=5, since=2, generation=2), room),
        # Not a key registered here.
        "bundle_unknown_key": (_room_bundle(stranger), stranger),
        # The rogue's push carrying the room's bundle (the push's key is not the bundle's).
        "bundle_key_mismatch": (_room_bundle(room, watermark=40), rogue),
        # A problem set (the classroom trusts the publisher's kind, not this route).
        "bundle_unsupported_kind": (problem_set(room, [problem()]), room),
    }
    for code, (raw, pusher) in attempts.items():
        reply = await _push(anyone, raw, pusher)
        assert reply.status in (400, 403) and reply.error_code == code, (code, reply)
    # The very bundle again is acknowledged and writes nothing.
    again = await _push(anyone, newer, room)
    assert again.status == 200 and again.json["already"] is True
    assert _synced(server) == before


@pytest.mark.parametrize(
    "records",
    [
        {"submissions": [{"id": 1, "user": 2, "problem": 1, "status": "done", "verdict": "accepted", "score": 1.0,
                          "created_at": "not a time", "finished_at": NOW}]},
        {"submissions": [{"id": 1, "user": 2, "problem": 1, "status": "done", "verdict": "accepted", "score": 1.0,
                          "created_at": 5, "finished_at": NOW}]},
        {"problems": [{**problem(), "owner": 1, "updated_at": "yesterday", "classes": []}]},
        {"problems": [{**problem(), "owner": 1, "updated_at": NOW, "classes": [{"class": "x"}]}]},
        {"problems": [{**problem(), "owner": 1, "updated_at": NOW, "classes": "all"}]},
        {"problems": [{**problem(), "owner": 1, "updated_at": NOW, "classes": [], "test_cases": 3}]},
        {"classes": [{"id": 1, "name": "7B", "owner": 1, "members": ["x", {"a": 1}]}]},
        {"classes": [{"id": 1, "name": "7B", "owner": 1, "members": 7}]},
    ],
)  # fmt: skip
async def test_a_bundle_whose_records_would_break_the_central_view_is_refused(
    server_factory: ServerFactory, records: dict[str, Any]
) -> None:
    """One registered appliance (rogue, or a buggy version) must not be able to take the central view
    down for every appliance: the fields the view reads are checked at import."""
    server = await server_factory()
    room, other = Signer(appliance_id=ROOM_ID), Signer(appliance_id=OTHER_ID)
    await sync_appliances.register(server.app[DB], "room", room.public_key)
    await sync_appliances.register(server.app[DB], "other", other.public_key)
    anyone = server.client(origin=None)
    assert (await _push(anyone, _room_bundle(other), other)).status == 200
    reply = await _push(anyone, _room_bundle(room, **records), room)
    assert (reply.status, reply.error_code) == (400, "bundle_malformed"), reply
    admin = await server.make_user("admin")
    for path in ("/api/admin/central/appliances", "/api/admin/central/appliances/1", "/api/admin/central/appliances/2"):
        shown = await admin.get(path)
        assert shown.status == 200, shown


async def test_the_central_view_is_for_admins_only_and_never_shows_a_hidden_test(server: LiveServer) -> None:
    room = Signer(appliance_id=ROOM_ID)
    await sync_appliances.register(server.app[DB], "room", room.public_key)
    assert (await _push(server.client(origin=None), _room_bundle(room), room)).status == 200
    admin = await server.make_user("admin")
    teacher, student = await server.make_user("teacher"), await server.make_user("student")
    paths = ("/api/admin/central/appliances", "/api/admin/central/appliances/1")
    for path in paths:
        shown = await admin.get(path)
        assert shown.status == 200 and SECRET_IN not in shown.text and SECRET_OUT not in shown.text
        assert "p-student" not in shown.text  # students are counted, never listed
        for who in (teacher, student, server.client()):
            reply = await who.get(path)
            assert reply.status in (401, 403), reply
    assert (await admin.get("/admin/central")).status == 200
    for who in (teacher, student):
        assert (await who.get("/admin/central")).status == 404


def _signed_headers(signer: Signer, method: str, path_qs: str, at: int, context: bytes = REQUEST_CONTEXT) -> dict:
    signature = signer.key.sign(context + f"{method}\n{path_qs}\n{at}".encode())
    return {
        KEY_HEADER: signer.public_key,
        TIME_HEADER: str(at),
        SIGNATURE_HEADER: base64.urlsafe_b64encode(signature).decode().rstrip("="),
    }


async def test_the_offer_routes_take_only_a_fresh_request_signed_for_exactly_that_route(
    server_factory: ServerFactory,
) -> None:
    server = await server_factory(sync_request_max_age_s=60)
    room, stranger = Signer(appliance_id=ROOM_ID), Signer()
    await sync_appliances.register(server.app[DB], "room", room.public_key)
    client = server.client(origin=None)
    now = int(time.time())
    set_path = f"{OFFERS}/{'5e' * 16}"

    genuine = await client.get(OFFERS, headers=_signed_headers(room, "GET", OFFERS, now))
    assert genuine.status == 200, genuine

    bad, unsigned, expired = "sync_request_bad_signature", "sync_request_unsigned", "sync_request_expired"
    refusals: list[tuple[str, dict[str, str], str]] = [
        (OFFERS, {}, unsigned),
        (OFFERS, _signed_headers(stranger, "GET", OFFERS, now), "sync_request_unknown_key"),
        # Overheard for the list, replayed for a set (or with a query added).
        (set_path, _signed_headers(room, "GET", OFFERS, now), bad),
        (OFFERS + "?all=1", _signed_headers(room, "GET", OFFERS, now), bad),
        # Signed for another method.
        (OFFERS, _signed_headers(room, "POST", OFFERS, now), bad),
        # Too old, or from too far in the future (a clock game).
        (OFFERS, _signed_headers(room, "GET", OFFERS, now - 120), expired),
        (OFFERS, _signed_headers(room, "GET", OFFERS, now + 120), expired),
        # The time header changed after signing.
        (OFFERS, {**_signed_headers(room, "GET", OFFERS, now - 120), TIME_HEADER: str(now)}, bad),
        # Odd times.
        (OFFERS, {**_signed_headers(room, "GET", OFFERS, now), TIME_HEADER: "-1"}, unsigned),
        (OFFERS, {**_signed_headers(room, "GET", OFFERS, now), TIME_HEADER: "1e9"}, unsigned),
        # A signature made for a bundle (another context) is not one for a request.
        (OFFERS, _signed_headers(room, "GET", OFFERS, now, b"labrunner-sync-bundle/v1\n"), bad),
        (OFFERS, {**_signed_headers(room, "GET", OFFERS, now), SIGNATURE_HEADER: "!!!"}, bad),
    ]
    for path, headers, code in refusals:
        reply = await client.get(path, headers=headers)
        assert reply.status in (401, 403) and reply.error_code == code, (path, headers, reply)

    # Path tricks in the set id: signed as sent, they reach no file and no other route.
    for trick in ("..", "..%2F..%2Fapi%2Fadmin", "%2e%2e", "5e" * 16 + "%00", "5E" * 16):
        path = f"{OFFERS}/{trick}"
        reply = await client.get(path, headers=_signed_headers(room, "GET", path, now))
        assert reply.status in (401, 404), (trick, reply)
        assert reply.headers.get("Content-Type", "").startswith("application/json"), (trick, reply)


async def test_numbers_past_sqlites_integers_are_refused_not_a_server_error(server: LiveServer) -> None:
    """A signer's (rogue or buggy) numbers beyond 2**63 cannot be stored: refused, not a 500."""
    room = Signer(appliance_id=ROOM_ID)
    await sync_appliances.register(server.app[DB], "room", room.public_key)
    anyone = server.client(origin=None)
    before = _synced(server)
    huge = 1 << 64
    for raw in (
        _room_bundle(room, watermark=huge),
        _room_bundle(room, generation=huge),
        _room_bundle(room, users=[{"id": huge, "role": "student", "name": "p-x", "created_at": NOW}]),
        _room_bundle(room, users=[{"id": 1, "role": "student", "name": "p-x", "created_at": NOW, "deleted": False},
                                  {"id": -1, "deleted": True}]),
    ):  # fmt: skip
        reply = await _push(anyone, raw, room)
        assert (reply.status, reply.error_code) == (400, "bundle_malformed"), reply
    assert _synced(server) == before


@pytest.mark.parametrize("score", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"1e308", b"-1", b"100.5", b'"100"'])
async def test_a_score_that_is_no_score_is_refused_not_a_server_error(server: LiveServer, score: bytes) -> None:
    room = Signer(appliance_id=ROOM_ID)
    await sync_appliances.register(server.app[DB], "room", room.public_key)
    line = (
        b'{"created_at":"' + NOW.encode() + b'","id":1,"problem":1,"score":' + score + b',"status":"done",'
        b'"user":2,"verdict":"accepted"}\n'
    )
    before = _synced(server)
    raw = _room_bundle(room, members={"submissions.jsonl": line})
    reply = await _push(server.client(origin=None), raw, room)
    assert (reply.status, reply.error_code) == (400, "bundle_malformed"), reply
    assert _synced(server) == before


async def test_a_registered_appliance_cannot_take_another_ones_id_before_its_first_push(server: LiveServer) -> None:
    """Registered with its appliance id (as `labrunner identity` tells the admin to), the room keeps it."""
    room, rogue = Signer(appliance_id=ROOM_ID), Signer(appliance_id=ROOM_ID)
    await sync_appliances.register(server.app[DB], "room", room.public_key, ROOM_ID)
    await sync_appliances.register(server.app[DB], "rogue", rogue.public_key)
    anyone = server.client(origin=None)
    squat = await _push(anyone, _room_bundle(rogue), rogue)
    genuine = await _push(anyone, _room_bundle(room), room)
    assert (squat.status, genuine.status) == (400, 200), (squat, genuine)


async def test_a_pushed_bundle_is_read_verified_parsed_and_stored_off_the_event_loop(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bundle may be sync_bundle_max_bytes large; reading, hashing, parsing and writing it on the
    event loop would hold up every other request to the central instance for seconds."""
    on_loop = watch_event_loop(
        monkeypatch, (sync_bundle, "read"), (sync_bundle, "verify"), (sync_bundle.Bundle, "records"), (BlobStore, "put")
    )
    room = Signer(appliance_id=ROOM_ID)
    await sync_appliances.register(server.app[DB], "room", room.public_key)
    data = b"id,value\n1,2\n"
    digest = hashlib.sha256(data).hexdigest()
    asset = {"name": "d.csv", "kind": "csv", "media_type": "text/csv", "size": len(data), "sha256": digest}
    record = {**problem(assets=[{**asset, "in_workdir": True}]), "owner": 1, "created_at": NOW, "updated_at": NOW}
    raw = _room_bundle(room, problems=[{**record, "classes": [{"class": 1}]}], members={f"assets/{digest}": data})
    reply = await _push(server.client(origin=None), raw, room)
    assert reply.status == 200, reply
    assert on_loop == []
