"""Attacks on promote (staging → production), in process on production's real SQLite file: the
promotion is for the production teacher named by --owner; another teacher of production must not get
the promoted problems (hidden tests and all) by way of the inbox, and a bundle that is not staging's
(crafted, or signed by a key production does not trust) promotes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance import problem_sets, problem_sets_trust, promote
from appliance.accounts import User
from appliance.app_keys import BLOBS, DB, SETTINGS
from appliance.sync_bundle import BundleRefused
from tests.conftest import LiveServer
from tests.sync.attack_bundles import SECRET_IN, SECRET_OUT, Signer, problem, problem_set
from tests.sync.problem_set_fixtures import IMPORT_TABLES


def _target(server: LiveServer) -> promote.Target:
    return promote.Target(server.settings, server.app[DB], server.app[BLOBS], "labrunner --env production")


async def _owner(server: LiveServer, username: str) -> User:
    row = await server.app[DB].fetchone("SELECT * FROM users WHERE username = ?", (username,))
    assert row is not None
    return User.from_row(row)


def _staging_set(staging: Signer, version: int = 1) -> bytes:
    set_id = problem_sets.set_id_for(staging.appliance_id, promote.SET_NAME)
    return problem_set(staging, [problem(7, "Exam task")], set_id=set_id, version=version, name=promote.SET_NAME)


async def test_a_promotion_is_the_named_owners_alone(server: LiveServer) -> None:
    staging = Signer(appliance_id="5a" * 16)
    await problem_sets_trust.add(server.app[DB], "staging", staging.public_key)
    ann, bob = await server.make_user("teacher"), await server.make_user("teacher")
    results = await promote.into_production(
        _target(server), await _owner(server, ann.username), _staging_set(staging), [7], [], replace=False
    )
    assert [r["outcome"] for r in results] == ["created"]
    mine = await ann.get(f"/api/problems/{results[0]['problem_id']}")
    assert mine.status == 200 and SECRET_IN in mine.text

    # Bob, another production teacher, finds nothing of it to import.
    listing = await bob.get("/api/problem-sets")
    assert listing.status == 200 and listing.json["problem_sets"] == [], listing
    rows = await server.app[DB].fetchall("SELECT id FROM problem_set_inbox")
    for row in rows:
        reply = await bob.post(f"/api/problem-sets/{row['id']}/import", json={"problems": [7]})
        assert reply.status != 200, reply
    bobs = await bob.get("/api/problems")
    assert SECRET_IN not in bobs.text and SECRET_OUT not in bobs.text

    # Promoting again still updates Ann's copy, not a second one.
    again = await promote.into_production(
        _target(server), await _owner(server, ann.username), _staging_set(staging, 2), [7], [], replace=False
    )
    assert [(r["problem_id"], r["outcome"]) for r in again] == [(results[0]["problem_id"], "updated")]


async def test_a_bundle_production_does_not_trust_promotes_nothing(server: LiveServer, tmp_path: Path) -> None:
    staging, impostor = Signer(appliance_id="5a" * 16), Signer(appliance_id="5a" * 16)
    await problem_sets_trust.add(server.app[DB], "staging", staging.public_key)
    ann = await server.make_user("teacher")
    before = {t: r for t, r in server.db_rows().items() if t in IMPORT_TABLES}
    with pytest.raises(BundleRefused) as refused:
        await promote.into_production(
            _target(server), await _owner(server, ann.username), _staging_set(impostor), [7], [], replace=False
        )
    assert refused.value.code == "bundle_untrusted_publisher"
    assert {t: r for t, r in server.db_rows().items() if t in IMPORT_TABLES} == before
    assert server.app[SETTINGS] is server.settings
