"""The web UI's pages: small server-rendered shells whose scripts (ui/static/js) talk to the JSON API.

Every page is a route with `in_api=False`, rendered by Jinja2 (set up in `appliance.runtime`, with
autoescape on) from `ui/templates/pages/<page>.html`, which extends the shell `app.html`. Pages
check the session themselves through `@page(...)`, so a logged-out visitor is sent to the login
page (not shown a JSON 401), and a user with legal texts to accept is sent to accept them first.
Every value put into a page is escaped; the only raw HTML is the problem statement, which
`appliance.markdown` renders from escaped text. Scripts are files (the CSP forbids inline
scripts). Nothing here reads hidden test data: the problem page uses `problems.readable_row`,
which carries no test cases at all.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Literal
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web
from markupsafe import Markup

from appliance import legal as legal_texts
from appliance import markdown, problem_assets, problems
from appliance.accounts import User
from appliance.app_keys import DB, MODES, SETTINGS, TLS
from appliance.errors import NotFound
from appliance.http.middleware import USER, session_was_ended
from appliance.http.routing import Handler, Routes
from appliance.http.runner_access import warm_sandbox
from appliance.lan import lan_addresses
from runner.languages import LANGUAGES

routes = Routes()

_NAV = {
    "anonymous": (("/login", "Log in"), ("/register", "Create an account")),
    "student": (("/", "Problems"), ("/scratch", "Scratchpad"), ("/submissions", "My submissions")),
    "staff": (
        ("/teach", "Teaching"),
        ("/teach/submissions", "Submissions"),
        ("/teach/problem-sets", "Problem sets"),
        ("/scratch", "Scratchpad"),
    ),
}
# A page handler behind `@page`: called with the request and its User (None only on role="anyone" pages).
PageHandler = Callable[[web.Request, Any], Awaitable[web.StreamResponse]]


def render(
    request: web.Request,
    page: str,
    title: str,
    *,
    values: dict[str, object] | None = None,
    status: int = 200,
    main_class: str = "",
) -> web.Response:
    """The page `ui/templates/pages/<page>.html` inside the shell, with its script `js/pages/<page>.js`."""
    user: User | None = request.get(USER)
    nav = _NAV["anonymous" if user is None else "staff" if user.is_staff else "student"]
    shell = {"page": page, "title": title, "user": user, "nav": nav, "current": request.path, "main_class": main_class}
    # Every page shows the maintenance notice, and its script asks now and then whether it changed.
    shell["maintenance"] = request.app[MODES].modes.maintenance
    shell["maintenance_poll_s"] = request.app[SETTINGS].maintenance_poll_s
    # For pages/_tls_fingerprint.html: what a teacher compares with the browser's certificate view.
    served = request.app[TLS]
    shell["tls_fingerprint"] = served.fingerprint if served is not None else None
    response = aiohttp_jinja2.render_template(f"pages/{page}.html", request, {**shell, **(values or {})}, status=status)
    # Pages name the logged-in user: never keep them in a shared classroom browser's cache.
    response.headers["Cache-Control"] = "no-store"
    return response


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})


def _here(request: web.Request) -> str:
    """This page's path and query, as a `next=` value for the login page to come back to."""
    return quote(str(request.rel_url), safe="")


def page(*, role: Literal["anyone", "user", "staff"] = "user", legal: bool = True) -> Callable[[PageHandler], Handler]:
    """The gate in front of a page handler, which is then called with the request and the user.

    role "user" or "staff": a visitor who is not logged in is sent to log in (and back here after);
    "staff": a student gets "not found"; "anyone": the handler also gets visitors (user None).
    legal: a logged-in user with new terms or privacy notice to accept is sent to accept them first.
    """

    def decorate(handler: PageHandler) -> Handler:
        @functools.wraps(handler)
        async def gated(request: web.Request) -> web.StreamResponse:
            user: User | None = request.get(USER)
            if user is None and role != "anyone":
                return _redirect(f"/login?next={_here(request)}")
            if user is not None and legal and await legal_texts.pending_for(request.app[DB], user.id):
                return _redirect(f"/accept-legal?next={_here(request)}")
            if role == "staff" and not (user is not None and user.is_staff):
                return not_found(request)
            if user is not None:
                warm_sandbox(request, user.id)
            return await handler(request, user)

        return gated

    return decorate


