"""Server-rendered pages that need no script: the legal texts (`ui/templates/legal.html`, in the
`page.html` shell)."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web
from markupsafe import Markup

from appliance import legal, markdown
from appliance.app_keys import DB
from appliance.http.routing import Routes

routes = Routes()


async def _legal_page(request: web.Request, kind: str, title: str) -> web.Response:
    doc = await legal.current(request.app[DB], kind)
    # The one raw HTML value: markdown.render escapes the text itself.
    content = {"title": title, "version": doc["version"], "content_html": Markup(markdown.render(doc["markdown"]))}
    return aiohttp_jinja2.render_template("legal.html", request, content)


@routes.route("GET", "/terms", access="anyone", summary="Terms of use (HTML)", response_type="text/html", in_api=False)
async def terms_page(request: web.Request) -> web.Response:
    return await _legal_page(request, "terms", "Terms of use")


@routes.route(
    "GET",
    "/privacy",
    access="anyone",
    summary="Privacy notice (HTML)",
    response_type="text/html",
    in_api=False,
)
async def privacy_page(request: web.Request) -> web.Response:
    return await _legal_page(request, "privacy", "Privacy notice")
