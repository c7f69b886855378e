"""A classroom fetching problem sets from whatever answers at `sync_central_url`: here a stand-in
central instance (a man in the middle, or a compromised central) serving altered, untrusted,
replayed and malformed sets. The classroom (`labrunner sync --now`, a real process) trusts only its
publisher's key, so each is refused with its `bundle_*` code and nothing is written: no row, no blob
file. Only the genuine set enters the inbox."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from appliance import identity, sync_bundle
from tests.conftest import REPO_ROOT
from tests.sync.problem_set_fixtures import (
    SECRET_IN,
    Publisher,
    flip_byte,
    make_publisher,
    make_receiver,
    reveal_hidden,
    rezip,
    state,
)


@dataclass
class StandIn:
    """What the stand-in central instance offers now: one set, claimed to be `version`."""

    set_id: str = ""
    version: int = 1
    bundle: bytes = b""


@pytest.fixture
async def stand_in() -> AsyncIterator[tuple[StandIn, str]]:
    offer = StandIn()

    async def listing(request: web.Request) -> web.Response:
        item = {"set_id": offer.set_id, "name": "Week 1", "version": offer.version, "sha256": "", "size": 0}
        return web.json_response({"problem_sets": [item]})

    async def bundle(request: web.Request) -> web.Response:
        return web.Response(body=offer.bundle, content_type="application/zip")

    app = web.Application()
    app.router.add_get("/api/sync/problem-sets", listing)
    app.router.add_get("/api/sync/problem-sets/{set_id}", bundle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield offer, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def sync_now(room: Path, url: str) -> tuple[int, str, str]:
    """`labrunner sync --now` as its own process, while this event loop serves the stand-in."""
    env = {"LABRUNNER_SYNC_CENTRAL_URL": url, "PYTHONIOENCODING": "utf-8"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "appliance",
        "--data-dir",
        str(room),
        "sync",
        "--now",
        cwd=REPO_ROOT,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("LABRUNNER_")}, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return int(process.returncode or 0), out.decode(), err.decode()


def _set_id(published: str) -> str:
    return published.split("(set ")[1].split(",")[0]


async def test_altered_untrusted_replayed_and_malformed_sets_are_refused_and_write_nothing(
    tmp_path: Path, stand_in: tuple[StandIn, str]
) -> None:
    offer, url = stand_in
    publisher: Publisher = make_publisher(tmp_path / "central")
    room = tmp_path / "room"
    make_receiver(room, publisher)
    offer.set_id = _set_id(publisher.publish("Week 1", publisher.sum_id, out=tmp_path / "v1.zip"))
    publisher.publish("Week 1", publisher.sum_id, publisher.echo_id, out=tmp_path / "v2.zip")
    v1, v2 = (tmp_path / "v1.zip").read_bytes(), (tmp_path / "v2.zip").read_bytes()
    evil = make_publisher(tmp_path / "evil")
    evil.publish("Week 1", evil.sum_id, out=tmp_path / "evil.zip")
    untrusted = (tmp_path / "evil.zip").read_bytes()

    def claim_trusted_key(members: dict[str, bytes]) -> None:
        manifest = json.loads(members["manifest.json"])
        manifest["public_key"] = publisher.public_key
        members["manifest.json"] = sync_bundle.canonical_json(manifest)

    # Signed by the trusted publisher itself, but holding a problem this appliance cannot take.
    key = identity.ensure(publisher.data_dir)
    bad_problem = sync_bundle.write(
        {
            "kind": "problem_set",
            "appliance_id": key.appliance_id,
            "public_key": key.public_key_text,
            "set_id": offer.set_id,
            "name": "Week 1",
            "version": 8,
            "titles": ["Brainfuck"],
        },
        {"problems.jsonl": sync_bundle.json_lines([{"id": 1, "title": "Brainfuck", "language": "brainfuck"}])},
        key.private_key,
    )

    # The genuine, newest set: received.
    offer.version, offer.bundle = 2, v2
    code, out, err = await sync_now(room, url)
    assert "received: 'Week 1' version 2" in out, (out, err)
    before = state(room)
    assert len(before[0]["problem_set_inbox"]) == 1

    cases = {
        "one byte of a hidden test changed (the zip CRC catches it)": (
            flip_byte(v2, SECRET_IN.encode()),
            "bundle_tampered",
        ),
        "hidden tests made visible, zipped again with right CRCs": (rezip(v2, reveal_hidden), "bundle_tampered"),
        "signed by a key the classroom does not trust": (untrusted, "bundle_untrusted_publisher"),
        "another key's set claiming the trusted key": (rezip(untrusted, claim_trusted_key), "bundle_bad_signature"),
        "the older version, offered as new": (v1, "bundle_replayed"),
        "not a zip": (b"PK\x03\x04 this is no bundle", "bundle_malformed"),
        "a problem this appliance cannot take": (bad_problem, "bundle_malformed"),
    }
    for what, (served, expected) in cases.items():
        offer.version, offer.bundle = 9, served
        code, out, err = await sync_now(room, url)
        assert code == 1 and f"error ({expected})" in err, (what, out, err)
        assert state(room) == before, what

    # The genuine set again, once more: nothing new is written either.
    offer.version, offer.bundle = 2, v2
    code, out, err = await sync_now(room, url)
    assert "received: nothing new" in out, (out, err)
    assert state(room) == before