def not_found(request: web.Request) -> web.Response:
    return render(request, "not-found", "Page not found", status=404)


def _path_id(request: web.Request) -> int | None:
    raw = request.match_info["id"]
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None  # '²'.isdigit() is True


def _route(path: str, summary: str) -> Callable[[Handler], Handler]:
    return routes.route("GET", path, access="anyone", summary=summary, response_type="text/html", in_api=False)


def student_address(request: web.Request) -> str:
    """The address students should type: this page's own, unless the teacher opened it as
    localhost (the desktop window) — then the machine's LAN addresses, IP first (DESIGN: tablets
    often cannot resolve names)."""
    host = request.url.host or ""
    if host not in ("localhost", "127.0.0.1", "::1") and not host.startswith("127."):
        return f"{request.scheme}://{request.host}"
    port = request.url.port or request.app[SETTINGS].port
    found = [f"http://{address}:{port}" for address in lan_addresses()]
    return " or ".join(found) or f"{request.scheme}://{request.host}"


def _limits(request: web.Request, page_id: object) -> dict[str, object]:
    settings = request.app[SETTINGS]
    return {
        "id": page_id,
        "default_time_limit_ms": settings.default_time_limit_ms,
        "max_time_limit_ms": settings.max_time_limit_ms,
        "default_memory_limit_mb": settings.default_memory_limit_mb,
        "max_memory_limit_mb": settings.max_memory_limit_mb,
    }


@_route("/", "The app: the login page, a student's problems or a teacher's classes")
@page(role="anyone")
async def home_page(request: web.Request, user: User | None) -> web.Response:
    if user is None:
        return await _login(request)
    if user.is_staff:
        return _redirect("/teach")
    return render(request, "student-home", "Your problems")


@_route("/login", "Log-in page")
@page(role="anyone", legal=False)
async def login_page(request: web.Request, user: User | None) -> web.Response:
    if user is not None:
        return _redirect("/")
    return await _login(request)


