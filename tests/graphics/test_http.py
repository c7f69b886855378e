"""Pictures through the HTTP API with the real sandbox: a graphical problem judged on stdout while
its program draws, pictures of visible tests for the student, of hidden tests for staff only —
by no route to the student — and pictures of plain runs for their owner."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

import pytest

from tests.conftest import ApiClient, LiveServer
from tests.core.test_leak import fill, get_paths
from tests.graphics.pngdecode import close, decode
from tests.requirements import require_sandbox

RED, BLUE = (255, 0, 0), (0, 0, 255)
WAIT = {"wait": "30"}

# Fills its window with the colour it reads and prints the colour's name in capitals.
PAINTER = """
import pygame
color = input().strip()
pygame.init()
screen = pygame.display.set_mode((120, 80))
screen.fill(pygame.Color(color))
pygame.display.flip()
print(color.upper())
pygame.quit()
"""


def _problem(class_id: int) -> dict[str, object]:
    return {
        "title": "Paint it",
        "statement": "Fill the window with the colour you read; print its name in capitals.",
        "language": "python",
        "graphical": True,
        # A row per hidden test for the student (a verdict each), so its pictures could leak with it.
        "hidden_feedback": "per_test",
        "classes": [class_id],
        "test_cases": [
            {"name": "shown", "stdin": "red\n", "expected_stdout": "RED\n", "visible": True},
            {"name": "secret", "stdin": "blue\n", "expected_stdout": "BLUE\n", "visible": False},
        ],
    }


@pytest.fixture
async def server(server_factory: Callable[..., Awaitable[LiveServer]], fast_passwords: None) -> LiveServer:
    require_sandbox()
    return await server_factory(graphical_wall_time_s=6)


async def _classroom(server: LiveServer) -> tuple[ApiClient, ApiClient, dict[str, object]]:
    teacher = await server.make_user("teacher")
    klass = (await teacher.post("/api/classes", json={"name": "art"})).json
    student = await server.make_user("student")
    assert (await student.post("/api/classes/join", json={"code": klass["join_code"]})).status == 200
    created = await teacher.post("/api/problems", json=_problem(klass["id"]))
    assert created.status == 201 and created.json["graphical"] is True, created
    return teacher, student, created.json


async def _picture(client: ApiClient, url: str) -> tuple[int, bytes]:
    reply = await client.get(url)
    if reply.status == 200:
        assert reply.headers["Content-Type"] == "image/png"
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
    return reply.status, reply.body


async def test_hidden_tests_pictures_reach_staff_only(server: LiveServer) -> None:
    teacher, student, problem = await _classroom(server)
    posted = await student.post(
        f"/api/problems/{problem['id']}/submissions", json={"language": "python", "code": PAINTER}
    )
    submission_id = posted.json["id"]
    seen = (await student.get(f"/api/submissions/{submission_id}", params=WAIT)).json
    # Judged on stdout while it drew.
    assert seen["status"] == "done" and seen["verdict"] == "accepted", seen
    shown, hidden = seen["tests"]
    assert shown["images"] == [f"/api/submissions/{submission_id}/tests/1/images/1"] and shown["animation"] is None
    assert "images" not in hidden and "animation" not in hidden
    status, body = await _picture(student, shown["images"][0])
    assert status == 200 and close(decode(body).rgb(60, 40), RED)

    hidden_url = f"/api/submissions/{submission_id}/tests/2/images/1"
    assert (await _picture(student, hidden_url))[0] == 404
    status, secret = await _picture(teacher, hidden_url)
    assert status == 200 and close(decode(secret).rgb(60, 40), BLUE)
    staff_view = (await teacher.get(f"/api/submissions/{submission_id}")).json
    assert staff_view["tests"][1]["images"] == [hidden_url]

    # The content's hash is its ETag: a browser that has the picture gets a 304.
    first = await student.get(shown["images"][0])
    again = await student.get(shown["images"][0], headers={"If-None-Match": first.headers["ETag"]})
    assert again.status == 304 and again.body == b""

    # By no route: every GET path, every id and position, as the student.
    openapi = (await student.get("/api/openapi.json")).json
    digest = hashlib.sha256(secret).hexdigest().encode()
    walked = 0
    for template in get_paths(server, openapi):
        for path in fill(template, {submission_id, int(problem["id"]), *range(1, 5)}):
            reply = await student.get_capped(path, seconds=0.5)
            assert secret not in reply.body and digest not in reply.body, f"the hidden picture leaked in GET {path}"
            walked += reply.status == 200
    assert walked > 10


async def test_a_published_rejudge_shows_its_pictures_to_the_student(server: LiveServer) -> None:
    teacher, student, problem = await _classroom(server)
    posted = await student.post(
        f"/api/problems/{problem['id']}/submissions", json={"language": "python", "code": PAINTER}
    )
    submission_id = posted.json["id"]
    assert (await student.get(f"/api/submissions/{submission_id}", params=WAIT)).json["verdict"] == "accepted"
    rejudge_id = (await teacher.post(f"/api/problems/{problem['id']}/rejudge", json={})).json["rejudges"][0]
    assert (await teacher.get(f"/api/submissions/{rejudge_id}", params=WAIT)).json["status"] == "done"
    # Not yet published: the rejudge's pictures are the teacher's alone.
    assert (await _picture(student, f"/api/submissions/{rejudge_id}/tests/1/images/1"))[0] == 404
    assert (await teacher.post(f"/api/problems/{problem['id']}/rejudge/publish", json={})).status == 200

    shown = (await student.get(f"/api/submissions/{submission_id}")).json["tests"]
    assert shown[0]["images"] == [f"/api/submissions/{rejudge_id}/tests/1/images/1"]
    assert (await _picture(student, shown[0]["images"][0]))[0] == 200
    assert (await _picture(student, f"/api/submissions/{rejudge_id}/tests/2/images/1"))[0] == 404
    stranger = await server.make_user("student")
    assert (await _picture(stranger, shown[0]["images"][0]))[0] == 404


async def test_runs_show_their_pictures_to_their_owner(server: LiveServer) -> None:
    owner = await server.make_user("student")
    turtle = "import turtle\nturtle.pencolor('red')\nturtle.pensize(20)\nturtle.forward(100)\nturtle.done()\n"
    posted = await owner.post("/api/runs", json={"language": "python", "code": turtle})  # recognised by itself
    run = (await owner.get(f"/api/runs/{posted.json['id']}", params=WAIT)).json
    assert run["verdict"] == "accepted" and run["animation"] is None, run
    assert run["images"] == [f"/api/runs/{posted.json['id']}/images/1"]
    status, body = await _picture(owner, run["images"][0])
    picture = decode(body)
    assert status == 200 and close(picture.rgb(picture.width // 2 + 50, picture.height // 2), RED)
    stranger = await server.make_user("student")
    assert (await _picture(stranger, run["images"][0]))[0] == 404
    assert (await _picture(owner, f"/api/runs/{posted.json['id']}/images/2"))[0] == 404

    # Said not to be graphical: it runs as any program (matplotlib still draws off-screen), no pictures.
    plot = "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.savefig('p.png')\nprint('saved')\n"
    posted = await owner.post("/api/runs", json={"language": "python", "code": plot, "graphical": False})
    run = (await owner.get(f"/api/runs/{posted.json['id']}", params=WAIT)).json
    assert run["stdout"] == "saved\n" and run["images"] == [] and run["animation"] is None, run
