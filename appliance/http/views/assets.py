"""Problem assets: teachers upload them; anyone with the content-hashed URL may fetch them.

The URL names the content (its SHA-256), so it never changes meaning: responses carry a strong
ETag and a year of immutable caching, and a CDN or the central instance can sit in front
(`asset_base_url`). Only blobs that are problem assets are served this way, never other blobs.
"""

from __future__ import annotations

import re

from aiohttp import web

from appliance import problem_assets
from appliance.app_keys import BLOBS, DB, SETTINGS
from appliance.http.jsonio import json_response, path_id
from appliance.http.middleware import current_user
from appliance.http.routing import Routes
from appliance.http.views.files import content_disposition, content_type, flag, read_upload

routes = Routes()

IMMUTABLE = "public, max-age=31536000, immutable"
_RANGE = re.compile(r"\s*bytes\s*=\s*([0-9]*)\s*-\s*([0-9]*)\s*")
# A position with more digits than this is past the end of any content; such numbers are never
# converted (int() refuses thousands of digits, and a long one is slow to convert).
_MAX_POSITION_DIGITS = 18


@routes.route(
    "POST",
    "/api/problems/{id}/assets",
    access="staff",
    summary="Add an asset to a problem (multipart 'file'; optional name, replace, in_workdir)",
    status=(201, 200),
    request_type="multipart/form-data",
)
async def upload_asset(request: web.Request) -> web.Response:
    problem_id = path_id(request)
    settings = request.app[SETTINGS]
    upload = await read_upload(request, settings.asset_max_bytes, ("name", "replace", "in_workdir"))
    asset, created = await problem_assets.upload_asset(
        request.app[DB],
        request.app[BLOBS],
        settings,
        current_user(request),
        problem_id,
        upload.fields.get("name") or upload.filename,
        upload.data,
        in_workdir=flag(upload, "in_workdir", True),
        replace=flag(upload, "replace", False),
    )
    return json_response(asset, status=201 if created else 200)


@routes.route("GET", "/api/problems/{id}/assets", access="user", summary="A problem's assets with their URLs")
async def list_assets(request: web.Request) -> web.Response:
    found = await problem_assets.list_assets(
        request.app[DB], request.app[SETTINGS], current_user(request), path_id(request)
    )
    return json_response({"assets": found})


@routes.route(
    "DELETE",
    "/api/problems/{id}/assets/{asset_id}",
    access="staff",
    summary="Remove an asset from a problem",
    status=204,
)
async def delete_asset(request: web.Request) -> web.Response:
    problem_id, asset_id = path_id(request), path_id(request, "asset_id")
    await problem_assets.delete_asset(request.app[DB], request.app[BLOBS], current_user(request), problem_id, asset_id)
    return web.Response(status=204)


def _etag_matches(header: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison: W/ prefixes do not matter."""
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


class Unsatisfiable(Exception):
    """The range starts past the end of the content: 416."""


def _magnitude(digits: str) -> tuple[int, str]:
    """Orders digit strings as the numbers they spell, however long, without converting them."""
    digits = digits.lstrip("0") or "0"
    return len(digits), digits


def _position(digits: str) -> int:
    """A range's byte position; any number too long to be a real position counts as 10**18."""
    length, digits = _magnitude(digits)
    return int(digits) if length <= _MAX_POSITION_DIGITS else 10**_MAX_POSITION_DIGITS


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) of a single `bytes=` range; None to serve everything (absent, multiple or
    malformed ranges may be ignored, RFC 9110 §14.2). Positions of any length are valid syntax: a
    last position or a suffix past the end means up to the end (§14.1.2); a first one past the end
    is unsatisfiable (416)."""
    match = _RANGE.fullmatch(header)
    if match is None or not (match[1] or match[2]):
        return None
    if match[1]:
        first = _position(match[1])
        last = min(_position(match[2]), size - 1) if match[2] else size - 1
        if match[2] and _magnitude(match[2]) < _magnitude(match[1]):
            return None  # last before first: an invalid range, ignored
    else:
        suffix = _position(match[2])
        first, last = max(0, size - suffix), size - 1
        if suffix == 0:
            first = size  # an empty suffix selects nothing
    if first >= size:
        raise Unsatisfiable
    return first, last


async def _serve(request: web.Request) -> web.Response:
    digest, name = request.match_info["sha256"], request.match_info["name"]
    row, data = await problem_assets.asset_content(request.app[DB], request.app[BLOBS], digest, name)
    etag = f'"{digest}"'
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE, "Accept-Ranges": "bytes"}
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None and _etag_matches(if_none_match, etag):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = content_type(row["media_type"], row["kind"])
    headers["Content-Disposition"] = content_disposition("inline", row["name"])
    wanted = request.headers.get("Range")
    # If-Range: a range only applies to the representation the client already has part of.
    if wanted is not None and request.headers.get("If-Range", etag).strip() == etag:
        try:
            span = byte_range(wanted, len(data))
        except Unsatisfiable:
            error = {"code": "range_not_satisfiable", "message": f"the asset has {len(data)} bytes"}
            range_headers = {"ETag": etag, "Content-Range": f"bytes */{len(data)}"}
            return web.json_response({"error": error}, status=416, headers=range_headers)
        if span is not None:
            first, last = span
            headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
            return web.Response(status=206, body=data[first : last + 1], headers=headers)
    return web.Response(body=data, headers=headers)


@routes.route(
    "GET",
    "/assets/{sha256}/{name}",
    access="anyone",
    summary="An asset's bytes at its content-hashed URL (ETag, immutable caching, Range)",
    status=(200, 206, 304),
    response_type="*/*",
)
async def get_asset(request: web.Request) -> web.Response:
    return await _serve(request)


@routes.route("HEAD", "/assets/{sha256}/{name}", access="anyone", summary="An asset's headers", in_api=False)
async def head_asset(request: web.Request) -> web.Response:
    return await _serve(request)
