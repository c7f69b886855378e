"""The classroom's side of down-sync over the network: it asks the central instance
(`sync_central_url`) which problem sets it offers, fetches those whose bundle its inbox lacks, and hands
each to `problem_sets.receive`, which verifies it against this classroom's TRUSTED PUBLISHERS (not
the transport: a set the central instance relays from an untrusted key, or one altered on the way,
is refused and nothing is written). Requests are signed with this appliance's sync key
(appliance/problem_sets_offers.py).

Runs as its own adaptive scheduler job (`problem_sets_fetch`, with the push's backoff rules) and in
`labrunner sync --now` after the push. A classroom that trusts no publisher asks nothing.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from appliance import central_client, identity, problem_sets
from appliance.blobs import BlobStore
from appliance.central_client import SyncRefused
from appliance.db import Database
from appliance.errors import Invalid, TooLarge, Unavailable
from appliance.identity import Identity
from appliance.problem_sets_offers import sign_headers
from appliance.scheduler import Scheduler
from appliance.settings import Settings
from appliance.store import problem_sets as store
from appliance.sync_bundle import SET_ID, SET_NAME_MAX_CHARS, BundleRefused
from appliance.sync_outbox import add_central_job

JOB_NAME = "problem_sets_fetch"
OFFERS_PATH = "/api/sync/problem-sets"


class _Central:
    """Signed GETs to one central instance within one client session."""

    def __init__(self, session: aiohttp.ClientSession, settings: Settings, me: Identity) -> None:
        self.session = session
        self.settings = settings
        self.me = me

    async def get(self, path: str, limit: int) -> bytes:
        central = self.settings.sync_central_url
        try:
            async with self.session.get(
                central.rstrip("/") + path, headers=sign_headers(self.me, "GET", path), allow_redirects=False
            ) as response:
                status = response.status
                if response.content_length is not None and response.content_length > limit:
                    raise TooLarge("bundle_too_large", f"the central instance offers more than {limit} bytes")
                chunks, size = [], 0
                async for chunk in response.content.iter_chunked(1 << 16):
                    size += len(chunk)
                    if size > limit:
                        raise TooLarge("bundle_too_large", f"the central instance sent more than {limit} bytes")
                    chunks.append(chunk)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise central_client.unreachable(exc, central) from None
        body = b"".join(chunks)
        if 200 <= status < 300:
            return body
        raise central_client.answer_error(status, body, central, "the request")


# Bytes one offer takes in the list at most: a set id, a version, a hash, a size and a name of up to
# SET_NAME_MAX_CHARS characters, each perhaps escaped as a surrogate pair (12 bytes).
_OFFER_MAX_BYTES = 256 + 12 * SET_NAME_MAX_CHARS


def _too_many(settings: Settings) -> SyncRefused:
    return SyncRefused(
        "problem_set_too_many_offers",
        f"the central instance lists more problem sets than this classroom takes in one fetch"
        f" (problem_set_max_offers: {settings.problem_set_max_offers}); nothing was fetched",
    )


async def _offers(client: _Central, settings: Settings) -> list[dict[str, Any]]:
    """The list, read only up to what problem_set_max_offers offers can take: a man in the middle (or
    a rogue central instance) must not make the classroom read, parse or fetch without end."""
    try:
        body = await client.get(OFFERS_PATH, (settings.problem_set_max_offers + 1) * _OFFER_MAX_BYTES)
    except TooLarge:
        raise _too_many(settings) from None
    try:
        listed = json.loads(body)["problem_sets"]
        if len(listed) > settings.problem_set_max_offers:
            raise _too_many(settings)
        offers = [
            {
                "set_id": str(o["set_id"]),
                "name": str(o["name"]),
                "version": int(o["version"]),
                "sha256": str(o["sha256"]),
            }
            for o in listed
            if SET_ID.match(str(o["set_id"]))
        ]
    except (ValueError, KeyError, TypeError, RecursionError):
        raise Unavailable("sync_central_error", "the central instance's list of problem sets is not readable") from None
    return offers


async def fetch(db: Database, blobs: BlobStore, settings: Settings) -> dict[str, Any]:
    """One round: every offered set newer than the inbox's is fetched and received. Refused sets are
    listed; the round then fails with the first refusal's code, so the job history shows it."""
    central = settings.sync_central_url
    if not central:
        raise Invalid("sync_not_configured", "no central instance is set: set sync_central_url first")
    outcome: dict[str, Any] = {"central": central, "offered": 0, "received": [], "refused": []}
    if not await store.any_publisher(db):
        return {**outcome, "trusted_publishers": 0}
    async with central_client.session(settings) as session:
        client = _Central(session, settings, identity.ensure(settings.data_dir))
        offers = await _offers(client, settings)
        outcome["offered"] = len(offers)
        # Skipped by the bundle's hash, not its set id and version: those are a publisher's word, and
        # another trusted publisher's set of the same id and a higher version would stop these.
        have = await store.received_hashes(db)
        for offer in offers:
            if offer["sha256"] in have:
                continue
            raw = await client.get(f"{OFFERS_PATH}/{offer['set_id']}", settings.sync_bundle_max_bytes)
            try:
                received = await problem_sets.receive(db, blobs, settings, raw)
            except BundleRefused as refused:
                outcome["refused"].append({**offer, "code": refused.code, "message": refused.message})
                continue
            outcome["received"].append({**offer, "inbox_id": received.inbox_id, "already": received.already})
    if outcome["refused"]:
        first = outcome["refused"][0]
        names = ", ".join(f"{r['name']!r} ({r['code']})" for r in outcome["refused"])
        raise SyncRefused(first["code"], f"problem sets refused: {names}; {first['message']}")
    return outcome


def describe(outcome: dict[str, Any]) -> str:
    if outcome.get("trusted_publishers") == 0:
        return "no publishers trusted: no problem sets asked for (labrunner publishers add NAME PUBLIC-KEY)"
    new = [r for r in outcome["received"] if not r["already"]]
    got = ", ".join(f"{r['name']!r} version {r['version']}" for r in new) or "nothing new"
    return f"problem sets from {outcome['central']}: {outcome['offered']} offered; received: {got}"


def setup_periodic(scheduler: Scheduler, settings: Settings) -> None:
    add_central_job(scheduler, settings, JOB_NAME, fetch)
