"""Admin: staff accounts (teachers and admins) listed, created, disabled, enabled and reset, and the
page that shows them (`/admin/accounts`; the admin dashboard includes the same partial)."""

from __future__ import annotations

from aiohttp import web

from appliance import staff_accounts
from appliance.accounts import User, hash_token
from appliance.app_keys import ACCOUNTS, DB
from appliance.http.jsonio import body, json_response, path_id
from appliance.http.middleware import AUTH_VIA, SESSION_COOKIE, current_user
from appliance.http.routing import Routes
from appliance.http.shapes import BOOLEAN, INTEGER, STRING, TIMESTAMP, enum, listing, nullable, obj
from appliance.http.views.ui_pages import not_found, page, render
from appliance.validation import F, Schema

routes = Routes()

ACCOUNT = obj(
    id=INTEGER,
    username=STRING,
    role=enum(*staff_accounts.STAFF_ROLES),
    created_at=TIMESTAMP,
    disabled=BOOLEAN,
    last_login_at=nullable(TIMESTAMP),
)
# The password only when the server generated it, in this one answer.
WITH_PASSWORD = obj(account=ACCOUNT, password=nullable(STRING), generated=BOOLEAN)
_PASSWORD = F(
    "string", required=False, nullable=True, max_length=1024, description="omit or null to generate a strong one"
)
CREATE = Schema(
    {
        "username": F("string", max_length=64),
        "role": F("string", enum=staff_accounts.STAFF_ROLES),
        "password": _PASSWORD,
    }
)
UPDATE = Schema({"disabled": F("boolean", description="true ends the account's sessions and revokes its tokens")})
RESET = Schema({"password": _PASSWORD})


@routes.route(
    "GET",
    "/api/admin/accounts",
    access="admin",
    summary="Teachers and admins (?role=teacher|admin), with when each last logged in if a session still says so",
    response=listing("accounts", ACCOUNT),
)
async def list_staff_accounts(request: web.Request) -> web.Response:
    role = request.query.get("role") or None
    accounts = await staff_accounts.list_staff(request.app[DB], current_user(request), role)
    return json_response({"accounts": accounts})


@routes.route(
    "POST",
    "/api/admin/accounts",
    access="admin",
    summary="Create a teacher or admin; a password left out is generated and answered only here",
    body=CREATE,
    status=201,
    response=WITH_PASSWORD,
)
async def create_staff_account(request: web.Request) -> web.Response:
    data = await body(request)
    created = await staff_accounts.create(
        request.app[DB],
        request.app[ACCOUNTS],
        current_user(request),
        data["username"],
        data["role"],
        data.get("password"),
    )
    return json_response(created, status=201)


@routes.route(
    "PATCH",
    "/api/admin/accounts/{id}",
    access="admin",
    summary="Disable (ends its sessions, revokes its tokens) or enable a teacher or admin account",
    body=UPDATE,
    response=obj(account=ACCOUNT),
)
async def update_staff_account(request: web.Request) -> web.Response:
    data = await body(request)
    result = await staff_accounts.set_disabled(
        request.app[DB], current_user(request), path_id(request), data["disabled"]
    )
    return json_response(result)


@routes.route(
    "POST",
    "/api/admin/accounts/{id}/password",
    access="admin",
    summary="Reset a teacher's or admin's password (generated when none is given, answered only here);"
    " ends the account's other sessions and revokes its tokens",
    body=RESET,
    response=WITH_PASSWORD,
)
async def reset_staff_password(request: web.Request) -> web.Response:
    data = await body(request)
    result = await staff_accounts.reset_password(
        request.app[DB],
        request.app[ACCOUNTS],
        current_user(request),
        path_id(request),
        data.get("password"),
        caller_session=_session_hash(request),
    )
    return json_response(result)


def _session_hash(request: web.Request) -> str | None:
    """The hash of the session cookie this request was authenticated by (None for a Bearer token)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    return hash_token(cookie) if cookie and request.get(AUTH_VIA) == "cookie" else None


@routes.route(
    "GET", "/admin/accounts", access="anyone", summary="Staff accounts page", response_type="text/html", in_api=False
)
@page(role="staff")
async def staff_accounts_page(request: web.Request, user: User) -> web.Response:
    if user.role != "admin":
        return not_found(request)
    return render(request, "admin-accounts", "Staff accounts")
