"""A student tries to read a hidden test's input through their warm sandbox, end to end through
the HTTP API, with nothing but a submission and runs of their own: through the tmpfs inode counter,
and through a Unix socket name an SCM_RIGHTS cycle keeps alive after every process died (the red
team's two working attacks before a job with hidden tests became the last its container serves)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from tests.conftest import LiveServer

# The hidden test's input holds a number the student must never see.
HIDDEN_NUMBER = 1000 + secrets.randbelow(9000)
HIDDEN_IN = f"HIDDEN-IN-{HIDDEN_NUMBER} HIDDEN-OUT-4\n"

# Answers correctly, and on the hidden test (recognised by its content) moves /tmp's inode counter
# by the number it holds. Prints nothing it should not.
ENCODER = r"""
import os, re, sys
line = sys.stdin.read()
m = re.search(r"HIDDEN-IN-(\d+)", line)
for _ in range(int(m.group(1)) if m else 0):
    open("/tmp/x", "w").close()
    os.unlink("/tmp/x")
print(line.split()[-1])
"""
READER = r"""
import os
open("/tmp/probe", "w").close()
print(os.stat("/tmp/probe").st_ino)
"""


async def _run(student, code: str) -> str:  # type: ignore[no-untyped-def]
    reply = await student.post("/api/runs", json={"language": "python", "code": code, "stdin": ""})
    assert reply.status == 202, reply.json
    run = (await student.get(f"/api/runs/{reply.json['id']}", params={"wait": "30"})).json
    assert run.get("status") == "done", run
    return run["stdout"]


async def _student_with_a_hidden_test(server: LiveServer):  # type: ignore[no-untyped-def]
    """A student of a class set a problem whose second test is hidden and holds HIDDEN_IN."""
    teacher = await server.make_user("teacher")
    klass = (await teacher.post("/api/classes", json={"name": "7B"})).json
    student = await server.make_user("student")
    assert (await student.post("/api/classes/join", json={"code": klass["join_code"]})).status == 200
    tests = [
        {"name": "shown", "stdin": "hello world\n", "expected_stdout": "world\n", "visible": True},
        {"name": "secret", "stdin": HIDDEN_IN, "expected_stdout": "HIDDEN-OUT-4\n", "visible": False},
    ]
    body = {"title": "Echo", "statement": "Print the last word.", "language": "python", "classes": [klass["id"]]}
    problem = (await teacher.post("/api/problems", json={**body, "test_cases": tests})).json
    return student, problem


async def test_a_student_cannot_read_a_hidden_input_through_their_warm_sandbox(
    server_factory: Callable[..., Awaitable[LiveServer]], sandbox_ready: None
) -> None:
    student, problem = await _student_with_a_hidden_test(await server_factory())

    before = int(await _run(student, READER))
    sub = await student.post(f"/api/problems/{problem['id']}/submissions", json={"language": "python", "code": ENCODER})
    seen = (await student.get(f"/api/submissions/{sub.json['id']}", params={"wait": "30"})).json
    assert seen["verdict"] == "accepted", seen
    assert str(HIDDEN_NUMBER).encode() not in repr(seen).encode()  # the product's own promise holds
    after = int(await _run(student, READER))
    leaked = after - before - 1
    assert leaked != HIDDEN_NUMBER, f"the student read the hidden input's number {leaked} from two runs"


# The whole hidden input, in plain text: the name of an abstract Unix socket that an SCM_RIGHTS
# cycle keeps alive after every process is gone.
SOCKET_ENCODER = r"""
import array, socket, sys
line = sys.stdin.read()
if "HIDDEN" in line:
    name = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    name.bind("\0" + line.strip())
    name.listen()
    b, c = socket.socketpair()
    b.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [name.fileno(), c.fileno()]))])
    c.sendmsg([b"y"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [b.fileno()]))])
print(line.split()[-1])
"""


async def test_a_student_cannot_read_a_hidden_input_from_a_leftover_socket_name(
    server_factory: Callable[..., Awaitable[LiveServer]], sandbox_ready: None
) -> None:
    student, problem = await _student_with_a_hidden_test(await server_factory())
    await _run(student, "print(1)")  # the student's sandbox is warm
    sub = await student.post(
        f"/api/problems/{problem['id']}/submissions", json={"language": "python", "code": SOCKET_ENCODER}
    )
    seen = (await student.get(f"/api/submissions/{sub.json['id']}", params={"wait": "30"})).json
    assert seen["verdict"] == "accepted", seen
    shown = await _run(student, "print(open('/proc/net/unix').read())")
    assert HIDDEN_IN.strip() not in shown, shown
