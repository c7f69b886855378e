"""The web UI's pages: small server-rendered shells whose scripts (ui/static/js) talk to the JSON API.

Every page is a route with `in_api=False`. Pages check the session themselves, so a logged-out
visitor is sent to the login page (not shown a JSON 401), and a user with legal texts to accept
is sent to accept them first. Values put into a page are HTML-escaped; the only raw HTML is the
problem statement, which `appliance.markdown` renders from escaped text. Scripts are files
(the CSP forbids inline scripts). Nothing here reads hidden test data: the problem page uses
`problems.readable_row`, which carries no test cases at all.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from functools import cache
from urllib.parse import quote

from aiohttp import web

from appliance import files, legal, markdown, problems
from appliance.accounts import User
from appliance.cli import lan_addresses
from appliance.errors import NotFound
from appliance.http.keys import DB, SETTINGS
from appliance.http.middleware import USER
from appliance.http.routing import Handler, route
from runner.languages import LANGUAGES
from ui import TEMPLATE_DIR

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_SLOT = re.compile(r"\{(\w+)\}")
_NAV = {
    "student": (("/", "Problems"), ("/scratch", "Scratchpad"), ("/submissions", "My submissions")),
    "staff": (("/teach", "Teaching"), ("/teach/submissions", "Submissions"), ("/scratch", "Scratchpad")),
}


@cache
def _template(name: str) -> str:
    return (TEMPLATE_DIR / name).read_text(encoding="utf-8")


def _fill(text: str, values: dict[str, object]) -> str:
    """Replace {{name}} with the escaped value; names ending in _html are inserted as they are."""

    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        raw = values[key]
        return str(raw) if key.endswith("_html") else html.escape(str(raw), quote=True)

    return _PLACEHOLDER.sub(value, text)


def _nav(user: User | None, current: str) -> str:
    if user is None:
        links = (("/login", "Log in"), ("/register", "Create an account"))
        items = "".join(_nav_link(href, text, current) for href, text in links)
        return f'<nav aria-label="Main"><ul class="nav">{items}</ul></nav>'
    links = _NAV["staff" if user.is_staff else "student"]
    items = "".join(_nav_link(href, text, current) for href, text in links)
    who = html.escape(user.username) + (f" ({user.role})" if user.is_staff else "")
    return (
        f'<nav aria-label="Main"><ul class="nav">{items}</ul></nav>'
        f'<div class="who"><span class="username">{who}</span>'
        '<button type="button" id="logout-button" class="link-button">Log out</button></div>'
    )


def _nav_link(href: str, text: str, current: str) -> str:
    here = ' aria-current="page"' if href == current else ""
    return f'<li><a href="{href}"{here}>{html.escape(text)}</a></li>'


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
    # Pages with an editor share its markup (_workbench.html) through the {{workbench_html}} slot.
    fill = {"workbench_html": _template("pages/_workbench.html"), **(values or {})}
    slots = {
        "title": html.escape(title),
        "page": page,
        "role": user.role if user else "",
        "user_id": str(user.id) if user else "",
        "nav": _nav(user, request.path),
        "main_class": main_class,
        "content": _fill(_template(f"pages/{page}.html"), fill),
    }
    # One pass, so text inside a slot (a statement mentioning "{title}") is never replaced again.
    shell = _SLOT.sub(lambda match: slots[match.group(1)], _template("app.html"))
    return web.Response(
        text=shell,
        status=status,
        content_type="text/html",
        charset="utf-8",
        # Pages name the logged-in user: never keep them in a shared classroom browser's cache.
        headers={"Cache-Control": "no-store"},
    )


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})


def _here(request: web.Request) -> str:
    """This page's path and query, as a `next=` value for the login page to come back to."""
    return quote(str(request.rel_url), safe="")


async def _gate(request: web.Request, *, staff: bool = False) -> User | web.Response:
    """The logged-in user allowed on this page, or the response to send instead."""
    user: User | None = request.get(USER)
    if user is None:
        return _redirect(f"/login?next={_here(request)}")
    if await legal.pending_for(request.app[DB], user.id):
        return _redirect(f"/accept-legal?next={_here(request)}")
    if staff and not user.is_staff:
        return not_found(request)
    return user


def not_found(request: web.Request) -> web.Response:
    return render(request, "not-found", "Page not found", status=404)


def _path_id(request: web.Request) -> int | None:
    raw = request.match_info["id"]
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None  # '²'.isdigit() is True


def _page(path: str, summary: str) -> Callable[[Handler], Handler]:
    return route("GET", path, access="anyone", summary=summary, content_type="text/html", in_api=False)


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


@_page("/", "The app: the login page, a student's problems or a teacher's classes")
async def home_page(request: web.Request) -> web.Response:
    user: User | None = request.get(USER)
    if user is None:
        return await login_page(request)
    gated = await _gate(request)
    if isinstance(gated, web.Response):
        return gated
    if gated.is_staff:
        return _redirect("/teach")
    return render(request, "student-home", "Your problems")


