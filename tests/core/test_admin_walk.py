"""The admin walk: every route under /api/admin/, and /metrics, called with each of its methods by a
student and a teacher (each with their session cookie and with a Bearer token) and by an anonymous
client. Each call must be refused — 401 anonymous, 403 otherwise, never reaching the handler — and
nothing may change, in the database or in the data folder.

The routes are read off the app's router, so a route another part adds later is walked without
anyone listing it here; and every declared one must say access="admin". A planted route that a
teacher may call shows the walk fails when it should.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from appliance.app_keys import DB
from appliance.http.middleware import current_user
from appliance.http.routing import DECLARED, Routes, add_routes
from appliance.runtime import create_app
from appliance.settings import Settings
from tests import dbaccess
from tests.conftest import ApiClient, LiveServer, class_with, dump_db, problem_for, unique_username
from tests.ui.conftest import FakeSandbox, NoExecutor

GUARDED_PREFIX = "/api/admin/"
GUARDED_PATHS = ("/metrics",)
# Every /api/admin/ route is for admins alone. The dashboard's routes that teachers share (cut to
# their own classes) live outside that prefix and are walked too, as (method, path) -> why: a
# teacher's answer may succeed but must hold no other teacher's data; students and anonymous
# callers are refused. Each entry needs a comment.
TEACHER_VISIBLE: dict[tuple[str, str], str] = {
    # The live dashboard: a teacher's picture is cut at the query to their own jobs and their
    # problems' jobs (appliance/store/dashboard.py), with no runner, storage, log or switch panels.
    ("GET", "/api/dashboard"): "one picture of the dashboard, the teacher's own classes only",
    ("GET", "/api/dashboard/stream"): "the same picture, live over Server-Sent Events",
    # The dashboard's buttons: on a job outside the teacher's own and their problems', 404.
    ("POST", "/api/jobs/{id}/abort"): "abort a job the teacher's dashboard shows",
    ("POST", "/api/jobs/{id}/requeue"): "requeue a job the teacher's dashboard shows",
}
# Routes that answer a refused caller 404 (hiding that they exist) rather than 401/403, -> why.
HIDDEN: dict[tuple[str, str], str] = {}
# GET routes on an object the walk's {id} (a staff account's id) does not name, -> the code their
# handler answers an admin with: reached, it says there is no such object (the others refused before).
ABSENT_OBJECT: dict[tuple[str, str], str] = {
    ("GET", "/api/admin/central/appliances/{id}"): "appliance_not_found",
}
ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A refused call answers at once; an answer still streaming after this was granted.
ANSWER_S = 10.0


def guarded_routes(app: web.Application) -> list[tuple[str, str]]:
    """(method, path template) of every admin route the app's router serves, and of the dashboard's
    teacher-scoped routes."""
    found: set[tuple[str, str]] = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        methods = ALL_METHODS if route.method == "*" else (route.method,)
        if path.startswith(GUARDED_PREFIX) or path in GUARDED_PATHS:
            found.update((method, path) for method in methods)
        found.update((method, path) for method in methods if (method, path) in TEACHER_VISIBLE)
    return sorted(found)


def declared_access(app: web.Application) -> dict[tuple[str, str], str]:
    return {(spec.method, spec.path): spec.access for spec, _ in app.get(DECLARED, [])}


def snapshot(settings: Settings) -> tuple[dict[str, list[tuple[Any, ...]]], dict[str, int]]:
    """Every database row, and every file in the data folder with its size (the database files aside).

    A Bearer token's `last_used_at` is left out: authenticating records it (at most once a minute),
    which is the token's own bookkeeping, not a change the refused request made."""
    rows = dump_db(settings)
    used = dbaccess.columns(settings, "api_tokens").index("last_used_at")
    rows["api_tokens"] = sorted((row[:used] + row[used + 1 :] for row in rows["api_tokens"]), key=repr)
    db_files = settings.db_path.name
    files = {
        str(path.relative_to(settings.data_dir)): path.stat().st_size
        for path in settings.data_dir.rglob("*")
        if path.is_file() and not path.name.startswith(db_files)
    }
    return rows, files


