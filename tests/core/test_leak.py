"""THE leak test (DESIGN.md §2.1): walk every GET route as a student; hidden test data never shows.

The routes come from the live OpenAPI document and the router, so a route added later is walked
without anyone remembering to add it here. Path parameters are filled with every id and word that
could name something (the problem, the classes, users, jobs; 'terms', 'stdout', ...).
"""

from __future__ import annotations

import io
import itertools
import json
import re
import zipfile
from collections.abc import Iterable

import pytest

from tests.conftest import ApiClient, LiveServer, Reply
from tests.core.conftest import Classroom, Markers, problem_body

WORDS = ("terms", "privacy", "stdout", "stderr")
PARAM = re.compile(r"\{([^}/]+)\}")
# Echoes its input to stdout and stderr: if any result of a hidden test reached the student, the
# hidden stdin marker would show in it.
STUDENT_CODE = "import sys\ndata = sys.stdin.read()\nprint(data)\nsys.stderr.write(data)\n"
JOB_WAIT_S = 30


def get_paths(server: LiveServer, openapi: dict) -> list[str]:
    """GET paths of the API document plus every GET page the router serves (static files aside)."""
    paths = {path for path, operations in openapi["paths"].items() if "get" in operations}
    for route in server.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        if route.method == "GET" and "prefix" not in info:  # 'prefix' marks the static directory
            paths.add(info.get("path") or info.get("formatter", ""))
    return sorted(p for p in paths if p)


def _numeric(name: str) -> bool:
    return name == "id" or name.endswith("_id") or name in ("position", "index", "number")


def fill(path: str, ids: Iterable[int]) -> list[str]:
    """Every way to fill `path`'s parameters: ids for the first, small numbers or words for the rest."""
    names = PARAM.findall(path)
    choices = []
    for index, name in enumerate(names):
        if not _numeric(name):
            choices.append(WORDS)
        else:
            choices.append(tuple(str(i) for i in sorted(set(ids) if index == 0 else range(1, 5))))
    out = []
    for combo in itertools.product(*choices):
        filled = path
        for name, value in zip(names, combo, strict=True):
            filled = filled.replace("{" + name + "}", value, 1)
        out.append(filled)
    return out


def scan(reply: Reply) -> bytes:
    """The reply's bytes, with any zip archive unpacked so compressed content is scanned too."""
    data = reply.body
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            data += b"".join(archive.read(name) for name in archive.namelist())
    return data


async def _make_jobs(classroom: Classroom, openapi: dict) -> list[str]:
    """Give the student a submission and a run, when the API offers them, so job routes are walked."""
    paths = openapi["paths"]
    student = classroom.student
    jobs = []
    if "post" in paths.get("/api/problems/{id}/submissions", {}):
        body = {"language": "python", "code": STUDENT_CODE}
        reply = await student.post(f"/api/problems/{classroom.problem_id}/submissions", json=body)
        assert reply.status in (202, 503), reply
        if reply.status == 202:
            jobs.append(f"/api/submissions/{reply.json['id']}")
    if "post" in paths.get("/api/runs", {}):
        body = {"language": "python", "code": STUDENT_CODE, "stdin": "1 2\n"}
        reply = await student.post("/api/runs", json=body)
        assert reply.status in (202, 503), reply
        if reply.status == 202:
            jobs.append(f"/api/runs/{reply.json['id']}")
    return jobs


async def _wait_for(client: ApiClient, path: str) -> dict:
    for _ in range(4):  # a busy machine may need more than one ?wait= round
        reply = await client.get(path, params={"wait": str(JOB_WAIT_S)})
        assert reply.status == 200, reply
        if reply.json["status"] in ("done", "failed"):
            return reply.json
    raise AssertionError(f"{path} did not finish: {reply!r}")


async def walk(classroom: Classroom, viewer: ApiClient) -> list[Reply]:
    server = classroom.server
    openapi = (await viewer.get("/api/openapi.json")).json
    ids = {classroom.problem_id, classroom.class_id, classroom.other_class_id, *range(1, 8)}
    ids |= {c.user_id for c in (classroom.student, classroom.outsider, classroom.teacher, classroom.admin)}
    replies = []
    for template in get_paths(server, openapi):
        for path in fill(template, ids):
            reply = await viewer.get_capped(path, seconds=0.5)
            assert reply.status < 500 or reply.status == 503, reply  # 503: degraded health, a full queue
            classroom.assert_no_secret(scan(reply), f"GET {path} ({reply.status})")
            replies.append(reply)
    return replies


