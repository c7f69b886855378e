"""Issue 9, findings 1-5, end to end: a student's program attacks the harness during a hidden test
and tries to read the loot back in a visible one. Nothing of the hidden test reaches anything the
student can read, the job is judged on what the program really did, and the runner never pauses.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from textwrap import dedent

from tests.conftest import ApiClient, LiveServer
from tests.sandbox.test_supervisor_attacks import forged_lines

SECRET = "HIDDEN-7731-QZX"

# During the hidden test (its input starts with HIDDEN) the program does everything the review
# did: forged events for every test and type into every descriptor it can open, its input parked
# in PID 1's stdin, fork failures counted in the cgroup, its input spelled out in the PID counter.
# During a visible test it prints everything it can find.
ATTACK = dedent("""
    import glob, json, os, sys
    data = sys.stdin.read().strip()
    forged_text = FORGED
    def sweep(payload):
        for path in glob.glob('/proc/[0-9]*/fd/*'):
            if path.startswith(f'/proc/{os.getpid()}/'):
                continue  # its own output is its own business
            try:
                handle = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                continue
            try:
                os.write(handle, payload)
            except OSError:
                pass
            os.close(handle)
    if data.startswith('HIDDEN'):
        sweep(forged_text.replace('SECRET', data).encode())
        for _ in range(ord(data[-1])):
            try:
                pid = os.fork()
            except OSError:
                continue
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
        print(os.getpid())
    else:
        found = {'pid': os.getpid(), 'cgroup': glob.glob('/sys/fs/cgroup/**/*', recursive=True)}
        try:
            fd = os.open('/proc/1/fd/0', os.O_RDONLY | os.O_NONBLOCK)
            found['stash'] = os.read(fd, 1000).decode(errors='replace')
        except OSError as exc:
            found['stash'] = exc.errno
        print(json.dumps(found))
""").replace("FORGED", json.dumps(forged_lines("SECRET")))


async def _classroom(server: LiveServer) -> tuple[ApiClient, ApiClient, dict[str, object]]:
    teacher = await server.make_user("teacher")
    klass = (await teacher.post("/api/classes", json={"name": "7B"})).json
    student = await server.make_user("student")
    assert (await student.post("/api/classes/join", json={"code": klass["join_code"]})).status == 200
    problem = {
        "title": "Echo",
        "statement": "Echo the line.",
        "language": "python",
        "classes": [klass["id"]],
        # Per-test verdicts shown: the most a student can be shown of hidden tests.
        "hidden_feedback": "per_test",
        # The hidden test comes first in the problem: the order the review attacked.
        "test_cases": [
            {"name": "secret", "stdin": SECRET + "\n", "expected_stdout": SECRET + "\n", "visibility": "hidden"},
            {"name": "shown", "stdin": "hello\n", "expected_stdout": "hello\n", "visibility": "visible"},
        ],
    }
    created = await teacher.post("/api/problems", json=problem)
    assert created.status == 201, created.text
    return teacher, student, created.json


async def test_a_hidden_tests_input_reaches_nothing_a_student_reads(
    server_factory: Callable[..., Awaitable[LiveServer]], sandbox_ready: None
) -> None:
    server = await server_factory()
    teacher, student, problem = await _classroom(server)
    reply = await student.post(
        f"/api/problems/{problem['id']}/submissions", json={"language": "python", "code": ATTACK}
    )
    assert reply.status == 202, reply.text
    seen = await student.get(f"/api/submissions/{reply.json['id']}", params={"wait": "30"})
    assert seen.status == 200 and seen.json["status"] == "done", seen.text
    # Everything but the student's own code (which spells out the forged text) is checked.
    shown_to_student = json.dumps({key: value for key, value in seen.json.items() if key != "code"})
    for secret_part in (SECRET, "7731", "QZX", "FORGED"):
        assert secret_part not in shown_to_student, seen.json
    # Judged on what the program really printed, never on a forged report, and not retried.
    assert seen.json["verdict"] == "wrong_answer" and seen.json["infra_retries"] == 0, seen.json
    hidden, shown = seen.json["tests"]
    assert hidden["verdict"] == "wrong_answer" and "stdout" not in hidden
    found = json.loads(shown["stdout"])
    assert found["cgroup"] == [] and isinstance(found["stash"], int), found

    # The teacher sees why: the visible test ran first (a lower PID), the hidden one after it, so
    # no state a program can leave behind (the PID counter included) ever reaches shown output.
    full = (await teacher.get(f"/api/submissions/{reply.json['id']}")).json
    hidden_pid = int(full["tests"][0]["stdout"])
    assert found["pid"] < hidden_pid, (found, hidden_pid)
    assert "FORGED" not in json.dumps(full["tests"])


async def test_a_forged_stale_image_report_pauses_nobody(
    server_factory: Callable[..., Awaitable[LiveServer]], sandbox_ready: None
) -> None:
    server = await server_factory()
    attacker = await server.make_user("student")
    classmate = await server.make_user("student")
    forged = dedent("""
        import glob, os
        forged_text = FORGED
        for path in glob.glob('/proc/[0-9]*/fd/*'):
            if path.startswith(f'/proc/{os.getpid()}/'):
                continue
            try:
                handle = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
                os.write(handle, forged_text.encode())
                os.close(handle)
            except OSError:
                pass
        print('sent')
    """).replace("FORGED", json.dumps(forged_lines("x")))
    runs = [
        (await attacker.post("/api/runs", json={"language": "python", "code": forged + f"# {n}\n"})).json["id"]
        for n in range(3)
    ]
    for run_id in runs:
        result = (await attacker.get(f"/api/runs/{run_id}", params={"wait": "30"})).json
        assert (result["status"], result["verdict"], result["stdout"]) == ("done", "accepted", "sent\n"), result
        assert result["infra_retries"] == 0
    hello = await classmate.post("/api/runs", json={"language": "python", "code": "print('hi')"})
    result = (await classmate.get(f"/api/runs/{hello.json['id']}", params={"wait": "30"})).json
    assert (result["status"], result["stdout"]) == ("done", "hi\n")
    health = (await classmate.get("/healthz")).json
    assert (health["status"], health["runner"], health["image"]) == ("ok", "ok", "ok"), health
