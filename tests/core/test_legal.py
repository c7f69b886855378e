"""Terms and privacy: public pages, versioned publishing, and the acceptance gate."""

from __future__ import annotations

import re

import pytest
from aiohttp import web

from tests.conftest import DEFAULT_PASSWORD, ApiClient, LiveServer, Reply, years_ago
from tests.core.conftest import Classroom

FOOTER_LINKS = ('href="/terms"', 'href="/privacy"')


def _html_pages(app: web.Application) -> list[str]:
    """Every HTML page the app declares (new pages are covered automatically)."""
    pages = set()
    for route in app.router.routes():
        spec = getattr(route.handler, "route_spec", None)
        info = route.resource.get_info() if route.resource else {}
        if spec is not None and spec.method == "GET" and spec.response_type == "text/html":
            pages.add(info.get("path") or info["formatter"])
    return sorted(pages)


async def test_the_legal_pages_are_declared(server: LiveServer) -> None:
    assert {"/terms", "/privacy"} <= set(_html_pages(server.app))


@pytest.mark.parametrize("kind", ["terms", "privacy"])
async def test_legal_api_and_page_agree(anon: ApiClient, kind: str) -> None:
    api = await anon.get(f"/api/legal/{kind}")
    assert api.status == 200, api
    doc = api.json
    assert doc["kind"] == kind and doc["version"] and doc["markdown"]
    page = await anon.get(f"/{kind}")
    assert page.status == 200, page
    assert page.headers["Content-Type"].startswith("text/html")
    assert f"Version {doc['version']}" in page.text
    assert "<h1>" in page.text or "<h2>" in page.text  # the markdown was rendered


async def _follow(client: ApiClient, path: str) -> Reply:
    """GET, following the app's own redirects (e.g. to the login page) like a browser."""
    for _ in range(5):
        reply = await client.get(path)
        location = reply.headers.get("Location")
        if reply.status not in (301, 302, 303, 307, 308) or not location or not location.startswith("/"):
            return reply
        path = location
    raise AssertionError(f"redirect loop at {path}")


@pytest.mark.parametrize("viewer", ["anonymous", "student", "teacher"])
async def test_every_page_has_footer_links(classroom: Classroom, viewer: str) -> None:
    client = classroom.server.client() if viewer == "anonymous" else getattr(classroom, viewer)
    ids = {"id": classroom.problem_id}
    pages = _html_pages(classroom.server.app)
    assert pages
    rendered = 0
    for template in pages:
        path = re.sub(r"\{(\w+)\}", lambda m: str(ids.get(m.group(1), classroom.class_id)), template)
        if "/classes/" in template:
            path = re.sub(r"\{(\w+)\}", str(classroom.class_id), template)
        reply = await _follow(client, path)
        assert reply.status < 500, reply
        if reply.headers.get("Content-Type", "").startswith("text/html"):
            rendered += 1
            for link in FOOTER_LINKS:
                assert link in reply.text, f"{path} as {viewer} lacks the footer link {link}"
    assert rendered >= 2


async def test_unknown_legal_kind_is_404(anon: ApiClient) -> None:
    reply = await anon.get("/api/legal/cookies")
    assert reply.status == 404 and reply.error_code == "not_found", reply


