"""Pages are rendered by Jinja2 with autoescape on: what users typed reaches a page as text,
in element content and in attribute values alike, never as markup."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

from tests.ui.conftest import make_room, no_docker

HOSTILE = '<script>alert("x")</script> & \'q\' " onfocus="alert(1)'


def _only(pattern: str, page: str) -> str:
    found = re.findall(pattern, page)
    assert len(found) == 1, (pattern, found)
    return found[0]


async def test_user_data_in_pages_is_escaped(server_factory: Callable[..., Any]) -> None:
    server = await server_factory(app_options=no_docker())
    room = await make_room(server, title=HOSTILE)
    for client in (room.student, room.teacher):
        page = (await client.get(f"/problems/{room.problem_id}")).text
        assert "<script>alert" not in page and 'onfocus="alert' not in page
        heading = _only(r'<h1 id="problem-title">(.*?)</h1>', page)
        title = _only(r"<title>(.*?) · Labrunner</title>", page)
        for text in (heading, title):
            assert "<" not in text and '"' not in text and html.unescape(text) == HOSTILE, text

    # A legal text's version goes into attribute values (the acceptance checkboxes) and the pages' text.
    admin = await server.make_user("admin")
    published = await admin.put("/api/legal/terms", json={"version": HOSTILE, "markdown": "# Terms"})
    assert published.status == 201, published
    for client, path in ((server.client(), "/register"), (admin, "/accept-legal"), (server.client(), "/terms")):
        page = (await client.get(path)).text
        assert "<script>alert" not in page and 'onfocus="alert' not in page, path
        if path != "/terms":
            value = _only(r'id="accept-terms" name="accept_terms" value="([^"]*)"', page)
            assert html.unescape(value) == HOSTILE, (path, value)
