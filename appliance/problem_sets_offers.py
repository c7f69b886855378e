"""The publisher's offer of its problem sets to classrooms over the network, and the signed requests
that authenticate a classroom for it.

Problem sets hold hidden tests, and students may well reach the central instance, so the offer
routes answer only a registered classroom appliance (`labrunner appliances add`, the
`sync_appliances` register pushes use too). A classroom proves who it is by signing each request
with its Ed25519 sync key: the signature covers a context prefix of its own (so neither a bundle's
signature nor one made for anything else passes for a request's), the method, the path with its
query and the time. The time must be within `sync_request_max_age_s` of this instance's clock, so a
request overheard once stops working soon. Verified against the registered key, never against a
key the request brings along.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature

from appliance.blobs import BlobStore
from appliance.db import Database
from appliance.errors import Conflict, Forbidden, NotFound, Unauthorized
from appliance.identity import Identity, parse_public_key
from appliance.settings import Settings
from appliance.store import problem_sets as store
from appliance.store import sync as sync_store
from appliance.sync_bundle import SET_ID

# Signed before the request line: distinct from bundles' "labrunner-sync-bundle/v1\n".
REQUEST_CONTEXT = b"labrunner-sync-request/v1\n"
KEY_HEADER = "X-Labrunner-Key"
TIME_HEADER = "X-Labrunner-Time"
SIGNATURE_HEADER = "X-Labrunner-Signature"


def _signed(method: str, path_qs: str, at: int) -> bytes:
    return REQUEST_CONTEXT + f"{method.upper()}\n{path_qs}\n{at}".encode()


def sign_headers(me: Identity, method: str, path_qs: str, at: int | None = None) -> dict[str, str]:
    """The headers that authenticate this appliance's request `method path_qs` now (or at `at`)."""
    at = int(time.time()) if at is None else at
    signature = me.private_key.sign(_signed(method, path_qs, at))
    return {
        KEY_HEADER: me.public_key_text,
        TIME_HEADER: str(at),
        SIGNATURE_HEADER: base64.urlsafe_b64encode(signature).decode("ascii").rstrip("="),
    }


def _unsigned() -> Unauthorized:
    return Unauthorized(
        "sync_request_unsigned",
        f"this route answers registered classroom appliances only: sign the request ({KEY_HEADER}, {TIME_HEADER},"
        f" {SIGNATURE_HEADER})",
    )


async def authenticate(db: Database, settings: Settings, method: str, path_qs: str, headers: Mapping[str, str]) -> str:
    """The registered appliance's name whose key signed this request; refused otherwise."""
    key_text, at_text, signature_text = (headers.get(h) for h in (KEY_HEADER, TIME_HEADER, SIGNATURE_HEADER))
    if not key_text or not at_text or not signature_text:
        raise _unsigned()
    async with db.snapshot() as conn:
        registered = await sync_store.appliance_by_key(conn, key_text.strip())
    if registered is None:
        raise Forbidden(
            "sync_request_unknown_key",
            "this request is signed by a key no appliance was registered with here; the central instance's admin"
            " registers it with `labrunner appliances add NAME PUBLIC-KEY`",
        )
    if not (at_text.isascii() and at_text.isdigit() and len(at_text) <= 12):
        raise _unsigned()
    if abs(time.time() - int(at_text)) > settings.sync_request_max_age_s:
        raise Unauthorized(
            "sync_request_expired",
            f"this request was signed at {at_text}, more than sync_request_max_age_s"
            f" ({settings.sync_request_max_age_s:g} s) from this instance's clock; check both clocks",
        )
    try:
        signature = base64.urlsafe_b64decode(signature_text + "=" * (-len(signature_text) % 4))
        parse_public_key(registered["public_key"]).verify(signature, _signed(method, path_qs, int(at_text)))
    except (binascii.Error, ValueError, InvalidSignature):
        raise Unauthorized(
            "sync_request_bad_signature", "this request's signature does not match its registered appliance's key"
        ) from None
    return str(registered["name"])


async def offers(db: Database) -> list[dict[str, Any]]:
    """The latest version of every published set."""
    return [
        {key: row[key] for key in ("set_id", "name", "version", "sha256", "size")} for row in await store.offers(db)
    ]


async def latest_bundle(db: Database, blobs: BlobStore, set_id: str) -> bytes:
    # Not the shape of a set id: no such set, without asking the database (PostgreSQL refuses a NUL).
    row = await store.offer(db, set_id) if SET_ID.match(set_id) else None
    if row is None:
        raise NotFound("unknown_problem_set", "no problem set with this id is published here")
    try:
        # A worker thread: a set may be sync_bundle_max_bytes large (decompressed and hashed here).
        return await asyncio.to_thread(blobs.get, row["bundle_blob"])
    except (OSError, ValueError):
        raise Conflict(
            "problem_set_unreadable", f"the bundle of {row['name']!r} is missing or damaged here; publish it again"
        ) from None
