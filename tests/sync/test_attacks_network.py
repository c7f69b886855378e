"""Attacks on the classroom's down-sync fetch from the network side: a man in the middle on the
plain-HTTP link (or a central instance gone rogue) answering the classroom's signed requests with
whatever it likes. A fake central instance on loopback plays it; the classroom is an in-process
server on its real SQLite file. The classroom must stay up for its students: nothing it cannot
take is fetched, and no bundle is parsed on the event loop that serves them."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance import problem_sets, problem_sets_fetch, problem_sets_trust, sync_bundle, sync_intake, sync_outbox
from appliance.app_keys import BLOBS, DB, SETTINGS
from appliance.errors import AppError
from appliance.identity import public_key_text
from tests.conftest import LiveServer
from tests.sync.attack_bundles import Signer, problem, problem_set
from tests.sync.loop_watch import watch_event_loop

ServerFactory = Callable[..., Awaitable[LiveServer]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeCentral:
    """Answers the offer list with `offers` (or `body`) and every set with `bundle`; counts requests."""

    def __init__(self, offers: list[dict[str, Any]], bundle: bytes = b"", body: bytes | None = None) -> None:
        self.offers, self.bundle, self.body = offers, bundle, body
        self.requests: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        if request.path == problem_sets_fetch.OFFERS_PATH:
            body = self.body if self.body is not None else json.dumps({"problem_sets": self.offers}).encode()
            return web.Response(body=body, content_type="application/json")
        return web.Response(body=self.bundle, content_type="application/zip")


@asynccontextmanager
async def _stand_in_central(method: str, path: str, handler: Handler) -> AsyncIterator[str]:
    """A stand-in central instance answering `method path` with `handler`: its URL while it serves."""
    app = web.Application()
    app.router.add_route(method, path, handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def _offer(n: int) -> dict[str, Any]:
    return {"set_id": f"{n:032x}", "name": f"Set {n}", "version": 1, "sha256": "0" * 64, "size": 1}


async def test_a_list_of_more_offers_than_the_setting_takes_is_refused_before_any_set_is_fetched(
    server_factory: ServerFactory,
) -> None:
    fake = FakeCentral([_offer(n) for n in range(1, 6)], bundle=b"junk")
    async with _stand_in_central("GET", "/{tail:.*}", fake.handle) as url:
        room = await server_factory(sync_central_url=url, problem_set_max_offers=3)
        await problem_sets_trust.add(room.app[DB], "Central", Signer().public_key)
        with pytest.raises(AppError) as refused:
            await problem_sets_fetch.fetch(room.app[DB], room.app[BLOBS], room.app[SETTINGS])
        assert refused.value.code == "problem_set_too_many_offers"
        assert "problem_set_max_offers" in refused.value.message
        assert fake.requests == [problem_sets_fetch.OFFERS_PATH]

        # A list padded past what that many offers can take is not read to its end either.
        fake.body = b'{"problem_sets": [' + b" " * (16 << 20) + b"]}"
        with pytest.raises(AppError) as refused:
            await problem_sets_fetch.fetch(room.app[DB], room.app[BLOBS], room.app[SETTINGS])
        assert refused.value.code == "problem_set_too_many_offers"


async def test_a_received_set_is_parsed_and_verified_off_the_event_loop(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A set can be sync_bundle_max_bytes large: reading, hashing, rebuilding and checking it takes
    seconds, during which the event loop would answer no student. Both the receive and a teacher's
    import (which opens the set again) do it in a worker thread."""
    on_loop = watch_event_loop(
        monkeypatch, (sync_bundle, "read"), (sync_bundle, "verify"), (problem_sets, "problems_of")
    )
    signer = Signer()
    await problem_sets_trust.add(server.app[DB], "Central", signer.public_key)
    received = await problem_sets.receive(
        server.app[DB], server.app[BLOBS], server.app[SETTINGS], problem_set(signer, [problem()])
    )
    teacher = await server.make_user("teacher")
    reply = await teacher.post(f"/api/problem-sets/{received.inbox_id}/import", json={"problems": [1]})
    assert reply.status == 200, reply
    assert on_loop == []


