"""A hidden test's expected output never leaves the server: everything the broker carries (read
with MONITOR as the server's broker user), and everything a runner host logs or keeps, holds the
hidden test's input (proof the capture saw the plan) and never its expected output."""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

from tests.conftest import class_with
from tests.scale.cluster import SERVER_PASSWORD, Broker, Cluster, cluster, finished, logged_in


def forms(text: str) -> list[bytes]:
    """`text` as bytes, and as it reads inside base64 of any larger bytes (the three alignments,
    without the characters its neighbours share)."""
    token = text.encode()
    out = [token]
    for lead in range(3):
        encoded = base64.b64encode(b"\0" * lead + token)
        out.append(encoded[(4 if lead else 0) : (lead + len(token)) // 3 * 4])
    return out


def holds(data: bytes, text: str) -> bool:
    return any(form in data for form in forms(text))


def monitoring(broker: Broker, capture: Path) -> subprocess.Popen[bytes]:
    """`redis-cli MONITOR` as the server's broker user: every command the broker runs, into `capture`."""
    with open(capture, "wb") as out:
        return subprocess.Popen(
            ["redis-cli", "-p", str(broker.port), "--user", "server", "--pass", SERVER_PASSWORD,
             "--no-auth-warning", "monitor"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def host_files(c: Cluster) -> dict[Path, bytes]:
    return {
        path: path.read_bytes()
        for worker in c.workers.values()
        for path in worker.data_dir.rglob("*")
        if path.is_file() and not path.is_symlink()
    }


async def test_the_expected_output_of_a_hidden_test_never_reaches_a_runner_host(
    tmp_path: Path, sandbox_ready: None
) -> None:
    tag = uuid.uuid4().hex
    stdin, expected = f"STDIN-{tag}\n", f"EXPECTED-{tag}\n"
    with cluster(tmp_path, {"teach": "teacher", "kim": "student"}) as c:
        c.add_worker("alpha", slots=1)
        c.add_worker("beta", slots=1)
        teacher, student = await logged_in(c.server.url, "teach"), await logged_in(c.server.url, "kim")
        capture = tmp_path / "monitor.txt"
        monitor = monitoring(c.broker, capture)
        try:
            klass = await class_with(teacher, [student])
            problem = await teacher.post(
                "/api/problems",
                json={
                    "title": "Echo",
                    "statement": "Print the line you read.",
                    "language": "python",
                    "classes": [klass["id"]],
                    "test_cases": [
                        {"name": "shown", "stdin": "hi\n", "expected_stdout": "hi\n", "visible": True},
                        {"name": "secret", "stdin": stdin, "expected_stdout": expected, "visible": False},
                    ],
                },
            )
            assert problem.status == 201, problem
            # The program echoes its input: it never prints the expected output, so nothing a
            # host may see (its output included) has any business holding it.
            posted = await student.post(
                f"/api/problems/{problem.json['id']}/submissions",
                json={"language": "python", "code": "print(input())"},
            )
            assert posted.status == 202, posted
            seen = await finished(teacher, posted.json["id"])
            assert [t["verdict"] for t in seen["tests"]] == ["accepted", "wrong_answer"], seen
            assert seen["tests"][1]["stdout"] == stdin  # it ran on a host, with the hidden input
        finally:
            monitor.terminate()
            monitor.wait(timeout=10)
            await teacher.close()
            await student.close()

    # Read once everything stopped: the hosts' last words are in their logs.
    wire = capture.read_bytes()
    assert holds(wire, stdin.rstrip("\n")), "the capture missed the plan"
    assert b"labrunner:host:" in wire
    assert not holds(wire, expected.rstrip("\n")), "the expected output crossed the broker"
    files = host_files(c)
    assert any(path.name == "worker.log" for path in files)
    leaks = [path for path, data in files.items() if holds(data, expected.rstrip("\n"))]
    assert leaks == []
