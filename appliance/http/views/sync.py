"""The central instance's end of the classroom → central push: a classroom's outbox posts its
signed bundle here. The bundle's own Ed25519 signature, checked against the registered appliance
keys, is the authentication (no session, no cookie), and the import is the one `labrunner import`
runs, refusing with the same codes.

Before the body (up to `sync_bundle_max_bytes`) is read into memory, `appliance.sync_intake`
counts the push against its address's window, requires the `X-Labrunner-Key` header to name a
registered key and the push to be signed with it (the body must then be the signed one, and its
manifest's key that one), receives one push per appliance at a time and lets one import run at a time."""

from __future__ import annotations

import asyncio
from dataclasses import asdict

from aiohttp import web

from appliance import identity, sync_import, sync_intake
from appliance.app_keys import BLOBS, DB, SETTINGS, SYNC_INTAKE
from appliance.errors import RequestTimeout, TooLarge, UnsupportedMedia
from appliance.http.jsonio import json_response, read_body
from appliance.http.middleware import client_address
from appliance.http.routing import Routes
from appliance.http.shapes import BOOLEAN, INTEGER, STRING, obj

routes = Routes()

ACK = obj(appliance=STRING, generation=INTEGER, watermark=INTEGER, already=BOOLEAN, counts=obj(), signature=STRING)


@routes.route(
    "POST",
    "/api/sync/bundles",
    access="anyone",
    summary="Import a classroom appliance's signed sync bundle (application/zip); answers the acknowledged"
    " generation and watermark. Authenticated by the bundle's signature against the registered appliance keys;"
    " before the body is read, the X-Labrunner-Key header must name a registered key and X-Labrunner-Signature"
    " sign the body's SHA-256 (X-Labrunner-Bundle) and length with it. One push per appliance at a time (503"
    " sync_busy with Retry-After), a number of pushes per address (429).",
    request_type="application/zip",
    response=ACK,
    csrf_exempt=True,
)
async def push_bundle(request: web.Request) -> web.Response:
    settings, intake = request.app[SETTINGS], request.app[SYNC_INTAKE]
    intake.count(client_address(request))
    if request.content_type != "application/zip":
        raise UnsupportedMedia("unsupported_media_type", "send the bundle as application/zip")
    signer, digest = await sync_intake.registered_signer(request.app[DB], request.headers, request.content_length)
    async with intake.receiving(signer):
        try:
            async with asyncio.timeout(settings.sync_push_read_timeout_s):
                raw = await read_body(request, settings.sync_bundle_max_bytes)
        except TimeoutError:
            raise RequestTimeout(
                "bundle_read_timeout",
                f"the bundle did not arrive within sync_push_read_timeout_s ({settings.sync_push_read_timeout_s} s)",
            ) from None
        except TooLarge:
            raise TooLarge(
                "bundle_too_large",
                f"the bundle is larger than sync_bundle_max_bytes ({settings.sync_bundle_max_bytes} bytes)",
            ) from None
        sync_intake.check_digest(raw, digest)
        async with intake.importing():
            result = await sync_import.import_bundle(
                request.app[DB], request.app[BLOBS], settings, raw, trigger="push", signer=signer
            )
    key = identity.signing_key(settings.data_dir)
    signature = sync_intake.sign_ack(key, result.generation, result.watermark, digest)
    return json_response({**asdict(result), "signature": signature})