@_page("/login", "Log-in page")
async def login_page(request: web.Request) -> web.Response:
    if request.get(USER) is not None and request.path == "/login":
        return _redirect("/")
    settings = request.app[SETTINGS]
    return render(request, "login", "Log in", values={"min_age": settings.min_self_register_age}, main_class="narrow")


@_page("/register", "Student self-registration page (age gate, legal acceptance)")
async def register_page(request: web.Request) -> web.Response:
    if request.get(USER) is not None:
        return _redirect("/")
    settings = request.app[SETTINGS]
    versions = await legal.current_versions(request.app[DB])
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


@_page("/accept-legal", "Accept changed terms or privacy notice")
async def accept_legal_page(request: web.Request) -> web.Response:
    if request.get(USER) is None:
        return _redirect("/login")
    versions = await legal.current_versions(request.app[DB])
    return render(
        request,
        "accept-legal",
        "Please review the changes",
        values={"terms_version": versions["terms"], "privacy_version": versions["privacy"]},
        main_class="narrow",
    )


@_page("/problems/{id}", "A problem: statement, editor, run and submit")
async def problem_page(request: web.Request) -> web.Response:
    gated = await _gate(request)
    if isinstance(gated, web.Response):
        return gated
    problem_id = _path_id(request)
    try:
        if problem_id is None:
            raise NotFound("not_found", "no such problem")
        row = await problems.readable_row(request.app[DB], gated, problem_id)
    except NotFound:
        return not_found(request)
    # The statement may show the problem's own assets by name (images, data files), nothing else.
    assets = await files.list_assets(request.app[DB], request.app[SETTINGS], gated, problem_id)
    language = LANGUAGES.get(row["language"])
    return render(
        request,
        "problem",
        row["title"],
        values={
            "id": row["id"],
            "title": row["title"],
            "language": row["language"],
            "language_name": language.name if language else row["language"],
            "time_limit": f"{row['time_limit_ms'] / 1000:g}",
            "memory_limit": row["memory_limit_mb"],
            "statement_html": markdown.render(row["statement"], {a["name"]: a["url"] for a in assets}),
        },
        main_class="wide",
    )


@_page("/scratch", "Scratchpad: write and run code in any language")
async def scratch_page(request: web.Request) -> web.Response:
    gated = await _gate(request)
    if isinstance(gated, web.Response):
        return gated
    return render(request, "scratch", "Scratchpad", main_class="wide")


@_page("/submissions", "The student's own submissions")
async def submissions_page(request: web.Request) -> web.Response:
    gated = await _gate(request)
    if isinstance(gated, web.Response):
        return gated
    if gated.is_staff:
        return _redirect("/teach/submissions")
    return render(request, "submissions", "My submissions")


@_page("/submissions/{id}", "One submission: code and results")
async def submission_page(request: web.Request) -> web.Response:
    gated = await _gate(request)
    if isinstance(gated, web.Response):
        return gated
    page_id = _path_id(request)
    if page_id is None:
        return not_found(request)
    return render(request, "submission", "Submission", values={"id": page_id}, main_class="wide")


@_page("/teach", "Teacher's home: classes and problems")
async def teach_page(request: web.Request) -> web.Response:
    gated = await _gate(request, staff=True)
    if isinstance(gated, web.Response):
        return gated
    return render(request, "teach-home", "Teaching")


@_page("/teach/classes/{id}", "A class: roster, join code, gradebook")
async def teach_class_page(request: web.Request) -> web.Response:
    return await _class_page(request, "teach-class", "Class", "wide")


@_page("/teach/classes/{id}/print", "A class's join code, ready to print")
async def teach_class_print_page(request: web.Request) -> web.Response:
    return await _class_page(request, "teach-class-print", "Join code", "print-page")


async def _class_page(request: web.Request, page: str, title: str, main_class: str) -> web.Response:
    """A teacher's page about one class; it carries the address students should open."""
    gated = await _gate(request, staff=True)
    if isinstance(gated, web.Response):
        return gated
    page_id = _path_id(request)
    if page_id is None:
        return not_found(request)
    values = {"id": page_id, "address": student_address(request)}
    return render(request, page, title, values=values, main_class=main_class)


@_page("/teach/problems/new", "Create a problem")
async def teach_new_problem_page(request: web.Request) -> web.Response:
    gated = await _gate(request, staff=True)
    if isinstance(gated, web.Response):
        return gated
    return render(request, "teach-problem", "New problem", values=_limits(request, ""), main_class="wide")


@_page("/teach/problems/{id}", "Edit a problem, check a solution, rejudge")
async def teach_problem_page(request: web.Request) -> web.Response:
    gated = await _gate(request, staff=True)
    if isinstance(gated, web.Response):
        return gated
    page_id = _path_id(request)
    if page_id is None:
        return not_found(request)
    return render(request, "teach-problem", "Edit problem", values=_limits(request, page_id), main_class="wide")


@_page("/teach/submissions", "Submissions of a teacher's problems, by problem, class or student")
async def teach_submissions_page(request: web.Request) -> web.Response:
    gated = await _gate(request, staff=True)
    if isinstance(gated, web.Response):
        return gated
    return render(request, "teach-submissions", "Submissions", main_class="wide")