class Cast:
    """Who walks: a student and a teacher, each by cookie and by token, and an anonymous client;
    plus an admin (for the sanity check) and another teacher whose data must not leak."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.callers: list[tuple[str, ApiClient]] = []
        self.markers: list[str] = []
        self.admin: ApiClient
        self.victim_id = 0

    async def gather(self) -> None:
        server = self.server
        self.admin = await server.make_user("admin")
        student = await server.make_user("student")
        teacher = await server.make_user("teacher")
        # Another teacher, with a class, a problem and a student: what a teacher must never see.
        other = await server.make_user("teacher", username=unique_username("otherteacher"))
        pupil = await server.make_user("student", username=unique_username("otherpupil"))
        klass = await class_with(other, [pupil], "OTHER-CLASS-7Q")
        await problem_for(
            other,
            klass["id"],
            "OTHER-PROBLEM-7Q",
            {"stdin": "", "expected_stdout": "OTHER-SECRET-7Q", "visible": False},
        )
        self.markers = [other.username, pupil.username, "OTHER-CLASS-7Q", "OTHER-PROBLEM-7Q", "OTHER-SECRET-7Q"]
        # The object a path's {id} names: a staff account (so a granted call would change something).
        self.victim_id = other.user_id
        student_script = student.with_token(await student.create_token())
        teacher_script = teacher.with_token(await teacher.create_token())
        self.callers = [
            ("student cookie", student),
            ("student token", student_script),
            ("teacher cookie", teacher),
            ("teacher token", teacher_script),
            ("anonymous", server.client()),
        ]
        # Tokens record their first use: make it now, before the snapshot.
        for _, client in self.callers:
            await client.get("/api/me")

    def url(self, path: str) -> str:
        return re.sub(r"\{[^}]+\}", str(self.victim_id), path)


def refusals(method: str, path: str, who: str) -> set[int]:
    """The statuses that refuse `who` (anything else is a problem)."""
    if (method, path) in HIDDEN:
        return {401, 404} if who == "anonymous" else {404}
    if who == "anonymous":
        return {401}
    if (method, path) in TEACHER_VISIBLE and method == "GET":
        return {404}  # a student (teachers are let through): the middleware hides staff pages from them
    return {403}


async def walk(server: LiveServer, cast: Cast) -> list[str]:
    """Every admin route with every caller; the problems found (empty when all is well)."""
    app = server.app
    routes = guarded_routes(app)
    access = declared_access(app)
    problems: list[str] = []
    for key in routes:
        declared = access.get(key)
        wanted = "staff" if key in TEACHER_VISIBLE else "admin"
        if declared is not None and declared != wanted:
            problems.append(f"{key[0]} {key[1]} is declared access={declared!r}, not {wanted!r}")
    before = snapshot(server.settings)
    for method, path in routes:
        url = cast.url(path)
        for who, client in cast.callers:
            where = f"{method} {url} as {who}"
            visible = (method, path) in TEACHER_VISIBLE and who.startswith("teacher")
            if visible and method == "GET":
                # Perhaps a stream: what it sends in two seconds.
                reply = await client.get_capped(url, seconds=2)
            else:
                try:
                    body = {"json": {}} if method in UNSAFE else {}
                    request = client.request(method, url, **body)
                    reply = await asyncio.wait_for(request, ANSWER_S)
                except TimeoutError:
                    problems.append(f"{where}: still answering after {ANSWER_S} s (a granted stream?)")
                    continue
            if visible:
                leaked = [m for m in cast.markers if m in reply.text]
                if leaked:
                    problems.append(f"{where}: shows another teacher's data {leaked}")
                continue
            refused = refusals(method, path, who)
            if reply.status not in refused:
                problems.append(f"{where}: answered {reply.status}, not {sorted(refused)}: {reply.body[:200]!r}")
            elif reply.error_code == "csrf_failed":
                problems.append(f"{where}: refused as cross-site, so the role check was never reached")
    after = snapshot(server.settings)
    if after != before:
        tables = sorted(t for t in {*before[0], *after[0]} if before[0].get(t) != after[0].get(t))
        files = sorted(set(before[1].items()) ^ set(after[1].items()))
        problems.append(f"the walk changed data: tables {tables}, files {files}")
    return problems


@asynccontextmanager
async def serve(settings: Settings, extra: Routes | None = None) -> AsyncIterator[LiveServer]:
    """The app as `labrunner serve` builds it (no Docker), with `extra` routes added to it."""
    app = create_app(settings, sandbox=FakeSandbox(NoExecutor))
    if extra is not None:
        add_routes(app, extra)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    live = LiveServer(str(test_server.make_url("")).rstrip("/"), settings, app, test_server)
    try:
        yield live
    finally:
        await live.close()


@pytest.fixture
async def server(settings_factory: Any) -> AsyncIterator[LiveServer]:
    async with serve(settings_factory()) as live:
        yield live


async def test_no_one_but_an_admin_gets_through_any_admin_route(server: LiveServer) -> None:
    cast = Cast(server)
    await cast.gather()
    routes = guarded_routes(server.app)
    # The walk sees the admin routes as they are today (and whatever is added later).
    assert {
        ("POST", "/api/admin/backups"),
        ("GET", "/api/admin/jobs/history"),
        ("GET", "/api/admin/purges"),
        ("GET", "/api/admin/accounts"),
        ("POST", "/api/admin/accounts"),
        ("PATCH", "/api/admin/accounts/{id}"),
        ("POST", "/api/admin/accounts/{id}/password"),
        ("GET", "/metrics"),
        *TEACHER_VISIBLE,
    } <= set(routes), routes
    assert await walk(server, cast) == []
    # The refusals are about the role: an admin gets through every GET (/metrics with the admin's
    # token: it refuses every session, an admin's too).
    admin_script = cast.admin.with_token(await cast.admin.create_token())
    for method, path in routes:
        if method == "GET":
            client = admin_script if path in GUARDED_PATHS else cast.admin
            reply = await client.get_capped(cast.url(path), seconds=1)
            if (method, path) in ABSENT_OBJECT:
                assert (reply.status, reply.error_code) == (404, ABSENT_OBJECT[method, path]), (path, reply)
                continue
            assert reply.status not in (401, 403, 404), (path, reply)


async def test_the_walk_catches_an_admin_route_a_teacher_can_call(settings_factory: Any) -> None:
    """A route mistakenly open to staff, which disables the account it names."""
    planted = Routes()

    @planted.route("PATCH", "/api/admin/planted/{id}", access="staff", summary="a mistake")
    async def disable(request: web.Request) -> web.Response:
        current_user(request)
        await request.app[DB].execute("UPDATE users SET disabled = 1 WHERE id = ?", (int(request.match_info["id"]),))
        return web.json_response({"ok": True})

    async with serve(settings_factory(), planted) as server:
        cast = Cast(server)
        await cast.gather()
        problems = await walk(server, cast)
        assert any("PATCH /api/admin/planted/{id} is declared access='staff'" in p for p in problems), problems
        assert any(f"/api/admin/planted/{cast.victim_id} as teacher cookie: answered 200" in p for p in problems)
        assert any(f"/api/admin/planted/{cast.victim_id} as teacher token: answered 200" in p for p in problems)
        assert any(p.startswith("the walk changed data: tables ['users']") for p in problems), problems
        # Students got the staff-only refusal, which is still a refusal: nothing more is reported.
        assert not any("as student" in p for p in problems), problems


async def test_the_walk_catches_a_teacher_visible_route_that_leaks(
    settings_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A route on the teacher allow-list that shows every class, not only the teacher's own."""
    planted = Routes()

    @planted.route("GET", "/api/admin/planted-classes", access="staff", summary="a leak")
    async def every_class(request: web.Request) -> web.Response:
        rows = await request.app[DB].fetchall("SELECT name FROM classes")
        return web.json_response({"classes": [row["name"] for row in rows]})

    monkeypatch.setitem(TEACHER_VISIBLE, ("GET", "/api/admin/planted-classes"), "planted for this test")
    async with serve(settings_factory(), planted) as server:
        cast = Cast(server)
        await cast.gather()
        problems = await walk(server, cast)
        assert len(problems) == 2, problems
        for who in ("teacher cookie", "teacher token"):
            assert any(f"as {who}: shows another teacher's data ['OTHER-CLASS-7Q']" in p for p in problems)