async def test_publishing_blocks_users_until_they_accept(server: LiveServer, make_user) -> None:
    admin = await make_user("admin")
    student = await make_user("student")
    teacher = await make_user("teacher")
    assert (await student.get("/api/classes")).status == 200

    markdown = "# Terms v2\n\nBe <b>kind</b>.\n\n- one\n- two\n"
    published = await admin.put("/api/legal/terms", json={"version": "2099-02-02", "markdown": markdown})
    assert published.status == 201, published
    assert published.json["version"] == "2099-02-02"
    assert (await server.client().get("/api/legal/terms")).json["version"] == "2099-02-02"
    page = await server.client().get("/terms")
    assert "Version 2099-02-02" in page.text
    assert "<b>kind</b>" not in page.text and "&lt;b&gt;kind&lt;/b&gt;" in page.text  # no raw HTML

    for client in (student, teacher, admin):  # the publisher too
        for path in ("/api/classes", "/api/problems"):
            blocked = await client.get(path)
            assert blocked.status == 403, blocked
            assert blocked.error_code == "legal_acceptance_required"
        blocked = await client.post("/api/tokens", json={"name": "x"})
        assert blocked.status == 403 and blocked.error_code == "legal_acceptance_required", blocked
        me = await client.get("/api/me")  # still reachable, and says what is pending
        assert me.status == 200, me
        assert me.json["pending_legal"] == [{"kind": "terms", "version": "2099-02-02"}]

    # Public routes stay public.
    assert (await student.get("/api/legal/privacy")).status == 200
    assert (await student.get("/terms")).status == 200

    old = {"accept_terms": "2026-11-01"}
    versions = await server.legal_versions()
    stale = await student.post("/api/me/accept-legal", json={**versions, **old})
    assert stale.status == 400 and stale.error_code == "stale_legal_version", stale
    assert (await student.get("/api/classes")).status == 403

    accepted = await student.post("/api/me/accept-legal", json=versions)
    assert accepted.status == 200, accepted
    assert accepted.json["pending_legal"] == []
    assert (await student.get("/api/classes")).status == 200
    assert (await teacher.get("/api/classes")).status == 403  # everyone accepts for themselves

    # Logging out is always possible.
    assert (await teacher.post("/api/auth/logout")).status == 200


async def test_bearer_tokens_are_gated_too(server: LiveServer, make_user) -> None:
    admin = await make_user("admin")
    teacher = await make_user("teacher")
    script = teacher.with_token(await teacher.create_token())
    assert (await script.get("/api/classes")).status == 200
    assert (await admin.put("/api/legal/privacy", json={"version": "v9", "markdown": "x"})).status == 201
    reply = await script.get("/api/classes")
    assert reply.status == 403 and reply.error_code == "legal_acceptance_required", reply


@pytest.mark.parametrize("role", ["student", "teacher"])
async def test_only_admins_publish(server: LiveServer, make_user, role: str) -> None:
    client = await make_user(role)
    before = server.db_rows()
    reply = await client.put("/api/legal/terms", json={"version": "2099-03-03", "markdown": "# mine"})
    assert reply.status == 403 and reply.error_code == "forbidden", reply
    assert server.db_rows() == before
    anonymous = await server.client().put("/api/legal/terms", json={"version": "2099-03-03", "markdown": "# x"})
    assert anonymous.status == 401 and anonymous.error_code == "login_required", anonymous


async def test_publish_refuses_duplicates_and_unknown_kinds(server: LiveServer, make_user) -> None:
    admin = await make_user("admin")
    current = (await admin.get("/api/legal/terms")).json["version"]
    before = server.db_rows()
    dup = await admin.put("/api/legal/terms", json={"version": current, "markdown": "# again"})
    assert dup.status == 409 and dup.error_code == "version_exists", dup
    bad = await admin.put("/api/legal/cookies", json={"version": "1", "markdown": "# c"})
    assert bad.status == 404 and bad.error_code == "not_found", bad
    for body, field in (
        ({"version": "", "markdown": "# c"}, "version"),
        ({"version": "   ", "markdown": "# c"}, "version"),
        ({"version": "v7", "markdown": " \n "}, "markdown"),
    ):
        empty = await admin.put("/api/legal/terms", json=body)
        assert empty.status == 400 and empty.error_code == "empty" and empty.error["field"] == field, empty
    assert server.db_rows() == before


@pytest.mark.parametrize("role", ["teacher", "admin", "student"])
async def test_a_first_login_is_not_told_the_texts_changed(server: LiveServer, make_user, role: str) -> None:
    # Staff, and students a teacher created, log in for the first time with nothing accepted yet.
    client = server.client()
    await server.create_account(role, f"first-{role}", DEFAULT_PASSWORD, years_ago(12) if role == "student" else None)
    assert (await client.login(f"first-{role}", DEFAULT_PASSWORD)).status == 200
    page = await client.get("/accept-legal")
    assert page.status == 200, page
    assert "Before you start" in page.text and "changed since you last accepted" not in page.text
    # Once they accepted, a new version is a change for them.
    assert (await client.post("/api/me/accept-legal", json=await server.legal_versions())).status == 200
    admin = await make_user("admin")
    published = await admin.put("/api/legal/privacy", json={"version": "2099-03-03", "markdown": "# New\n"})
    assert published.status == 201, published
    again = await client.get("/accept-legal")
    assert "changed since you last accepted" in again.text and "Before you start" not in again.text
