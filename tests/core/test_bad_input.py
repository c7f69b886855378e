"""Bad input on EVERY write route, enumerated from the OpenAPI document: a 4xx, the error shape,
and nothing written (every table row of the SQLite file compared before and after).

New write routes are swept automatically: their JSON schema drives the wrong-type, too-long,
missing and unknown-field cases.
"""

from __future__ import annotations

import copy
import io
import json
import re
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance import sync_appliances
from appliance.app_keys import DB
from appliance.identity import public_key_text
from appliance.settings import SETTINGS
from appliance.sync_intake import push_headers
from appliance.sync_outbox import PUSH_PATH
from tests.conftest import ApiClient, LiveServer, Reply
from tests.core.conftest import Markers, problem_body
from tests.files.conftest import RecordingSandbox

WRITE_METHODS = ("post", "put", "patch", "delete")
PARAM = re.compile(r"\{([^}/]+)\}")
SQL = "'; DROP TABLE users;--"


@dataclass
class Target:
    method: str
    template: str
    path: str
    schema: dict[str, Any] | None  # the JSON body schema, if the route takes JSON
    media: str | None  # the body media type, if the route takes a body that is not JSON
    resolved: bool  # every path parameter names an object that exists


@dataclass
class Sweep:
    server: LiveServer
    admin: ApiClient
    targets: list[Target]
    # A registered appliance's key: the push route answers 401 to an unsigned body before it reads it,
    # so the sweep signs what it sends there to reach the body's own checks.
    appliance_key: Ed25519PrivateKey


@pytest.fixture
async def sweep(server_factory) -> AsyncIterator[Sweep]:
    known = {setting.name for setting in SETTINGS}
    server: LiveServer = await server_factory(**{n: SWEEP_UPLOAD_LIMIT for n in UPLOAD_LIMITS if n in known})
    admin = await server.make_user("admin")
    teacher = await server.make_user("teacher")
    await server.make_user("student")
    klass = (await admin.post("/api/classes", json={"name": "sweep"})).json
    created = await admin.post("/api/problems", json=problem_body(Markers.new(), [klass["id"]]))
    assert created.status == 201, created
    ids = {"problems": created.json["id"], "classes": klass["id"], "users": teacher.user_id}
    appliance_key = Ed25519PrivateKey.generate()
    await sync_appliances.register(server.app[DB], "sweep", public_key_text(appliance_key.public_key()))
    doc = (await admin.get("/api/openapi.json")).json
    targets = []
    for template, operations in sorted(doc["paths"].items()):
        for method, operation in operations.items():
            if method not in WRITE_METHODS:
                continue
            path, resolved = _fill(template, ids)
            content = operation.get("requestBody", {}).get("content", {})
            schema = content.get("application/json", {}).get("schema")
            media = None if schema is not None or not content else next(iter(content))
            targets.append(Target(method.upper(), template, path, schema, media, resolved))
    yield Sweep(server, admin, targets, appliance_key)


def _fill(template: str, ids: dict[str, int]) -> tuple[str, bool]:
    resolved = True
    path = template
    for name in PARAM.findall(template):
        if name == "kind":
            value = "terms"
        else:
            collection = template.split("/")[2]  # /api/<collection>/{id}
            resolved = resolved and collection in ids
            value = str(ids.get(collection, 1))
        path = path.replace("{" + name + "}", value, 1)
    return path, resolved


# --- values synthesized from a schema --------------------------------------------------------


def synth(schema: dict[str, Any]) -> Any:
    """A value the schema accepts (domain rules aside)."""
    kind = schema.get("type")
    if schema.get("enum"):
        return schema["enum"][0]
    if kind == "string":
        return "abc"
    if kind in ("integer", "number"):
        return int(schema.get("minimum", 1))
    if kind == "boolean":
        return True
    if kind == "array":
        return [synth(schema["items"])]
    if kind == "object":
        return {name: synth(schema["properties"][name]) for name in schema.get("required", [])}
    raise AssertionError(f"unknown schema type {kind}")


WRONG = {
    "string": 12345,
    "integer": "12",
    "number": "1.5",
    "boolean": "yes",
    "array": {"not": "a list"},
    "object": ["not", "an", "object"],
}


@dataclass
class Case:
    name: str
    body: bytes
    content_type: str | None
    status: int | tuple[int, ...]
    code: str | tuple[str, ...]
    field: str | None = None


def _json_case(name: str, value: Any, status, code, field: str | None = None) -> Case:
    return Case(name, json.dumps(value).encode(), "application/json", status, code, field)


