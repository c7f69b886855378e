"""Middlewares: error shaping, security headers, authentication, CSRF and the legal gate."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from yarl import URL

from appliance import exams, legal
from appliance.accounts import Accounts, User
from appliance.app_keys import ACCOUNTS, DB, PRESENCE, SETTINGS
from appliance.db import UnstorableText
from appliance.errors import AppError, Forbidden, NotFound, RateLimited, Unauthorized, Unavailable
from appliance.http.routing import spec_of

log = logging.getLogger(__name__)

SESSION_COOKIE = "labrunner_session"
# Who is calling and how they proved it, set by auth_middleware for every request.
USER = web.RequestKey("user", User | None)
AUTH_VIA = web.RequestKey("auth_via", str | None)
# The page a browser gets for an unknown address (set with the views; the pages import this module).
NOT_FOUND_PAGE = web.AppKey("not_found_page", Callable[[web.Request], web.StreamResponse])
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


def error_response(error: AppError) -> web.Response:
    headers: dict[str, str] = {}
    retry_after = getattr(error, "retry_after", None)
    if isinstance(error, RateLimited | Unavailable) and retry_after:
        headers["Retry-After"] = str(retry_after)
    return web.json_response(error.to_json(), status=error.status, headers=headers)


@web.middleware
async def errors_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every error leaves as the same JSON shape, including aiohttp's own 404/405/413."""
    try:
        return await handler(request)
    except AppError as error:
        return error_response(error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        not_found_page = request.app.get(NOT_FOUND_PAGE)
        if exc.status == 404 and not_found_page is not None and _wants_page(request):
            return not_found_page(request)
        code = _STATUS_CODES.get(exc.status, "http_error")
        message = "no such page" if exc.status == 404 else exc.reason
        if exc.status == 413:
            message = f"the request body is larger than {request.app[SETTINGS].max_body_bytes} bytes"
        response = web.json_response({"error": {"code": code, "message": message}}, status=exc.status)
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except UnstorableText:
        # Text outside a JSON body (a form field, a file name, an imported file) on PostgreSQL.
        message = "text may not contain the NUL character (U+0000)"
        return web.json_response({"error": {"code": "text_nul", "message": message}}, status=400)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        message = "something went wrong on the server; it was logged"
        return web.json_response({"error": {"code": "internal_error", "message": message}}, status=500)


@web.middleware
async def security_headers_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Outermost, so error responses made by errors_middleware get the headers too."""
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    # Pages load nothing from anywhere but the appliance itself (and the asset host, if one is set).
    assets = _origin_of(request.app[SETTINGS].asset_base_url)
    media = f"'self' data: blob:{' ' + assets if assets else ''}"
    response.headers.setdefault(
        "Content-Security-Policy",
        f"default-src 'self'; img-src {media}; media-src {media}; style-src 'self' 'unsafe-inline';"
        " frame-ancestors 'none'",
    )
    if request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
    elif request.path.startswith("/static/"):
        # Revalidate (cheap: ETag/Last-Modified) so an upgrade's scripts replace cached old ones.
        response.headers.setdefault("Cache-Control", "no-cache")
    return response


def _wants_page(request: web.Request) -> bool:
    """A person following a link, not a script: they get the friendly page instead of JSON."""
    return (
        request.method == "GET"
        and not request.path.startswith("/api/")
        and "text/html" in request.headers.get("Accept", "")
    )


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _origin_ok(request: web.Request) -> bool:
    """Datasette-style CSRF check: a browser names where the request came from; it must be us."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    return _normalised_origin(origin) == _normalised_origin(f"{request.scheme}://{request.host}")


def _normalised_origin(url: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) as a browser means them: case folded, the default port spelled out;
    None for anything that is not an origin (``null``, a path, garbage)."""
    try:
        parsed = URL(url)
    except ValueError:
        return None
    if not parsed.is_absolute() or parsed.scheme not in ("http", "https") or not parsed.host:
        return None
    if parsed.path not in ("", "/") or parsed.query_string or parsed.fragment or parsed.user:
        return None
    return parsed.scheme, parsed.host.lower().rstrip("."), parsed.port


async def authenticate(request: web.Request) -> tuple[User | None, str | None]:
    accounts: Accounts = request.app[ACCOUNTS]
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("invalid_token", "Authorization must be 'Bearer <token>'")
        user = await accounts.user_for_bearer(token.strip())
        if user is None:
            raise Unauthorized("invalid_token", "that API token is unknown or revoked")
        return user, "bearer"
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        user = await accounts.user_for_session(cookie)
        return user, "cookie"
    return None, None


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    user, via = await authenticate(request)
    if via == "cookie" and user is not None and user.role == "student":
        # A second browser logged in before the exam began: from now on it is logged out, and told why.
        if await exams.end_if_superseded(request.app[DB], user, request.cookies[SESSION_COOKIE]):
            user = None
    request[USER] = user
    request[AUTH_VIA] = via
    # A WebSocket opens with a GET, but what it carries acts for the user: it is checked as unsafe
    # (cross-site WebSocket hijacking), and browsers send Origin with its handshake.
    websocket = request.headers.get("Upgrade", "").lower() == "websocket"
    spec = spec_of(request)
    exempt = spec is not None and spec.csrf_exempt
    if (request.method not in SAFE_METHODS or websocket) and via != "bearer" and not exempt:
        # Unauthenticated unsafe requests (login, register) are checked too, against login CSRF;
        # a request carrying our cookie must prove it came from our own pages.
        has_browser_headers = "Origin" in request.headers or "Sec-Fetch-Site" in request.headers
        if (via == "cookie" or has_browser_headers) and not _origin_ok(request):
            raise Forbidden("csrf_failed", "cross-site request refused: it did not come from this appliance's pages")
    if user is not None:
        request.app[PRESENCE].seen(user.id)
        if via == "bearer" and user.role == "student":
            await exams.refuse_token_during_exam(request.app[DB], user)
    if spec is None or spec.access == "anyone":
        return await handler(request)
    if user is None:
        if await session_was_ended(request):
            raise Unauthorized(
                "session_ended", "you logged in elsewhere during your exam, which ended this session; log in again"
            )
        raise Unauthorized("login_required", "please log in first")
    if spec.access == "staff" and not user.is_staff:
        raise (
            NotFound("not_found", "no such page")
            if spec.method == "GET"
            else Forbidden("forbidden", "only teachers and admins can do this")
        )
    if spec.access == "admin" and user.role != "admin":
        raise Forbidden("forbidden", "only admins can do this")
    if not spec.before_acceptance:
        pending = await legal.pending_for(request.app[DB], user.id)
        if pending:
            raise Forbidden(
                "legal_acceptance_required",
                "the terms or privacy notice changed; please read and accept them first: "
                + ", ".join(f"{p['kind']} {p['version']}" for p in pending),
            )
    return await handler(request)


async def session_was_ended(request: web.Request) -> bool:
    """The request carries a session cookie that a login elsewhere ended (exam mode)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    return bool(cookie) and await exams.session_was_ended(request.app[DB], cookie)


async def still_allowed(request: web.Request, user: User) -> bool:
    """A long stream's caller is still logged in with the same role: not logged out, disabled, reset
    or ended by a login elsewhere since the stream opened."""
    try:
        now, _ = await authenticate(request)
    except AppError:
        return False
    return now is not None and now.id == user.id and now.role == user.role


def current_user(request: web.Request) -> User:
    user = request.get(USER)
    if user is None:
        raise Unauthorized("login_required", "please log in first")
    return user


def client_address(request: web.Request) -> str:
    return request.remote or "unknown"
