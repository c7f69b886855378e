"""The OpenAPI document is the router: same (method, path) set, every input bounded and declared."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.conftest import ApiClient, LiveServer

WRITE_METHODS = ("post", "put", "patch")


def router_operations(app: web.Application) -> set[tuple[str, str]]:
    """(METHOD, path) of every API route the app serves: static files and declared pages excepted."""
    out = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        if "prefix" in info:  # the static file directory
            continue
        spec = getattr(route.handler, "route_spec", None)
        if spec is not None and not spec.in_api:  # HTML pages, declared with in_api=False
            continue
        if route.method == "HEAD":
            continue
        out.add((route.method, info.get("path") or info["formatter"]))
    return out


def document_operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, operations in doc["paths"].items() for method in operations}


async def _doc(client: ApiClient) -> dict[str, Any]:
    reply = await client.get("/api/openapi.json")
    assert reply.status == 200, reply
    return reply.json


async def test_document_matches_the_router(server: LiveServer, anon: ApiClient) -> None:
    doc = await _doc(anon)
    assert doc["openapi"].startswith("3.")
    served = router_operations(server.app)
    documented = document_operations(doc)
    assert served - documented == set(), "routes served but missing from the OpenAPI document"
    assert documented - served == set(), "routes documented but not served"
    # The routes DESIGN.md §6 names for the core are all there.
    core = {
        ("GET", "/healthz"),
        ("GET", "/api/openapi.json"),
        ("POST", "/api/auth/register"),
        ("POST", "/api/auth/login"),
        ("POST", "/api/auth/logout"),
        ("GET", "/api/me"),
        ("POST", "/api/tokens"),
        ("POST", "/api/users"),
        ("GET", "/api/legal/{kind}"),
        ("GET", "/api/classes"),
        ("POST", "/api/classes"),
        ("GET", "/api/classes/{id}"),
        ("POST", "/api/classes/join"),
        ("POST", "/api/classes/{id}/members"),
        ("GET", "/api/problems"),
        ("POST", "/api/problems"),
        ("GET", "/api/problems/{id}"),
        ("PATCH", "/api/problems/{id}"),
        ("DELETE", "/api/problems/{id}"),
        ("GET", "/api/problems/{id}/test-cases"),
        ("GET", "/api/problems/{id}/test-cases/all"),
    }
    assert core <= documented


async def test_an_undeclared_route_is_caught(server: LiveServer, anon: ApiClient, settings_factory) -> None:
    """The comparison above can fail: a route added straight to the router shows up as a difference."""
    from appliance.runtime import create_app

    async def sneaky(request: web.Request) -> web.Response:
        return web.json_response({})

    app = create_app(settings_factory())
    app.router.add_get("/api/undeclared", sneaky)
    app.router.add_post("/api/classes/{id}/archive", sneaky)
    diff = router_operations(app) - document_operations(await _doc(anon))
    assert diff == {("GET", "/api/undeclared"), ("POST", "/api/classes/{id}/archive")}


async def test_pages_are_kept_out_of_the_document(server: LiveServer, anon: ApiClient) -> None:
    doc = await _doc(anon)
    assert "/terms" not in doc["paths"] and "/privacy" not in doc["paths"]
    assert not any(path.startswith("/static") for path in doc["paths"])


def _walk_schema(schema: dict[str, Any], where: str, problems: list[str]) -> None:
    kind = schema.get("type")
    if kind == "string" and "enum" not in schema and "maxLength" not in schema:
        problems.append(f"{where}: unbounded string")
    if kind == "array":
        if "maxItems" not in schema:
            problems.append(f"{where}: unbounded array")
        _walk_schema(schema["items"], where + "[]", problems)
    if kind == "object":
        if schema.get("additionalProperties") is not False:
            problems.append(f"{where}: accepts unknown fields")
        for name, prop in schema.get("properties", {}).items():
            _walk_schema(prop, f"{where}.{name}", problems)
        for name in schema.get("required", []):
            if name not in schema.get("properties", {}):
                problems.append(f"{where}: requires undeclared {name}")


async def test_every_operation_is_fully_declared(anon: ApiClient) -> None:
    doc = await _doc(anon)
    problems: list[str] = []
    operation_ids = []
    for path, operations in doc["paths"].items():
        params = {part[1:-1] for part in path.split("/") if part.startswith("{")}
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            operation_ids.append(operation["operationId"])
            if operation.get("x-access") not in ("anyone", "user", "staff", "admin"):
                problems.append(f"{where}: no access level")
            if (operation.get("x-access") != "anyone") != bool(operation.get("security")):
                problems.append(f"{where}: security does not match access")
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            if declared != params:
                problems.append(f"{where}: path parameters {declared} != {params}")
            if not operation.get("summary"):
                problems.append(f"{where}: no summary")
            if method in WRITE_METHODS and "requestBody" in operation:
                for media, content in operation["requestBody"]["content"].items():
                    if media == "application/json":
                        _walk_schema(content["schema"], where, problems)
    assert problems == []
    assert len(operation_ids) == len(set(operation_ids)), "operationIds must be unique"


async def test_document_is_public_and_stable(server: LiveServer, make_user) -> None:
    anonymous = await _doc(server.client())
    teacher = await make_user("teacher")
    assert await _doc(teacher) == anonymous
