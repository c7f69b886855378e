"""Routes declared once with who may call them and what body they take.

The same declarations register aiohttp routes, drive the auth middleware and generate the
OpenAPI document, so the three cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from appliance.settings import Settings
from appliance.validation import Schema

Access = Literal["anyone", "user", "staff", "admin"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# A schema, or a factory for schemas whose limits come from settings.
Body = Schema | Callable[[Settings], Schema]
# A JSON Schema (OpenAPI 3.0 flavour: `nullable`) of what a route answers on success.
JsonSchema = dict[str, Any]
# Statuses that answer with no body.
EMPTY_STATUSES = (204, 304)


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    access: Access
    summary: str
    body: Body | None = None
    # Reachable before the user has accepted new legal texts (so they can read and accept them).
    before_acceptance: bool = False
    # Every status a success answers with (2xx, and 304 for conditional GETs): exactly these are documented.
    status: tuple[int, ...] = (200,)
    # The request body's media type: JSON when `body` is declared, None for a route that takes no body.
    request_type: str | None = None
    # The media type of a successful answer's body, and (for JSON) its schema.
    response_type: str = "application/json"
    response: JsonSchema | None = None
    in_api: bool = True
    # Authenticated by what the body carries (a signed sync bundle), never by a cookie: it acts for
    # no session, so the cross-site check of cookie requests does not apply. Only that route sets it.
    csrf_exempt: bool = False


# Every route an app serves through `add_routes`, in order: the OpenAPI document is built from it.
DECLARED = web.AppKey("declared_routes", list[tuple[RouteSpec, Handler]])


class Routes:
    """One views module's routes (like aiohttp's `RouteTableDef`): `@routes.route(...)` declares a
    handler, and `appliance.http.views.setup_routes` adds each module's table to the app."""

    def __init__(self) -> None:
        self._declared: list[tuple[RouteSpec, Handler]] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        access: Access,
        summary: str,
        body: Body | None = None,
        before_acceptance: bool = False,
        status: int | tuple[int, ...] = 200,
        request_type: str | None = None,
        response_type: str = "application/json",
        response: JsonSchema | None = None,
        in_api: bool = True,
        csrf_exempt: bool = False,
    ) -> Callable[[Handler], Handler]:
        if body is not None:
            assert request_type in (None, "application/json"), "a declared body is JSON"
            request_type = "application/json"
        spec = RouteSpec(
            method,
            path,
            access,
            summary,
            body,
            before_acceptance,
            (status,) if isinstance(status, int) else status,
            request_type,
            response_type,
            response,
            in_api,
            csrf_exempt,
        )

        def declare(handler: Handler) -> Handler:
            handler.route_spec = spec  # type: ignore[attr-defined]
            self._declared.append((spec, handler))
            return handler

        return declare

    def __iter__(self) -> Iterator[tuple[RouteSpec, Handler]]:
        return iter(self._declared)


def spec_of(request: web.Request) -> RouteSpec | None:
    handler = request.match_info.handler
    return getattr(handler, "route_spec", None)


def add_routes(app: web.Application, routes: Routes) -> None:
    """Serve `routes` on `app`, and list them in the app's OpenAPI document."""
    declared = app.setdefault(DECLARED, [])
    for spec, handler in routes:
        app.router.add_route(spec.method, spec.path, handler)
        declared.append((spec, handler))


def resolve_body(spec: RouteSpec, settings: Settings) -> Schema | None:
    if spec.body is None or isinstance(spec.body, Schema):
        return spec.body
    return spec.body(settings)
