"""The OpenAPI document, generated from the route declarations (a test walks the API and checks every
answer against it)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from appliance import __version__
from appliance.http.routing import EMPTY_STATUSES, Handler, RouteSpec, resolve_body
from appliance.settings import Settings

_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string"},
            },
        }
    },
}


def build_openapi(settings: Settings, declared: Iterable[tuple[RouteSpec, Handler]]) -> dict[str, Any]:
    """The document of the `declared` routes (`routing.DECLARED`: what `add_routes` served)."""
    paths: dict[str, dict[str, Any]] = {}
    for spec, handler in declared:
        if not spec.in_api:
            continue
        responses: dict[str, Any] = {
            "default": {"description": "error", "content": {"application/json": {"schema": _ERROR}}}
        }
        for status in spec.status:
            answer: dict[str, Any] = {"description": "success" if status < 300 else "not modified"}
            if status not in EMPTY_STATUSES:
                media: dict[str, Any] = {"schema": spec.response} if spec.response is not None else {}
                answer["content"] = {spec.response_type: media}
            responses[str(status)] = answer
        operation: dict[str, Any] = {
            "operationId": handler.__name__,
            "summary": spec.summary,
            "x-access": spec.access,
            "responses": responses,
        }
        if spec.access != "anyone":
            operation["security"] = [{"cookie": []}, {"bearer": []}]
        params = [part[1:-1] for part in spec.path.split("/") if part.startswith("{")]
        if params:
            operation["parameters"] = [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in params
            ]
        schema = resolve_body(spec, settings)
        if schema is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema.json_schema()}},
            }
        elif spec.request_type is not None:
            operation["requestBody"] = {"required": True, "content": {spec.request_type: {}}}
        paths.setdefault(spec.path, {})[spec.method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {"title": "Labrunner", "version": __version__},
        "components": {
            "securitySchemes": {
                "cookie": {"type": "apiKey", "in": "cookie", "name": "labrunner_session"},
                "bearer": {"type": "http", "scheme": "bearer"},
            }
        },
        "paths": paths,
    }