def _field_cases(schema: dict[str, Any], base: Any, prefix: str, set_value) -> list[Case]:
    """Wrong types, nulls, over-long strings and huge numbers for every property, recursively."""
    cases = []
    for name, prop in schema.get("properties", {}).items():
        path = f"{prefix}{name}"

        def put(value: Any, name: str = name) -> Any:
            return set_value(lambda obj: obj.__setitem__(name, value))

        kind = prop["type"]
        cases.append(_json_case(f"{path}: wrong type", put(WRONG[kind]), 400, "invalid_type", path))
        if not prop.get("nullable"):
            cases.append(_json_case(f"{path}: null", put(None), 400, "invalid_type", path))
        if kind == "string":
            length = max(100_000, prop.get("maxLength", 0) + 1)
            codes = ("too_long", "body_too_large", *(("invalid_value",) if "enum" in prop else ()))
            cases.append(_json_case(f"{path}: {length} chars", put("x" * length), (400, 413), codes))
            cases.append(_json_case(f"{path}: NUL", put("a\x00b"), 400, ("invalid_value", "too_long")))
            # A lone surrogate: valid JSON ("\ud800"), but no text UTF-8 can encode (hash, store, answer).
            cases.append(_json_case(f"{path}: lone surrogate", put("a\ud800b"), 400, "invalid_text", path))
        if kind in ("integer", "number"):
            cases.append(_json_case(f"{path}: huge", put(10**30), 400, "out_of_range", path))
            raw = json.dumps(put(424242)).replace("424242", "1e400").encode()
            cases.append(Case(f"{path}: 1e400", raw, "application/json", 400, ("out_of_range", "invalid_type"), path))
        if kind == "array":
            items = prop["items"]
            cases.append(_json_case(f"{path}[0]: wrong type", put([WRONG[items["type"]]]), 400, "invalid_type"))
            if items["type"] in ("integer", "number"):
                cases.append(_json_case(f"{path}[0]: huge", put([10**30]), 400, "out_of_range", f"{path}[0]"))
            if items["type"] == "object":
                item = synth(items)
                cases.append(
                    _json_case(f"{path}[0]: unknown field", put([{**item, "zz_unknown": 1}]), 400, "unknown_field")
                )

                def set_item(mutate, name: str = name, item: Any = item) -> Any:
                    inner = copy.deepcopy(item)
                    mutate(inner)
                    return set_value(lambda obj: obj.__setitem__(name, [inner]))

                cases.extend(_field_cases(items, item, f"{path}[0].", set_item))
    return cases


