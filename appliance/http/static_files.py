"""The UI's static files (ui/static), gzip-compressed for browsers that accept it.

The editor bundle alone is about 680 KB of JavaScript (about 220 KB gzipped); thirty laptops
opening it at once on a classroom's Wi-Fi feel the difference. Each text file is compressed once,
on its first request after it changed (known by its size and modification time), and kept in
memory: the whole folder is under a megabyte. Pages revalidate static files on every load
(Cache-Control: no-cache, set by the security headers middleware), so each variant has its own
ETag and an unchanged file costs a 304.
"""

from __future__ import annotations

import asyncio
import gzip
import os
from dataclasses import dataclass
from pathlib import Path

from aiohttp import hdrs, web

# Text worth compressing; images and fonts are compressed already.
COMPRESSIBLE = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".json": "application/json"}
# Below this, gzip's header and the extra round of work outweigh the bytes saved.
MIN_COMPRESS_BYTES = 1024


@dataclass(frozen=True)
class _Packed:
    size: int
    mtime_ns: int
    body: bytes


class StaticFiles:
    """`GET /static/{path}`: the file under `root`, gzipped when the browser accepts it."""

    def __init__(self, root: Path) -> None:
        self._root = root.resolve()
        self._packed: dict[Path, _Packed] = {}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/static/{path:.+}", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = self._resolve(request.match_info["path"])
        if path.suffix not in COMPRESSIBLE:
            return web.FileResponse(path)
        vary = {hdrs.VARY: hdrs.ACCEPT_ENCODING}  # a cache must not hand gzip to a browser that did not ask
        stat = await asyncio.to_thread(path.stat)
        if stat.st_size < MIN_COMPRESS_BYTES or not accepts_gzip(request.headers.get(hdrs.ACCEPT_ENCODING, "")):
            return web.FileResponse(path, headers=vary)
        packed = await self._compressed(path, stat)
        etag = f"{packed.mtime_ns:x}-{packed.size:x}-gzip"
        if request.if_none_match and any(tag.value in (etag, "*") for tag in request.if_none_match):
            response = web.Response(status=304, headers=vary)
            response.etag = etag
            return response
        response = web.Response(
            body=packed.body,
            headers=vary | {hdrs.CONTENT_ENCODING: "gzip"},
            content_type=COMPRESSIBLE[path.suffix],
            charset="utf-8" if path.suffix != ".json" else None,
        )
        response.etag = etag
        response.last_modified = packed.mtime_ns / 1e9
        return response

    def _resolve(self, relative: str) -> Path:
        """The file named, if it lies inside the static folder (no `..`, no symlink out of it)."""
        try:
            path = (self._root / relative).resolve()
        except (OSError, ValueError) as exc:
            raise web.HTTPNotFound() from exc
        if not path.is_relative_to(self._root) or not path.is_file():
            raise web.HTTPNotFound()
        return path

    async def _compressed(self, path: Path, stat: os.stat_result) -> _Packed:
        packed = self._packed.get(path)
        if packed is None or (packed.size, packed.mtime_ns) != (stat.st_size, stat.st_mtime_ns):
            packed = self._packed[path] = await asyncio.to_thread(_pack, path)
        return packed


def _pack(path: Path) -> _Packed:
    with path.open("rb") as file:
        stat = os.fstat(file.fileno())  # the version read, even if the file changes meanwhile
        body = gzip.compress(file.read(), compresslevel=9, mtime=0)
    return _Packed(stat.st_size, stat.st_mtime_ns, body)


def accepts_gzip(accept_encoding: str) -> bool:
    """True when the Accept-Encoding header allows gzip: named, or `*`, with a quality above 0."""
    qualities: dict[str, float] = {}
    for item in accept_encoding.lower().split(","):
        name, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        qualities[name] = quality
    return qualities.get("gzip", qualities.get("*", 0.0)) > 0
