"""Server-rendered pages that need no script: the legal texts and the landing page."""

from __future__ import annotations

import html

from aiohttp import web

from appliance import legal, markdown
from appliance.http.keys import DB
from appliance.http.routing import route
from ui import TEMPLATE_DIR

_PAGE = (TEMPLATE_DIR / "page.html").read_text(encoding="utf-8")


def render_page(title: str, content_html: str) -> web.Response:
    body = _PAGE.replace("{title}", html.escape(title)).replace("{content}", content_html)
    return web.Response(text=body, content_type="text/html", charset="utf-8")


async def _legal_page(request: web.Request, kind: str, title: str) -> web.Response:
    doc = await legal.current(request.app[DB], kind)
    content = f'<p class="version">Version {html.escape(doc["version"])}</p>\n' + markdown.render(doc["markdown"])
    return render_page(title, content)


@route("GET", "/terms", access="anyone", summary="Terms of use (HTML)", content_type="text/html", in_api=False)
async def terms_page(request: web.Request) -> web.Response:
    return await _legal_page(request, "terms", "Terms of use")


@route(
    "GET",
    "/privacy",
    access="anyone",
    summary="Privacy notice (HTML)",
    content_type="text/html",
    in_api=False,
)
async def privacy_page(request: web.Request) -> web.Response:
    return await _legal_page(request, "privacy", "Privacy notice")
