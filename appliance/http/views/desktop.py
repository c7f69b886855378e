"""The teacher's desktop window's pages: one-time login and setup links, and the Classroom view
for the projector (every LAN address as text and as a QR code, and a class's join code)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from markupsafe import Markup

from appliance import classes, identity, legal, login_links, qr_codes
from appliance.accounts import User
from appliance.app_keys import DB, SETTINGS, TLS
from appliance.errors import AppError
from appliance.http.jsonio import body, json_response
from appliance.http.middleware import SESSION_COOKIE, client_address
from appliance.http.routing import Handler, Routes
from appliance.http.shapes import ME, STRING, obj
from appliance.http.views.ui_pages import page, render
from appliance.lan import lan_addresses
from appliance.validation import F, Schema

routes = Routes()

SETUP = Schema(
    {
        "token": F("string", max_length=200, description="the setup link's token"),
        "admin_username": F("string", max_length=64),
        "admin_password": F("string", max_length=1024),
        "teacher_username": F("string", max_length=64),
        "teacher_password": F("string", max_length=1024),
        "accept_terms": F("string", max_length=64, description="the terms version shown"),
        "accept_privacy": F("string", max_length=64, description="the privacy version shown"),
    }
)
# Where a login link leads: the teacher's page (admins share it).
HOME = "/teach"
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


def _session_cookie(request: web.Request, response: web.StreamResponse, session: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        session,
        max_age=request.app[SETTINGS].session_days * 86400,
        httponly=True,
        samesite="Lax",
        secure=request.secure,
        path="/",
    )


def _refused(request: web.Request, error: AppError) -> web.Response:
    """A refused link: a page for the person in front of the window, with the stable code."""
    values = {"code": error.code, "message": error.message}
    return render(request, "link-refused", "Link not accepted", values=values, status=error.status, main_class="narrow")


def _html_route(path: str, summary: str) -> Callable[[Handler], Handler]:
    return routes.route("GET", path, access="anyone", summary=summary, response_type="text/html", in_api=False)


@_html_route("/desktop/login/{token}", "One-time login link made by `labrunner desktop` (loopback only)")
async def login_link(request: web.Request) -> web.Response:
    try:
        _user, session = await login_links.redeem_login(
            request.app[DB], request.app[SETTINGS], request.match_info["token"], client_address(request)
        )
    except AppError as error:
        return _refused(request, error)
    response = web.Response(status=302, headers={"Location": HOME, "Cache-Control": "no-store"})
    _session_cookie(request, response, session)
    return response


@_html_route("/desktop/setup/{token}", "First-start setup page, from the setup link of `labrunner desktop`")
async def setup_page(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    try:
        await login_links.check_setup_link(request.app[DB], token, client_address(request))
    except AppError as error:
        return _refused(request, error)
    settings = request.app[SETTINGS]
    versions = await legal.current_versions(request.app[DB])
    values = {
        "token": token,
        "password_min": settings.password_min_length,
        "terms_version": versions["terms"],
        "privacy_version": versions["privacy"],
    }
    return render(request, "desktop-setup", "Set up Labrunner", values=values, main_class="narrow")


@routes.route(
    "POST",
    "/api/desktop/setup",
    access="anyone",
    summary="First start: create the admin and the teacher with a setup link's token (loopback only, while no"
    " teacher or admin exists), then log the teacher in",
    body=SETUP,
    status=201,
    response=obj(user=ME, next=STRING),
)
async def complete_setup(request: web.Request) -> web.Response:
    data = await body(request)
    db, settings = request.app[DB], request.app[SETTINGS]
    user, session = await login_links.complete_setup(
        db,
        settings,
        data["token"],
        client_address(request),
        (data["admin_username"], data["admin_password"]),
        (data["teacher_username"], data["teacher_password"]),
        {"terms": data["accept_terms"], "privacy": data["accept_privacy"]},
    )
    me = user.to_json(settings)
    me["pending_legal"] = await legal.pending_for(db, user.id)
    response = json_response({"user": me, "next": HOME}, status=201)
    _session_cookie(request, response, session)
    return response


def student_urls(request: web.Request) -> list[str]:
    """The addresses students type: this page's own, unless it was opened over loopback (the
    desktop window), which no student can reach; then every LAN address of the machine, on the
    port and scheme students use (with TLS on, the window's loopback link is another port, plain)."""
    host = request.url.host or ""
    if host not in _LOOPBACK_HOSTS and not host.startswith("127."):
        return [f"{request.scheme}://{request.host}/"]
    if request.app[TLS] is None:
        port = request.url.port or request.app[SETTINGS].port
        return [f"http://{address}:{port}/" for address in lan_addresses()]
    # With TLS on, the window comes over its own plain loopback port; students use the served one.
    return [f"https://{address}:{request.app[SETTINGS].port}/" for address in lan_addresses()]


def _from_window(request: web.Request) -> bool:
    return login_links.WINDOW_AGENT in request.headers.get("User-Agent", "") and login_links.is_loopback(
        client_address(request)
    )


def _spaced(code: str) -> str:
    # In groups of four, as the printed sheet shows it: it reads aloud and copies off a projector.
    return " ".join(code[i : i + 4] for i in range(0, len(code), 4))


@routes.route(
    "GET",
    "/teach/classroom",
    access="anyone",
    summary="Classroom view for the projector: LAN addresses with QR codes and a class's join code",
    response_type="text/html",
    in_api=False,
)
@page(role="staff")
async def classroom_page(request: web.Request, user: User) -> web.Response:
    db = request.app[DB]
    own = await classes.list_for(db, user)  # a teacher's own classes; an admin's: all
    chosen = own[0] if own else None
    raw = request.query.get("class")
    if raw is not None:
        chosen = next((c for c in own if str(c["id"]) == raw), None)
        if chosen is None:
            return render(request, "not-found", "Page not found", status=404)
    urls = student_urls(request)
    addresses = [{"url": url, "qr": Markup(qr_codes.svg(url, title=f"QR code for {url}"))} for url in urls]
    values = {
        "addresses": addresses,
        "classes": [{"id": c["id"], "name": c["name"]} for c in own],
        "chosen_id": chosen["id"] if chosen else None,
        "chosen_name": chosen["name"] if chosen else "",
        "join_code": _spaced(chosen["join_code"]) if chosen else "",
        # For the teacher to check against the central instance's registration of this appliance.
        "fingerprint": identity.fingerprint(identity.public_key_of(request.app[SETTINGS].data_dir)),
    }
    response = render(request, "classroom", "Classroom", values=values, main_class="wide")
    if _from_window(request):
        # pywebview's bridge (the window's buttons) builds its functions with `new Function` and
        # answers through `eval`: allowed on this page, and only in the window (a loopback peer
        # with the window's user agent), never for a page a student's browser gets.
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self' 'unsafe-eval'; img-src 'self' data: blob:;"
            " style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
        )
    return response