async def test_an_endless_answer_to_a_push_is_not_read_past_the_setting(server_factory: ServerFactory) -> None:
    """A man in the middle answering the classroom's push with a stream that never ends must not fill
    the classroom's memory: the answer is read only up to sync_answer_max_bytes."""
    sent: list[int] = []

    async def endless(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        chunk = b" " * (1 << 16)
        try:
            while len(sent) < 2000:  # 128 MiB at most, should the client read on
                await response.write(chunk)
                sent.append(len(chunk))
                await asyncio.sleep(0)
        except (ConnectionResetError, RuntimeError):
            pass
        return response

    async with _stand_in_central("POST", sync_outbox.PUSH_PATH, endless) as url:
        room = await server_factory(sync_central_url=url, sync_answer_max_bytes=1 << 20, sync_timeout_s=20)
        with pytest.raises(AppError) as refused:
            await sync_outbox.push(room.app[DB], room.app[BLOBS], room.app[SETTINGS])
        assert refused.value.code == "sync_answer_too_large", refused.value
        assert "sync_answer_max_bytes" in refused.value.message
        assert sync_outbox.acknowledged(room.settings.data_dir, url) is None


async def test_a_forged_acknowledgement_is_not_taken_for_the_central_instances(server_factory: ServerFactory) -> None:
    """With sync_central_key set, only the central instance's signature makes an acknowledgement."""
    forger_key = Ed25519PrivateKey.generate()

    async def forger(request: web.Request) -> web.Response:
        raw = await request.read()
        bundle = sync_bundle.read(raw, 1 << 28)  # never imported anywhere
        ack = {"appliance": "x", "generation": bundle.generation, "watermark": bundle.watermark, "already": False}
        # Signed, but with the forger's own key.
        digest = hashlib.sha256(raw).hexdigest()
        signature = sync_intake.sign_ack(forger_key, bundle.generation, bundle.watermark, digest)
        return web.json_response({**ack, "counts": {}, "signature": signature})

    async with _stand_in_central("POST", sync_outbox.PUSH_PATH, forger) as url:
        central_key = public_key_text(Ed25519PrivateKey.generate().public_key())
        room = await server_factory(sync_central_url=url, sync_central_key=central_key)
        with pytest.raises(AppError) as refused:
            await sync_outbox.push(room.app[DB], room.app[BLOBS], room.app[SETTINGS])
        assert refused.value.code == "sync_ack_unverified"
        assert sync_outbox.acknowledged(room.settings.data_dir, url) is None


async def test_another_publishers_set_with_the_same_id_does_not_stop_the_centrals_updates(
    server_factory: ServerFactory,
) -> None:
    """Set ids and versions are a publisher's word: another trusted publisher's set claiming the
    central's set id at a higher version must not make the fetch skip the central's sets."""
    central_key, other = Signer(), Signer(appliance_id="cd" * 16)
    set_id = "77" * 16
    genuine = problem_set(central_key, [problem(1, "Genuine")], set_id=set_id, version=2)
    fake = FakeCentral(
        [{"set_id": set_id, "name": "Crafted set", "version": 2, "sha256": "0" * 64, "size": 1}], genuine
    )
    async with _stand_in_central("GET", "/{tail:.*}", fake.handle) as url:
        room = await server_factory(sync_central_url=url)
        await problem_sets_trust.add(room.app[DB], "Central", central_key.public_key)
        await problem_sets_trust.add(room.app[DB], "Other", other.public_key)
        await problem_sets.receive(
            room.app[DB], room.app[BLOBS], room.app[SETTINGS], problem_set(other, [problem()], set_id=set_id, version=9)
        )
        outcome = await problem_sets_fetch.fetch(room.app[DB], room.app[BLOBS], room.app[SETTINGS])
        assert [r["set_id"] for r in outcome["received"]] == [set_id]
