"""Routes declared once with who may call them and what body they take.

The same declarations register aiohttp routes, drive the auth middleware and generate the
OpenAPI document, so the three cannot drift apart.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from appliance.settings import Settings
from appliance.validation import Schema

Access = Literal["anyone", "user", "staff", "admin"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# A schema, or a factory for schemas whose limits come from settings.
Body = Schema | Callable[[Settings], Schema]


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    access: Access
    summary: str
    body: Body | None = None
    # Reachable before the user has accepted new legal texts (so they can read and accept them).
    before_acceptance: bool = False
    content_type: str = "application/json"
    in_api: bool = True


ROUTES: list[tuple[RouteSpec, Handler]] = []


def route(
    method: str,
    path: str,
    *,
    access: Access,
    summary: str,
    body: Body | None = None,
    before_acceptance: bool = False,
    content_type: str = "application/json",
    in_api: bool = True,
) -> Callable[[Handler], Handler]:
    spec = RouteSpec(method, path, access, summary, body, before_acceptance, content_type, in_api)

    def register(handler: Handler) -> Handler:
        handler.route_spec = spec  # type: ignore[attr-defined]
        ROUTES.append((spec, handler))
        return handler

    return register


def spec_of(request: web.Request) -> RouteSpec | None:
    handler = request.match_info.handler
    return getattr(handler, "route_spec", None)


def import_views() -> None:
    """Import every module of `appliance.http.views` (and the pages) so their routes register."""
    from appliance.http import views

    for module in pkgutil.iter_modules(views.__path__):
        importlib.import_module(f"{views.__name__}.{module.name}")


def add_routes(app: web.Application) -> None:
    for spec, handler in ROUTES:
        app.router.add_route(spec.method, spec.path, handler)


def resolve_body(spec: RouteSpec, settings: Settings) -> Schema | None:
    if spec.body is None or isinstance(spec.body, Schema):
        return spec.body
    return spec.body(settings)
