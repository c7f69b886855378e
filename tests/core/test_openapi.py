"""The OpenAPI document tells the truth: a teacher and a student walk the API, and every request they
make is checked against the document (operation, status, request and response types, response schema)."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from runner.executor import ExecRequest, ExecResult, TestOutcome
from tests.conftest import ApiClient, LiveServer, Reply, unique_username, years_ago

WRITE_METHODS = ("post", "put", "patch")
# The main routes: each must be walked below and declare the schema of its JSON answer.
MAIN = {
    ("POST", "/api/auth/register"),
    ("POST", "/api/auth/login"),
    ("GET", "/api/me"),
    ("GET", "/api/classes"),
    ("POST", "/api/classes"),
    ("GET", "/api/classes/{id}"),
    ("POST", "/api/classes/join"),
    ("GET", "/api/problems"),
    ("POST", "/api/problems"),
    ("GET", "/api/problems/{id}"),
    ("PATCH", "/api/problems/{id}"),
    ("POST", "/api/problems/{id}/submissions"),
    ("GET", "/api/submissions"),
    ("GET", "/api/submissions/{id}"),
    ("POST", "/api/runs"),
    ("GET", "/api/runs/{id}"),
    ("POST", "/api/files"),
    ("GET", "/api/files"),
    ("GET", "/api/files/{id}"),
    ("POST", "/api/tokens"),
    ("GET", "/api/tokens"),
}


class EchoExecutor:
    """A stand-in sandbox: every test's output is the program's source text (no Docker)."""

    async def execute(self, request: ExecRequest) -> ExecResult:
        return ExecResult(None, [TestOutcome(t.name, "ok", 0, request.code.encode(), b"", 3) for t in request.tests])

    async def close(self) -> None:
        return None


class FakeSandbox:
    async def new_executor(self) -> EchoExecutor:
        return EchoExecutor()

    async def engine_up(self) -> bool:
        return True

    async def image_state(self) -> str:
        return "ok"

    async def close(self) -> None:
        return None


def validate(schema: dict[str, Any], value: Any, where: str, problems: list[str]) -> None:
    """A structural check of `value` against an OpenAPI 3.0 schema (the subset the document uses)."""
    if value is None:
        if "type" in schema and not schema.get("nullable"):
            problems.append(f"{where}: null where {schema.get('type', 'a value')} is declared")
        return
    for key in ("oneOf", "anyOf"):
        if key in schema:
            found = []
            for option in schema[key]:
                found.append([])
                validate(option, value, where, found[-1])
            if not any(not f for f in found):
                problems.append(f"{where}: matches none of {key}: {found}")
    kind = schema.get("type")
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
    }
    if kind is not None and not checks[kind](value):
        problems.append(f"{where}: {type(value).__name__} {value!r:.80} is not {kind}")
        return
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} not in {schema['enum']}")
    if kind == "array":
        for i, item in enumerate(value):
            validate(schema.get("items", {}), item, f"{where}[{i}]", problems)
    if kind == "object":
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                problems.append(f"{where}: required {name!r} missing")
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in props:
                validate(props[name], item, f"{where}.{name}", problems)
            elif extra is False:
                problems.append(f"{where}: undeclared property {name!r}")
            elif isinstance(extra, dict):
                validate(extra, item, f"{where}.{name}", problems)


def _media(content_type: str | None) -> str | None:
    return content_type.split(";")[0].strip().lower() if content_type else None


@dataclass
class Walk:
    """Sends requests for the walk and checks each one against the OpenAPI document."""

    doc: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    visited: set[tuple[str, str]] = field(default_factory=set)

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        """The documented operation serving `path` (literal segments win over parameters)."""
        path = path.split("?")[0]
        candidates = []
        for template, operations in self.doc["paths"].items():
            pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
            if re.match(pattern, path) and method.lower() in operations:
                candidates.append((template.count("{"), template))
        if not candidates:
            return None
        template = min(candidates)[1]
        return template, self.doc["paths"][template][method.lower()]

    async def call(self, client: ApiClient, method: str, path: str, **kwargs: Any) -> Reply:
        sent: str | None = None
        if "json" in kwargs:
            sent = "application/json"
        elif isinstance(kwargs.get("data"), aiohttp.FormData):
            sent = "multipart/form-data"
        elif kwargs.get("data") is not None:
            sent = _media(kwargs.get("headers", {}).get("Content-Type"))
        reply = await client.request(method, path, **kwargs)
        self.check(method, path, sent, reply)
        return reply

    def check(self, method: str, path: str, sent: str | None, reply: Reply) -> None:
        where = f"{method} {path} -> {reply.status}"
        found = self.operation(method, path)
        if found is None:
            self.problems.append(f"{where}: not in the document")
            return
        template, operation = found
        self.visited.add((method, template))
        request_types = set(operation.get("requestBody", {}).get("content", {}))
        # A body of another type than the declared one must be refused (415), never served.
        if sent is not None and sent not in request_types and reply.status != 415:
            self.problems.append(f"{where}: sent {sent}, the document declares {sorted(request_types) or 'no body'}")
        if sent is None and operation.get("requestBody", {}).get("required") and reply.status < 400:
            self.problems.append(f"{where}: succeeded without the body the document requires")
        responses = operation["responses"]
        if reply.status < 400:
            declared = responses.get(str(reply.status))
            if declared is None:
                successes = sorted(code for code in responses if code != "default")
                self.problems.append(f"{where}: status not declared (the document lists {successes})")
                return
        else:
            declared = responses.get(str(reply.status)) or responses.get("default")
            if declared is None:
                self.problems.append(f"{where}: error status not declared")
                return
        content = declared.get("content")
        answered = _media(reply.headers.get("Content-Type"))
        if not content:
            if reply.body:
                self.problems.append(f"{where}: answered a body where the document declares none")
            return
        media = content[answered] if answered in content else content.get("*/*")
        if media is None:
            self.problems.append(f"{where}: answered {answered}, the document declares {sorted(content)}")
            return
        if answered == "application/json" and "schema" in media:
            validate(media["schema"], reply.json, where, self.problems)


async def _doc(client: ApiClient) -> dict[str, Any]:
    reply = await client.get("/api/openapi.json")
    assert reply.status == 200, reply
    return reply.json


@pytest.fixture
async def walked(server_factory) -> tuple[LiveServer, Walk]:
    server = await server_factory(app_options={"sandbox": FakeSandbox()})
    anon = server.client()
    walk = Walk(await _doc(anon))
    await _walk(server, walk, anon)
    await anon.close()
    return server, walk


async def _walk(server: LiveServer, walk: Walk, anon: ApiClient) -> None:
    call = walk.call
    assert (await call(anon, "GET", "/healthz")).status == 200
    await call(anon, "GET", "/api/openapi.json")
    versions = {}
    for kind in ("terms", "privacy"):
        versions[f"accept_{kind}"] = (await call(anon, "GET", f"/api/legal/{kind}")).json["version"]
    assert (await call(anon, "GET", "/api/me")).status == 401

    # A teacher (created as the CLI does) logs in, accepts the legal texts, creates a class and a problem.
    teacher = server.client()
    teacher_name = unique_username("teacher")
    await server.create_account("teacher", teacher_name, "a-long-passphrase")
    login = await call(
        teacher, "POST", "/api/auth/login", json={"username": teacher_name, "password": "a-long-passphrase"}
    )
    assert login.status == 200, login
    assert (await call(teacher, "POST", "/api/me/accept-legal", json=versions)).status == 200
    await call(teacher, "GET", "/api/me")
    created = await call(teacher, "POST", "/api/classes", json={"name": "7B"})
    assert created.status == 201, created
    class_id, join_code = created.json["id"], created.json["join_code"]
    await call(teacher, "GET", "/api/classes")
    await call(teacher, "GET", f"/api/classes/{class_id}")
    problem = {
        "title": "Shout it",
        "statement": "Print the input in capitals.",
        "language": "python",
        "classes": [class_id],
        "test_cases": [
            {"name": "example", "stdin": "hello\n", "expected_stdout": "HELLO\n", "visible": True},
            {"name": "secret", "stdin": "psst\n", "expected_stdout": "PSST\n", "visible": False},
        ],
    }
    made = await call(teacher, "POST", "/api/problems", json=problem)
    assert made.status == 201, made
    problem_id = made.json["id"]
    assert (await call(teacher, "PATCH", f"/api/problems/{problem_id}", json={"title": "Shout"})).status == 200
    await call(teacher, "GET", f"/api/problems/{problem_id}/test-cases/all")
    exported = await call(teacher, "GET", f"/api/problems/{problem_id}/export")
    assert exported.status == 200, exported
    assert zipfile.is_zipfile(io.BytesIO(exported.body))
    imported = await call(
        teacher, "POST", "/api/problems/import", data=exported.body, headers={"Content-Type": "application/zip"}
    )
    assert imported.status == 201, imported
    assert (await call(teacher, "DELETE", f"/api/problems/{imported.json['id']}")).status == 204
    young = unique_username("young")
    made_user = await call(
        teacher,
        "POST",
        "/api/users",
        json={"username": young, "password": "a-long-passphrase", "role": "student", "birthdate": years_ago(10)},
    )
    assert made_user.status == 201, made_user
    assert (await call(teacher, "POST", f"/api/classes/{class_id}/members", json={"usernames": [young]})).status == 200
    roster = f"username\n{unique_username('csv')}\n".encode()
    imported_roster = await call(
        teacher, "POST", f"/api/classes/{class_id}/roster/import", data=roster, headers={"Content-Type": "text/csv"}
    )
    assert imported_roster.status == 201, imported_roster

    # A student registers, joins the class, runs and submits code, uploads files, makes a token.
    student = server.client()
    name = unique_username("student")
    registered = await call(
        student,
        "POST",
        "/api/auth/register",
        json={"username": name, "password": "a-long-passphrase", "birthdate": years_ago(15), **versions},
    )
    assert registered.status == 201, registered
    assert (await call(student, "POST", "/api/auth/login", json={"username": name, "password": "wrong"})).status == 401
    assert (
        await call(student, "POST", "/api/auth/login", json={"username": name, "password": "a-long-passphrase"})
    ).status == 200
    await call(student, "GET", "/api/me")
    assert (await call(student, "POST", "/api/classes/join", json={"code": join_code})).status == 200
    await call(student, "GET", "/api/classes")
    await call(student, "GET", "/api/problems")
    await call(student, "GET", f"/api/problems/{problem_id}")
    await call(student, "GET", f"/api/problems/{problem_id}/test-cases")
    assert (await call(student, "GET", "/api/problems/987654")).status == 404
    await call(student, "GET", "/api/languages")
    run = await call(student, "POST", "/api/runs", json={"language": "python", "code": "hi", "stdin": ""})
    assert run.status == 202, run
    assert (await call(student, "GET", f"/api/runs/{run.json['id']}?wait=10")).status == 200
    code = {"language": "python", "code": "HELLO\n"}
    submitted = await call(student, "POST", f"/api/problems/{problem_id}/submissions", json=code)
    assert submitted.status == 202, submitted
    again = await call(student, "POST", f"/api/problems/{problem_id}/submissions", json=code)
    assert again.status == 202 and again.json["deduplicated"], again
    assert (await call(student, "GET", f"/api/submissions/{submitted.json['id']}?wait=10")).status == 200
    await call(student, "GET", "/api/submissions")
    await call(student, "GET", "/api/me/progress")
    assert (
        await call(student, "PUT", f"/api/problems/{problem_id}/draft", json={"language": "python", "code": "x"})
    ).status == 200
    await call(student, "GET", f"/api/problems/{problem_id}/draft")
    await call(student, "GET", "/api/drafts/scratch")

    def upload(data: bytes, **fields: str) -> aiohttp.FormData:
        form = aiohttp.FormData(quote_fields=False)
        for key, value in fields.items():
            form.add_field(key, value)
        form.add_field("file", data, filename="numbers.txt", content_type="text/plain")
        return form

    uploaded = await call(student, "POST", "/api/files", data=upload(b"1 2 3\n"))
    assert uploaded.status == 201, uploaded
    again_file = await call(student, "POST", "/api/files", data=upload(b"1 2 3\n"))
    assert again_file.status == 200 and again_file.json["deduplicated"], again_file
    wrong_type = await call(student, "POST", "/api/files", json={"file": "x"})
    assert wrong_type.status == 415, wrong_type
    file_id = uploaded.json["id"]
    await call(student, "GET", "/api/files")
    await call(student, "GET", f"/api/files/{file_id}")
    assert (await call(student, "GET", f"/api/files/{file_id}/content")).body == b"1 2 3\n"
    assert (await call(student, "DELETE", f"/api/files/{file_id}")).status == 204
    token = await call(student, "POST", "/api/tokens", json={"name": "script"})
    assert token.status == 201, token
    script = student.with_token(token.json["token"])
    assert (await call(script, "GET", "/api/me")).status == 200
    await call(student, "GET", "/api/tokens")
    assert (await call(student, "DELETE", f"/api/tokens/{token.json['id']}")).status == 204
    assert (await call(script, "GET", "/api/me")).status == 401

    # The teacher follows the class.
    await call(teacher, "GET", f"/api/submissions?problem_id={problem_id}")
    await call(teacher, "GET", f"/api/submissions/{submitted.json['id']}")
    await call(teacher, "GET", f"/api/classes/{class_id}/gradebook")
    assert (await call(teacher, "GET", f"/api/classes/{class_id}/gradebook.csv")).status == 200
    assert (await call(teacher, "POST", f"/api/problems/{problem_id}/check", json=code)).status == 202
    assert (await call(teacher, "POST", f"/api/problems/{problem_id}/rejudge")).status == 202
    rejudged = await call(teacher, "GET", f"/api/problems/{problem_id}/rejudges?wait=5")
    assert rejudged.status == 200 and rejudged.json["submissions"], rejudged
    assert (await call(teacher, "GET", f"/api/submissions/{submitted.json['id']}")).json["tests"][0]["test_data_kept"]
    # Quota overrides: the class's and the student's, set and read; the student reads their own.
    limits = {"limits": {"runs_per_user_per_minute": 60, "max_jobs_in_flight_per_user": 0}, "until": None}
    assert (await call(teacher, "PUT", f"/api/classes/{class_id}/limits", json=limits)).status == 200
    await call(teacher, "GET", f"/api/classes/{class_id}/limits")
    student_id = (await call(student, "GET", "/api/me")).json["id"]
    own = {"limits": {"submissions_per_user_per_minute": 3}, "until": "2999-01-01T00:00:00Z"}
    assert (await call(teacher, "PUT", f"/api/users/{student_id}/limits", json=own)).status == 200
    assert (await call(student, "GET", f"/api/users/{student_id}/limits")).status == 200
    admin = await server.make_user("admin")
    listed = await call(admin, "GET", "/api/admin/overrides")
    assert len(listed.json["overrides"]) == 3, listed
    assert (await call(student, "POST", "/api/auth/logout")).status == 200
    for client in (teacher, student):
        await client.close()


async def test_the_document_tells_what_the_server_answers(walked: tuple[LiveServer, Walk]) -> None:
    _, walk = walked
    assert walk.problems == [], "\n".join(walk.problems)
    assert MAIN - walk.visited == set(), "main routes the walk did not take"
    for method, path in sorted(MAIN):
        operation = walk.doc["paths"][path][method.lower()]
        for status, response in operation["responses"].items():
            if status != "default" and "content" in response:
                assert "schema" in response["content"]["application/json"], f"{method} {path}: no response schema"


async def test_the_walk_catches_an_untrue_declaration(walked: tuple[LiveServer, Walk]) -> None:
    """The checks can fail: the old declaration of POST /api/files (200, answering multipart) is caught."""
    server, walk = walked
    old = Walk(walk.doc)
    operation = old.doc["paths"]["/api/files"]["post"]
    operation["responses"] = {
        "default": operation["responses"]["default"],
        "200": {"description": "success", "content": {"multipart/form-data": {}}},
    }
    student = await server.make_user("student")
    form = aiohttp.FormData()
    form.add_field("file", b"1\n", filename="one.txt", content_type="text/plain")
    await old.call(student, "POST", "/api/files", data=form)
    await student.close()
    assert len(old.problems) == 1, old.problems
    assert "POST /api/files -> 201: status not declared (the document lists ['200'])" in old.problems[0]


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
