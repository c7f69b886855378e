"""Static files go compressed to browsers that accept gzip (issue 15's hands-on trial: the 680 KB
editor bundle went uncompressed over classroom Wi-Fi), and unchanged to those that do not."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from tests.ui.conftest import no_docker
from ui import STATIC_DIR

BUNDLE = next((STATIC_DIR / "vendor").glob("codemirror-*.js"))


async def fetch(url: str, headers: dict[str, str]) -> tuple[int, Any, bytes]:
    # Raw bytes: no Accept-Encoding of the client's own and no decoding on the way in.
    async with (
        aiohttp.ClientSession(auto_decompress=False, skip_auto_headers=["Accept-Encoding"]) as session,
        session.get(url, headers=headers) as response,
    ):
        return response.status, response.headers, await response.read()


@pytest.mark.parametrize("path", [BUNDLE, STATIC_DIR / "style.css", STATIC_DIR / "js" / "drafts.js"])
async def test_static_files_are_gzipped_when_accepted(server_factory: Callable[..., Any], path: Any) -> None:
    server = await server_factory(app_options=no_docker())
    url = f"{server.url}/static/{path.relative_to(STATIC_DIR).as_posix()}"
    plain = path.read_bytes()

    status, headers, body = await fetch(url, {"Accept-Encoding": "gzip, deflate, br"})
    assert status == 200 and headers["Content-Encoding"] == "gzip", headers
    assert "Accept-Encoding" in headers["Vary"]
    assert gzip.decompress(body) == plain
    assert len(body) < len(plain) / 2, (len(body), len(plain))
    assert headers["Cache-Control"] == "no-cache"
    assert headers["Content-Type"].startswith("text/javascript" if path.suffix == ".js" else "text/css")
    # Revalidation after an upgrade stays cheap: the same ETag gets a 304 with no body.
    status, _, body = await fetch(url, {"Accept-Encoding": "gzip", "If-None-Match": headers["ETag"]})
    assert status == 304 and body == b""

    for refusing in ({}, {"Accept-Encoding": "identity"}, {"Accept-Encoding": "gzip;q=0, br"}):
        status, headers, body = await fetch(url, refusing)
        assert status == 200 and "Content-Encoding" not in headers, (refusing, headers)
        assert body == plain
        assert "Accept-Encoding" in headers.get("Vary", ""), headers


async def test_static_paths_stay_inside_the_static_folder(server_factory: Callable[..., Any]) -> None:
    server = await server_factory(app_options=no_docker())
    for path in ("/static/nothing.js", "/static/../__init__.py", "/static/%2e%2e/__init__.py", "/static/js"):
        status, _, body = await fetch(server.url + path, {"Accept-Encoding": "gzip"})
        assert status in (403, 404), (path, status, body[:200])
