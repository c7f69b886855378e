"""Outcomes a beginner can read, through the HTTP API with the real sandbox: code that does not
parse is a syntax (compile) error in every language, before anything runs, and its message points
at the student's file and line; error messages name the student's file, never the sandbox's
directories; a program that ran out of input says so in a hint beside its untouched stderr."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from runner.languages import LANGUAGES
from runner.outcomes import student_paths
from tests.conftest import ApiClient, LiveServer

WAIT = {"wait": "30"}

# Each fails to parse on its line 3, and would print before it if it ran.
SYNTAX_ERROR = {
    "python": "print('ran')\nx = 1\nif x\n    print(x)\n",
    "c": '#include <stdio.h>\nint main(void) { puts("ran");\n  int x = 1\n  return x;\n}\n',
    "cpp": '#include <cstdio>\nint main() { std::puts("ran");\n  int x = 1\n  return x;\n}\n',
    "java": 'public class Main {\n  public static void main(String[] a) { System.out.println("ran");\n'
    "    int x = 1\n  }\n}\n",
    "javascript": "console.log('ran');\nlet x = 1;\nlet y = ;\n",
}
# Each fails while running, on its line 3.
CRASH = {
    "python": "x = 1\ny = 0\nprint(x / y)\n",
    "c": "#include <assert.h>\nint main(void) {\n  assert(1 == 2);\n}\n",
    "cpp": "#include <cassert>\nint main() {\n  assert(1 == 2);\n}\n",
    "java": 'public class Main {\n  public static void main(String[] a) {\n    throw new RuntimeException("boom");\n'
    "  }\n}\n",
    "javascript": "const a = 1;\nfunction f() { throw new Error('boom'); }\nf();\n",
}
# How each toolchain names the student's file at line 3.
AT_LINE_3 = {
    "python": 'File "main.py", line 3',
    "c": "main.c:3",
    "cpp": "main.cpp:3",
    "java": "Main.java:3",
    "javascript": "main.js:3",
}


def test_every_language_is_covered() -> None:
    assert set(SYNTAX_ERROR) == set(CRASH) == set(AT_LINE_3) == set(LANGUAGES)


async def _run(client: ApiClient, language: str, code: str, stdin: str = "") -> dict[str, Any]:
    posted = await client.post("/api/runs", json={"language": language, "code": code, "stdin": stdin})
    assert posted.status == 202, posted
    for _ in range(4):  # a slow machine, the five languages at once: up to 2 min
        done = await client.get(f"/api/runs/{posted.json['id']}", params=WAIT)
        if done.json["status"] == "done":
            return dict(done.json)
    raise AssertionError(f"not done: {done.json}")


async def _all(client: ApiClient, programs: dict[str, str]) -> dict[str, dict[str, Any]]:
    results = await asyncio.gather(*(_run(client, language, code) for language, code in programs.items()))
    return dict(zip(programs, results, strict=True))


@pytest.fixture
async def server(server_factory: Callable[..., Awaitable[LiveServer]], sandbox_ready: None) -> LiveServer:
    return await server_factory(max_jobs_in_flight_per_user=len(LANGUAGES))


async def test_code_that_does_not_parse_is_a_syntax_error_at_its_line(server: LiveServer) -> None:
    student = await server.make_user("student")
    for language, run in (await _all(student, SYNTAX_ERROR)).items():
        # Nothing ran: the check comes before the program, as a compiler does.
        assert (run["verdict"], run["stdout"], run["stderr"]) == ("compile_error", None, None), (language, run)
        assert AT_LINE_3[language] in run["compile_output"], (language, run["compile_output"])
        assert "/work/" not in run["compile_output"], (language, run["compile_output"])


async def test_a_submission_that_does_not_parse_is_a_compile_error(server: LiveServer) -> None:
    teacher = await server.make_user("teacher")
    klass = (await teacher.post("/api/classes", json={"name": "7B"})).json
    student = await server.make_user("student")
    assert (await student.post("/api/classes/join", json={"code": klass["join_code"]})).status == 200
    problem = {
        "title": "Echo",
        "statement": "Print the line you read.",
        "language": "python",
        "classes": [klass["id"]],
        "test_cases": [{"name": "one", "stdin": "hi\n", "expected_stdout": "hi\n", "visible": True}],
    }
    problem_id = (await teacher.post("/api/problems", json=problem)).json["id"]
    for language in ("python", "javascript"):
        posted = await student.post(
            f"/api/problems/{problem_id}/submissions", json={"language": language, "code": SYNTAX_ERROR[language]}
        )
        seen = (await student.get(f"/api/submissions/{posted.json['id']}", params=WAIT)).json
        assert (seen["verdict"], seen["score"], seen["tests"]) == ("compile_error", 0.0, []), (language, seen)
        assert AT_LINE_3[language] in seen["compile_output"], (language, seen["compile_output"])


async def test_error_messages_name_the_students_file(server: LiveServer) -> None:
    student = await server.make_user("student")
    for language, run in (await _all(student, CRASH)).items():
        assert run["verdict"] == "runtime_error", (language, run)
        assert AT_LINE_3[language] in run["stderr"], (language, run["stderr"])
        assert "/work/" not in run["stderr"], (language, run["stderr"])


async def test_running_out_of_input_gets_a_hint_beside_the_traceback(server: LiveServer) -> None:
    student = await server.make_user("student")
    two_lines = "a = input()\nb = input()\nprint(a + b)\n"
    run = await _run(student, "python", two_lines, stdin="only one line\n")
    assert run["verdict"] == "runtime_error"
    assert run["hint"] == "Your program asked for more input than it was given (input() found no more lines)."
    # The program's own message stays as Python printed it.
    assert run["stderr"].rstrip().endswith("EOFError: EOF when reading a line"), run["stderr"]
    assert 'File "main.py", line 2' in run["stderr"]

    java = (
        "import java.util.Scanner;\npublic class Main { public static void main(String[] args) {"
        " Scanner in = new Scanner(System.in); System.out.println(in.nextLine() + in.nextLine()); } }\n"
    )
    run = await _run(student, "java", java, stdin="only one line\n")
    assert run["verdict"] == "runtime_error"
    assert run["hint"] == "Your program asked for more input than it was given (the Scanner found no more input)."

    # Another error, or no error: no hint.
    crashed = await _run(student, "python", CRASH["python"])
    assert crashed["verdict"] == "runtime_error" and crashed["hint"] is None
    fine = await _run(student, "python", two_lines, stdin="a\nb\n")
    assert (fine["verdict"], fine["stdout"], fine["hint"], fine["stopped"]) == ("accepted", "ab\n", None, False)


def test_only_the_sandbox_directories_leave_the_messages() -> None:
    text = b'File "/work/run/main.py", line 3 (/work/build/main.js:3) /home/work/run/x /work/runner/y /work/data'
    assert student_paths(text) == b'File "main.py", line 3 (main.js:3) /home/work/run/x /work/runner/y /work/data'
