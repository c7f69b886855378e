"""The central instance's end of the classroom → central push: a classroom's outbox posts its
signed bundle here. The bundle's own Ed25519 signature, checked against the registered appliance
keys, is the authentication (no session, no cookie), and the import is the one `labrunner import`
runs, refusing with the same codes."""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web

from appliance import sync_import
from appliance.app_keys import BLOBS, DB, SETTINGS
from appliance.errors import TooLarge, UnsupportedMedia
from appliance.http.jsonio import json_response, read_body
from appliance.http.routing import Routes
from appliance.http.shapes import BOOLEAN, INTEGER, STRING, obj

routes = Routes()

ACK = obj(appliance=STRING, generation=INTEGER, watermark=INTEGER, already=BOOLEAN, counts=obj())


@routes.route(
    "POST",
    "/api/sync/bundles",
    access="anyone",
    summary="Import a classroom appliance's signed sync bundle (application/zip); answers the acknowledged"
    " generation and watermark. Authenticated by the bundle's signature against the registered appliance keys.",
    request_type="application/zip",
    response=ACK,
    csrf_exempt=True,
)
async def push_bundle(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if request.content_type != "application/zip":
        raise UnsupportedMedia("unsupported_media_type", "send the bundle as application/zip")
    try:
        raw = await read_body(request, settings.sync_bundle_max_bytes)
    except TooLarge:
        raise TooLarge(
            "bundle_too_large",
            f"the bundle is larger than sync_bundle_max_bytes ({settings.sync_bundle_max_bytes} bytes)",
        ) from None
    result = await sync_import.import_bundle(request.app[DB], request.app[BLOBS], settings, raw, trigger="push")
    return json_response(asdict(result))