async def _login(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    # A browser whose session a login elsewhere ended (exam mode) is told so, not just asked to log in.
    values = {"min_age": settings.min_self_register_age, "session_ended": await session_was_ended(request)}
    return render(request, "login", "Log in", values=values, main_class="narrow")


@_route("/register", "Student self-registration page (age gate, legal acceptance)")
@page(role="anyone", legal=False)
async def register_page(request: web.Request, user: User | None) -> web.Response:
    if user is not None:
        return _redirect("/")
    settings = request.app[SETTINGS]
    versions = await legal_texts.current_versions(request.app[DB])
    return render(
        request,
        "register",
        "Create a student account",
        values={
            "min_age": settings.min_self_register_age,
            "password_min": settings.password_min_length,
            "terms_version": versions["terms"],
            "privacy_version": versions["privacy"],
        },
        main_class="narrow",
    )


@_route("/accept-legal", "Accept changed terms or privacy notice")
@page(role="anyone", legal=False)
async def accept_legal_page(request: web.Request, user: User | None) -> web.Response:
    if user is None:
        return _redirect("/login")  # no next=: after logging in, "/" asks for acceptance if it is still due
    versions = await legal_texts.current_versions(request.app[DB])
    first_time = not await legal_texts.ever_accepted(request.app[DB], user.id)
    return render(
        request,
        "accept-legal",
        "Before you start" if first_time else "Please review the changes",
        values={"terms_version": versions["terms"], "privacy_version": versions["privacy"], "first_time": first_time},
        main_class="narrow",
    )


@_route("/problems/{id}", "A problem: statement, editor, run and submit")
@page(role="user")
async def problem_page(request: web.Request, user: User) -> web.Response:
    problem_id = _path_id(request)
    try:
        if problem_id is None:
            raise NotFound("not_found", "no such problem")
        row = await problems.readable_row(request.app[DB], user, problem_id)
    except NotFound:
        return not_found(request)
    # The statement may show the problem's own assets by name (images, data files), nothing else.
    assets = await problem_assets.list_assets(request.app[DB], request.app[SETTINGS], user, problem_id)
    language = LANGUAGES.get(row["language"])
    return render(
        request,
        "problem",
        row["title"],
        values={
            "id": row["id"],
            "language": row["language"],
            "language_name": language.name if language else row["language"],
            "time_limit": f"{row['time_limit_ms'] / 1000:g}",
            "memory_limit": row["memory_limit_mb"],
            # The one raw HTML value: markdown.render escapes the teacher's text itself.
            "statement_html": Markup(markdown.render(row["statement"], {a["name"]: a["url"] for a in assets})),
            # Staff open this page from "View as a student": it is their preview, not a student's page.
            "preview": user.is_staff,
        },
        main_class="wide",
    )


@_route("/scratch", "Scratchpad: write and run code in any language")
@page(role="user")
async def scratch_page(request: web.Request, user: User) -> web.Response:
    return render(request, "scratch", "Scratchpad", main_class="wide")


@_route("/submissions", "The student's own submissions")
@page(role="user")
async def submissions_page(request: web.Request, user: User) -> web.Response:
    if user.is_staff:
        return _redirect("/teach/submissions")
    return render(request, "submissions", "My submissions")


@_route("/submissions/{id}", "One submission: code and results")
@page(role="user")
async def submission_page(request: web.Request, user: User) -> web.Response:
    page_id = _path_id(request)
    if page_id is None:
        return not_found(request)
    values = {"id": page_id, "max_comment_chars": request.app[SETTINGS].max_comment_chars}
    return render(request, "submission", "Submission", values=values, main_class="wide")


@_route("/teach", "Teacher's home: classes and problems")
@page(role="staff")
async def teach_page(request: web.Request, user: User) -> web.Response:
    return render(request, "teach-home", "Teaching")


@_route("/teach/classes/{id}", "A class: roster, join code, gradebook")
@page(role="staff")
async def teach_class_page(request: web.Request, user: User) -> web.Response:
    return _class_page(request, "teach-class", "Class", "wide")


@_route("/teach/classes/{id}/print", "A class's join code, ready to print")
@page(role="staff")
async def teach_class_print_page(request: web.Request, user: User) -> web.Response:
    return _class_page(request, "teach-class-print", "Join code", "print-page")


def _class_page(request: web.Request, name: str, title: str, main_class: str) -> web.Response:
    """A teacher's page about one class; it carries the address students should open."""
    page_id = _path_id(request)
    if page_id is None:
        return not_found(request)
    values = {"id": page_id, "address": student_address(request)}
    return render(request, name, title, values=values, main_class=main_class)


@_route("/teach/problems/new", "Create a problem")
@page(role="staff")
async def teach_new_problem_page(request: web.Request, user: User) -> web.Response:
    return render(request, "teach-problem", "New problem", values=_limits(request, ""), main_class="wide")


@_route("/teach/problems/{id}", "Edit a problem, check a solution, rejudge")
@page(role="staff")
async def teach_problem_page(request: web.Request, user: User) -> web.Response:
    page_id = _path_id(request)
    if page_id is None:
        return not_found(request)
    return render(request, "teach-problem", "Edit problem", values=_limits(request, page_id), main_class="wide")


@_route("/teach/submissions", "Submissions of a teacher's problems, by problem, class or student")
@page(role="staff")
async def teach_submissions_page(request: web.Request, user: User) -> web.Response:
    return render(request, "teach-submissions", "Submissions", main_class="wide")