@pytest.mark.parametrize("viewer", ["student", "outsider", "student_token"])
async def test_no_hidden_test_data_on_any_get_route(classroom: Classroom, viewer: str) -> None:
    openapi = (await classroom.student.get("/api/openapi.json")).json
    await _make_jobs(classroom, openapi)  # queued or running while the walk goes on
    client = (
        classroom.student.with_token(await classroom.student.create_token())
        if viewer == "student_token"
        else getattr(classroom, viewer)
    )
    replies = await walk(classroom, client)
    ok = [r for r in replies if r.status == 200]
    # Positive controls: the walk really reached the problem and its data.
    walked = {r.path for r in ok}
    assert "/api/openapi.json" in walked and "/api/me" in walked
    everything = b"".join(scan(r) for r in ok)
    if viewer == "outsider":
        assert f"/api/problems/{classroom.problem_id}" not in walked
        for marker in classroom.markers.shown:  # not in their class: not even the visible tests
            assert marker.encode() not in everything
    else:
        assert f"/api/problems/{classroom.problem_id}" in walked
        for marker in classroom.markers.shown:
            assert marker.encode() in everything, f"the walk never saw {marker}: it proves nothing"


async def test_finished_results_never_show_hidden_tests(classroom: Classroom, sandbox_ready: None) -> None:
    """With a working sandbox (else a skip, or a failure under CI): the program's stdout and stderr
    on hidden tests stay hidden.

    The student's program echoes its input to both streams, so a hidden test's result carrying
    either stream would carry the hidden stdin marker.
    """
    health = await classroom.student.get("/healthz")
    assert health.status == 200, health  # the sandbox is there: the appliance must see it too
    openapi = (await classroom.student.get("/api/openapi.json")).json
    jobs = await _make_jobs(classroom, openapi)
    assert jobs, "the API offers no submissions or runs"
    results = {path: await _wait_for(classroom.student, path) for path in jobs}
    submission = next(body for path, body in results.items() if path.startswith("/api/submissions/"))
    assert submission["status"] == "done", submission
    shown = json.dumps(submission)
    assert classroom.markers.visible_in in shown  # positive control: results carry the program's output
    replies = await walk(classroom, classroom.student)
    assert {path for path in jobs} <= {r.path for r in replies if r.status == 200}


async def test_results_keep_their_test_data_for_staff_only(classroom: Classroom, sandbox_ready: None) -> None:
    """Results keep the test data they were judged against (migration 0011). After the teacher
    replaces every test, the teacher still sees the old hidden data in the result; the student's
    walk shows none of it, nor of the new hidden tests."""
    openapi = (await classroom.student.get("/api/openapi.json")).json
    path = next(p for p in await _make_jobs(classroom, openapi) if p.startswith("/api/submissions/"))
    assert (await _wait_for(classroom.student, path))["status"] == "done"
    new = Markers.new()
    tests = problem_body(new, [classroom.class_id])["test_cases"]
    edited = await classroom.teacher.patch(f"/api/problems/{classroom.problem_id}", json={"test_cases": tests})
    assert edited.status == 200, edited

    # Positive control: the old hidden data is stored and served, to staff.
    staff = await classroom.teacher.get(path)
    for marker in classroom.markers.secret:
        assert marker.encode() in staff.body, f"the teacher's view lost {marker}: the walk proves nothing"
    replies = await walk(classroom, classroom.student)
    assert path in {r.path for r in replies if r.status == 200}
    for reply in replies:
        data = scan(reply)
        for marker in new.secret:
            assert marker.encode() not in data, f"new hidden test data {marker} leaked in GET {reply.path}"


async def test_staff_walk_sees_hidden_data(classroom: Classroom) -> None:
    """The same walk as the owner does reach hidden data: the markers and the scan work."""
    replies = await walk_unchecked(classroom, classroom.teacher)
    everything = b"".join(scan(r) for r in replies if r.status == 200)
    for marker in classroom.markers.secret:
        assert marker.encode() in everything


async def walk_unchecked(classroom: Classroom, viewer: ApiClient) -> list[Reply]:
    openapi = (await viewer.get("/api/openapi.json")).json
    replies = []
    for template in get_paths(classroom.server, openapi):
        for path in fill(template, {classroom.problem_id}):
            replies.append(await viewer.get_capped(path, seconds=0.5))
    return replies
