from __future__ import annotations

from aiohttp import web

from appliance import exams, legal
from appliance.app_keys import ACCOUNTS, DB, SETTINGS
from appliance.http.jsonio import body, json_response, path_id
from appliance.http.middleware import SESSION_COOKIE, USER, client_address, current_user
from appliance.http.routing import Routes
from appliance.http.runner_access import warm_sandbox
from appliance.http.shapes import INTEGER, ME, STRING, TIMESTAMP, listing, nullable, obj
from appliance.http.shapes import USER as ACCOUNT
from appliance.settings import Settings
from appliance.validation import F, Schema

# What the token routes answer (the secret `token` only once, on creation).
TOKEN = obj(
    id=INTEGER, name=STRING, created_at=TIMESTAMP, last_used_at=nullable(TIMESTAMP), expires_at=nullable(TIMESTAMP)
)

routes = Routes()

REGISTER = Schema(
    {
        "username": F("string", max_length=64),
        "password": F("string", max_length=1024),
        "birthdate": F("string", max_length=32, description="YYYY-MM-DD"),
        "accept_terms": F("string", max_length=64, description="the terms version shown"),
        "accept_privacy": F("string", max_length=64, description="the privacy version shown"),
    }
)
LOGIN = Schema({"username": F("string", max_length=64), "password": F("string", max_length=1024)})


def token_schema(settings: Settings) -> Schema:
    return Schema(
        {
            "name": F("string", min_length=1, max_length=100),
            "expires_in_days": F(
                "integer",
                required=False,
                nullable=True,
                minimum=1,
                maximum=settings.token_max_days,
                description=f"days until the token stops working (default {settings.token_days})",
            ),
        }
    )


CREATE_USER = Schema(
    {
        "username": F("string", max_length=64),
        "password": F("string", max_length=1024),
        "role": F("string", enum=("student", "teacher", "admin")),
        "birthdate": F("string", required=False, nullable=True, max_length=32),
    }
)
ACCEPT = Schema({"accept_terms": F("string", max_length=64), "accept_privacy": F("string", max_length=64)})


async def _me(request: web.Request) -> dict[str, object]:
    user = current_user(request)
    out = user.to_json(request.app[SETTINGS])
    out["pending_legal"] = await legal.pending_for(request.app[DB], user.id)
    return out


@routes.route(
    "POST",
    "/api/auth/register",
    access="anyone",
    summary="Register a student account (age gate, legal acceptance)",
    body=REGISTER,
    status=201,
    response=obj(user=ACCOUNT),
)
async def register(request: web.Request) -> web.Response:
    data = await body(request)
    user = await request.app[ACCOUNTS].register(
        data["username"],
        data["password"],
        data["birthdate"],
        {"terms": data["accept_terms"], "privacy": data["accept_privacy"]},
        address=client_address(request),
    )
    return json_response({"user": user.to_json(request.app[SETTINGS])}, status=201)


@routes.route(
    "POST",
    "/api/auth/login",
    access="anyone",
    summary="Log in; sets the session cookie",
    body=LOGIN,
    response=obj(user=ME),
)
async def login(request: web.Request) -> web.Response:
    data = await body(request)
    user, token = await request.app[ACCOUNTS].login(data["username"], data["password"], client_address(request))
    # During the student's exam this is their one session from now on.
    await exams.after_login(request.app[DB], user, token)
    request[USER] = user
    warm_sandbox(request, user.id)
    response = json_response({"user": await _me(request)})
    settings = request.app[SETTINGS]
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_days * 86400,
        httponly=True,
        samesite="Lax",
        secure=request.secure,
        path="/",
    )
    return response


@routes.route(
    "POST",
    "/api/auth/logout",
    access="user",
    summary="End this session (API tokens stay valid: revoke them with DELETE /api/tokens/{id})",
    before_acceptance=True,
)
async def logout(request: web.Request) -> web.Response:
    await body(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await request.app[ACCOUNTS].logout(cookie)
    response = json_response({"ok": True})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@routes.route(
    "GET",
    "/api/me",
    access="user",
    summary="The caller, with legal texts still to accept",
    before_acceptance=True,
    response=ME,
)
async def me(request: web.Request) -> web.Response:
    return json_response(await _me(request))


@routes.route(
    "POST",
    "/api/me/accept-legal",
    access="user",
    summary="Accept the current terms and privacy versions",
    body=ACCEPT,
    response=ME,
    before_acceptance=True,
)
async def accept_legal(request: web.Request) -> web.Response:
    data = await body(request)
    user = current_user(request)
    await legal.accept(request.app[DB], user.id, {"terms": data["accept_terms"], "privacy": data["accept_privacy"]})
    return json_response(await _me(request))


@routes.route(
    "POST",
    "/api/tokens",
    access="user",
    summary="Create a Bearer token for scripts; it expires (expires_in_days) and is shown only here",
    body=token_schema,
    status=201,
    response=obj(**TOKEN["properties"], token=STRING),
)
async def create_token(request: web.Request) -> web.Response:
    data = await body(request)
    created = await request.app[ACCOUNTS].create_token(
        current_user(request), data["name"].strip(), data.get("expires_in_days")
    )
    return json_response(created, status=201)


@routes.route(
    "GET",
    "/api/tokens",
    access="user",
    summary="The caller's own API tokens (never their secrets)",
    response=listing("tokens", TOKEN),
)
async def list_tokens(request: web.Request) -> web.Response:
    return json_response({"tokens": await request.app[ACCOUNTS].list_tokens(current_user(request))})


@routes.route(
    "DELETE", "/api/tokens/{id}", access="user", summary="Revoke one of the caller's own API tokens", status=204
)
async def revoke_token(request: web.Request) -> web.Response:
    await request.app[ACCOUNTS].revoke_token(current_user(request), path_id(request))
    return web.Response(status=204)


@routes.route(
    "POST",
    "/api/users",
    access="staff",
    summary="Create accounts (teachers: students only)",
    body=CREATE_USER,
    status=201,
    response=obj(user=ACCOUNT),
)
async def create_user(request: web.Request) -> web.Response:
    data = await body(request)
    user = await request.app[ACCOUNTS].create_by(
        current_user(request), data["username"], data["password"], data["role"], data.get("birthdate")
    )
    return json_response({"user": user.to_json(request.app[SETTINGS])}, status=201)
