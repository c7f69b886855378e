"""Reading JSON bodies strictly and writing JSON responses."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from appliance.app_keys import SETTINGS
from appliance.errors import Invalid, TooLarge, UnsupportedMedia
from appliance.errors import NotFound as NotFoundError
from appliance.validation import Schema


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def read_body(request: web.Request, limit: int | None = None) -> bytes:
    """The raw body, refused past `limit` bytes (default: the max_body_bytes setting)."""
    limit = request.app[SETTINGS].max_body_bytes if limit is None else limit
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge("body_too_large", f"the request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            raise TooLarge("body_too_large", f"the request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: web.Request, schema: Schema | None) -> dict[str, Any]:
    raw = await read_body(request)
    if schema is None and not raw:
        return {}
    if request.content_type != "application/json":
        raise UnsupportedMedia("unsupported_media_type", "send the body as application/json")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid("invalid_encoding", f"the body is not valid UTF-8 (byte {exc.start})") from exc
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than the parser's stack
        raise Invalid("invalid_json", f"the body is not valid JSON: {exc}") from exc
    if schema is None:
        if data not in ({}, None):
            raise Invalid("unknown_field", "this request takes no body fields")
        return {}
    return schema.parse(data)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=lambda v: json.dumps(v, ensure_ascii=False))


async def body(request: web.Request) -> dict[str, Any]:
    """The request's JSON body, checked against the schema its route declared."""
    from appliance.http.routing import resolve_body, spec_of

    spec = spec_of(request)
    return await read_json(request, resolve_body(spec, request.app[SETTINGS]) if spec else None)


def path_id(request: web.Request, name: str = "id") -> int:
    raw = request.match_info[name]
    # ASCII only: str.isdigit() also accepts '²' (which int() refuses) and other scripts' digits.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise NotFoundError("not_found", "no such item")
    return int(raw)
