"""The OpenAPI document, generated from the route declarations (a test checks it against the router)."""

from __future__ import annotations

from typing import Any

from appliance import __version__
from appliance.http.routing import ROUTES, resolve_body
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


def build_openapi(settings: Settings) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for spec, handler in ROUTES:
        if not spec.in_api:
            continue
        operation: dict[str, Any] = {
            "operationId": handler.__name__,
            "summary": spec.summary,
            "x-access": spec.access,
            "responses": {
                "default": {"description": "error", "content": {"application/json": {"schema": _ERROR}}},
                "200": {"description": "success", "content": {spec.content_type: {}}},
            },
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
        elif spec.method in ("POST", "PUT", "PATCH") and spec.content_type != "application/json":
            operation["requestBody"] = {"required": True, "content": {spec.content_type: {}}}
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