def json_cases(schema: dict[str, Any], settings) -> list[Case]:
    base = synth(schema)

    def set_value(mutate) -> Any:
        body = copy.deepcopy(base)
        mutate(body)
        return body

    cases = [
        Case("malformed", b'{"name": ', "application/json", 400, "invalid_json"),
        Case("trailing garbage", b"{} {}", "application/json", 400, "invalid_json"),
        Case("NaN", b'{"name": NaN}', "application/json", 400, "invalid_json"),
        Case("deep nesting", b"[" * 100_000, "application/json", 400, "invalid_json"),
        Case("huge number literal", b'{"name": ' + b"9" * 5000 + b"}", "application/json", 400, "invalid_json"),
        Case("not UTF-8", b'{"name": "\xff\xfe caf\xe9"}', "application/json", 400, "invalid_encoding"),
        Case("text/plain", b"{}", "text/plain", 415, "unsupported_media_type"),
        Case("form post", b"name=x", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        Case("no content type", b"{}", None, 415, "unsupported_media_type"),
        _json_case("array body", [], 400, "invalid_type"),
        _json_case("string body", "text", 400, "invalid_type"),
        _json_case("null body", None, 400, "invalid_type"),
        _json_case("unknown field", {**base, "zz_unknown": SQL}, 400, "unknown_field", "zz_unknown"),
        _json_case("lone surrogate in a field name", {**base, "zz\udc00": 1}, 400, "invalid_text"),
        Case(
            "oversized",
            b'{"name": "' + b"x" * settings.max_body_bytes + b'"}',
            "application/json",
            413,
            "body_too_large",
        ),
    ]
    required = schema.get("required", [])
    if required:
        cases.append(_json_case("empty object", {}, 400, "missing_field", required[0]))
        for name in required:
            partial = {k: v for k, v in base.items() if k != name}
            cases.append(_json_case(f"missing {name}", partial, 400, "missing_field", name))
    cases.extend(_field_cases(schema, base, "", set_value))
    return cases


BOUNDARY = "sweep-boundary-7MA4YWxkTrZu0gW"
# Upload limits lowered for the sweep, so "bigger than any limit" stays a small request.
UPLOAD_LIMITS = ("max_import_bytes", "file_max_bytes", "asset_max_bytes", "sync_bundle_max_bytes")
SWEEP_UPLOAD_LIMIT = 300_000


def _multipart(data: bytes) -> bytes:
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def other_cases(media: str, settings) -> list[Case]:
    """Routes taking a non-JSON body (zip, CSV, multipart): wrong type, garbage, and too big."""
    oversize = max(settings.max_body_bytes, SWEEP_UPLOAD_LIMIT) + 1
    if media.startswith("multipart/"):
        content_type = f"{media}; boundary={BOUNDARY}"
        garbage, big = _multipart(b"")[:-8] + b"broken", _multipart(b"\0" * oversize)
    else:
        content_type, garbage, big = media, b"\x00\x01\xff not what was asked for", b"\0" * oversize
    return [
        Case("json instead", b"{}", "application/json", (400, 415), None),
        Case("garbage", garbage, content_type, (400, 413, 415), None),
        Case("oversized", big, content_type, 413, None),
    ]


async def _send(client: ApiClient, target: Target, case: Case, signer: Ed25519PrivateKey) -> Reply:
    headers = {} if case.content_type is None else {"Content-Type": case.content_type}
    if target.template == PUSH_PATH:
        headers |= push_headers(signer, public_key_text(signer.public_key()), case.body)
    if case.content_type is None:
        headers["Content-Type"] = ""
    return await client.request(target.method, target.path, data=case.body, headers=headers)


def _check(reply: Reply, target: Target, case: Case) -> None:
    where = f"{target.method} {target.path} [{case.name}]"
    statuses = case.status if isinstance(case.status, tuple) else (case.status,)
    if not target.resolved and reply.status == 404:
        statuses = (*statuses, 404)  # the route's object kind is unknown here; it may look it up first
    assert reply.status in statuses, f"{where}: {reply!r}"
    error = reply.error
    assert error is not None and isinstance(error.get("message"), str), f"{where}: not the error shape: {reply!r}"
    assert re.fullmatch(r"[a-z][a-z0-9_]*", error["code"]), where
    codes = case.code if isinstance(case.code, tuple) else (case.code,)
    if case.code is not None and reply.status != 404:
        assert error["code"] in codes, f"{where}: {reply!r}"
    if case.field is not None and reply.status == 400:
        assert error.get("field") == case.field, f"{where}: {reply!r}"


async def test_sweep_covers_the_core_write_routes(sweep: Sweep) -> None:
    swept = {(t.method, t.template) for t in sweep.targets}
    assert {
        ("POST", "/api/auth/register"),
        ("POST", "/api/auth/login"),
        ("POST", "/api/classes"),
        ("POST", "/api/classes/{id}/members"),
        ("POST", "/api/problems"),
        ("PATCH", "/api/problems/{id}"),
        ("PUT", "/api/legal/{kind}"),
        ("POST", "/api/problems/import"),
    } <= swept
    assert all(t.resolved for t in sweep.targets if t.template.startswith(("/api/problems", "/api/classes")))


async def test_bad_bodies_on_every_write_route_write_nothing(sweep: Sweep) -> None:
    settings = sweep.server.settings
    checked = 0
    for target in sweep.targets:
        if target.schema is not None:
            cases = json_cases(target.schema, settings)
        elif target.media is not None:
            cases = other_cases(target.media, settings)
        else:
            continue
        before = sweep.server.db_rows()
        for case in cases:
            reply = await _send(sweep.admin, target, case, sweep.appliance_key)
            _check(reply, target, case)
            checked += 1
        assert sweep.server.db_rows() == before, f"{target.method} {target.path} wrote something on bad input"
    assert checked > 200


async def test_garbage_path_ids_on_every_write_route(sweep: Sweep) -> None:
    before = sweep.server.db_rows()
    for target in sweep.targets:
        if "{id}" not in target.template:
            continue
        for garbage in ("abc", "0x1", "-1", "1e3", "9" * 30, "%C2%B2", "%D9%A1"):
            path = target.template.replace("{id}", garbage).replace("{kind}", "terms")
            for placeholder in PARAM.findall(path):
                path = path.replace("{" + placeholder + "}", "1")
            # A body the schema accepts, so the route gets as far as looking at its id.
            if target.media is not None:
                headers = {"Content-Type": target.media}
                reply = await sweep.admin.request(target.method, path, data=b"", headers=headers)
            else:
                body = synth(target.schema) if target.schema is not None else {}
                reply = await sweep.admin.request(target.method, path, json=body)
            assert reply.status == 404, reply
            assert reply.error_code == "not_found", reply
    assert sweep.server.db_rows() == before


async def test_chunked_oversized_body_is_413(sweep: Sweep) -> None:
    limit = sweep.server.settings.max_body_bytes

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    before = sweep.server.db_rows()
    reply = await sweep.admin.post("/api/classes", data=chunks(), headers={"Content-Type": "application/json"})
    assert reply.status == 413 and reply.error_code == "body_too_large", reply
    assert sweep.server.db_rows() == before


async def test_unknown_routes_and_methods_keep_the_error_shape(sweep: Sweep) -> None:
    reply = await sweep.admin.get("/api/no-such-thing")
    assert reply.status == 404 and reply.error_code == "not_found", reply
    reply = await sweep.admin.put("/api/classes", json={})
    assert reply.status == 405 and reply.error_code == "method_not_allowed", reply
    assert "Allow" in reply.headers


async def test_sql_metacharacters_are_stored_literally(sweep: Sweep) -> None:
    admin = sweep.admin
    tables = set(sweep.server.db_rows())
    users = len(sweep.server.db_rows()["users"])
    created = await admin.post("/api/classes", json={"name": SQL})
    assert created.status == 201, created
    assert created.json["name"] == SQL
    assert (await admin.get(f"/api/classes/{created.json['id']}")).json["name"] == SQL
    problem = await admin.post(
        "/api/problems",
        json=problem_body(Markers.new(), [], title=SQL, statement=SQL + ' " \\ %_ \x01'),
    )
    assert problem.status == 201, problem
    again = (await admin.get(f"/api/problems/{problem.json['id']}")).json
    assert again["title"] == SQL and again["statement"] == SQL + ' " \\ %_ \x01'
    for reply in (
        await admin.post("/api/classes/join", json={"code": "' OR '1'='1"}),
        await sweep.server.client().login("admin' --", "' OR '1'='1"),
        await admin.post(f"/api/classes/{created.json['id']}/members", json={"usernames": ["x' OR 1=1 --"]}),
    ):
        assert 400 <= reply.status < 500, reply
    assert set(sweep.server.db_rows()) == tables
    assert len(sweep.server.db_rows()["users"]) == users
    rows = sweep.server.db_rows()["classes"]
    assert any(SQL in row for row in rows)


ODD_SEGMENTS = ("%C2%B2", "%D9%A1", "%EF%BC%91", "-1", "1.5", "9" * 30, "%00", "terms%27--", "%F0%9F%98%80")


async def test_odd_path_parameters_never_crash_any_route(sweep: Sweep) -> None:
    """Every route with path parameters, every method, filled with odd values: a 4xx, never a 500."""
    doc = (await sweep.admin.get("/api/openapi.json")).json
    templates = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    for route in sweep.server.app.router.routes():  # the HTML pages too
        info = route.resource.get_info() if route.resource else {}
        if "formatter" in info and route.method != "HEAD":
            templates.add((route.method, info["formatter"]))
    before = sweep.server.db_rows()
    for method, template in sorted(templates):
        if "{" not in template:
            continue
        for odd in ODD_SEGMENTS:
            path = PARAM.sub(odd, template)
            reply = await sweep.admin.request(method, path, json={})
            assert reply.status < 500, reply
            if template.startswith("/api/"):
                assert reply.status >= 400 and reply.error_code, reply
    assert sweep.server.db_rows() == before


@dataclass
class Submitted:
    server: LiveServer
    teacher: ApiClient
    student: ApiClient
    class_id: int
    problem_id: int
    submission_id: int


@pytest.fixture
async def submitted(server_factory) -> Submitted:
    """A class, a problem and one submission, run by a sandbox that only records (no Docker)."""
    server: LiveServer = await server_factory(app_options={"sandbox": RecordingSandbox()})
    teacher = await server.make_user("teacher")
    student = await server.make_user("student")
    klass = (await teacher.post("/api/classes", json={"name": "7C"})).json
    joined = await student.post("/api/classes/join", json={"code": klass["join_code"]})
    assert joined.status == 200, joined
    problem = await teacher.post("/api/problems", json=problem_body(Markers.new(), [klass["id"]]))
    assert problem.status == 201, problem
    reply = await student.post(
        f"/api/problems/{problem.json['id']}/submissions", json={"language": "python", "code": "print(1)"}
    )
    assert reply.status == 202, reply
    done = await student.get(f"/api/submissions/{reply.json['id']}?wait=10")  # rows stay still from now on
    assert done.status == 200 and done.json["status"] == "done", done
    return Submitted(server, teacher, student, klass["id"], problem.json["id"], reply.json["id"])


async def test_submission_list_filters(submitted: Submitted) -> None:
    """`GET /api/submissions?problem_id=&class_id=&user_id=`: each filter applies, and a value that
    is not a plain non-negative integer is a 400 `invalid_filter` naming the parameter."""
    s = submitted
    mine = [s.submission_id]
    expected = {
        "": mine,
        "problem_id=": mine,  # empty: no filter
        f"problem_id={s.problem_id}": mine,
        f"problem_id={s.problem_id + 1000}": [],  # an unknown id filters everything out (no 404)
        f"class_id={s.class_id}": mine,
        f"class_id={s.class_id + 1000}": [],
        f"user_id={s.student.user_id}": mine,
        f"user_id={s.teacher.user_id}": [],
        f"problem_id={s.problem_id}&class_id={s.class_id}&user_id={s.student.user_id}": mine,
        f"problem_id={s.problem_id}&user_id={s.teacher.user_id}": [],
    }
    for query, ids in expected.items():
        reply = await s.teacher.get(f"/api/submissions?{query}")
        assert reply.status == 200, (query, reply)
        assert [row["id"] for row in reply.json["submissions"]] == ids, (query, reply)
    before = s.server.db_rows()
    for name in ("problem_id", "class_id", "user_id"):
        for bad in ("abc", "-1", "1.5", "0x1", "%C2%B2", "%D9%A1", "9" * 30, "1%00"):
            reply = await s.teacher.get(f"/api/submissions?{name}={bad}")
            assert reply.status == 400, (name, bad, reply)
            assert reply.error_code == "invalid_filter" and reply.error["field"] == name, (name, bad, reply)
            assert isinstance(reply.error["message"], str), reply
    assert s.server.db_rows() == before


async def test_lone_surrogate_in_submitted_code_is_400_and_stores_nothing(submitted: Submitted) -> None:
    """Finding 12: `"\\ud800"` in a submission's code reached the code hash (a 500)."""
    s = submitted
    before = s.server.db_rows()
    for path, body in (
        (f"/api/problems/{s.problem_id}/submissions", {"language": "python", "code": "print(1)\ud800"}),
        (f"/api/problems/{s.problem_id}/submissions", {"language": "python", "code": "\udc00\ud83d"}),
        ("/api/runs", {"language": "python", "code": "print(2)", "stdin": "\ud800"}),
    ):
        reply = await s.student.post(path, json=body)  # aiohttp sends it as the escape "\\ud800"
        assert reply.status == 400, reply
        assert reply.error_code == "invalid_text" and reply.error["field"] in body, reply
        assert isinstance(reply.error["message"], str), reply
    assert s.server.db_rows() == before
    # The server still works, and a well-formed pair (an emoji) is text like any other.
    reply = await s.student.post(
        f"/api/problems/{s.problem_id}/submissions", json={"language": "python", "code": "print('\ud83d\ude00')"}
    )
    assert reply.status == 202, reply
    assert len(s.server.db_rows()["jobs"]) == len(before["jobs"]) + 1


async def test_lone_surrogate_in_an_imported_problem_is_400(submitted: Submitted) -> None:
    """The problem archive's problem.json is JSON too: the same refusal, nothing created."""
    s = submitted
    exported = await s.teacher.get(f"/api/problems/{s.problem_id}/export")
    assert exported.status == 200, exported
    source = zipfile.ZipFile(io.BytesIO(exported.body))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "problem.json":
                meta = json.loads(data)
                meta["title"] = "Sum \ud800"
                data = json.dumps(meta).encode()
            archive.writestr(info, data)
    headers = {"Content-Type": "application/zip"}
    before = s.server.db_rows()
    reply = await s.teacher.post("/api/problems/import", data=buffer.getvalue(), headers=headers)
    assert reply.status == 400 and reply.error_code == "invalid_text" and reply.error["field"] == "title", reply
    assert s.server.db_rows() == before
    again = await s.teacher.post("/api/problems/import", data=exported.body, headers=headers)
    assert again.status == 201, again
