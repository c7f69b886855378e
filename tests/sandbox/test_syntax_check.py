"""Python's syntax check in a fork of the harness (sandbox/harness/syntax_check.py), through the
real sandbox: what python3 would call a syntax error, and nothing else, within bounds whatever the
source is."""

from __future__ import annotations

from tests.sandbox.conftest import Run


async def test_a_syntax_error_on_an_enormous_line_is_reported_in_bounds(run: Run) -> None:
    # The message quotes the offending line (python3 shows a window of it); the check caps it too.
    result = await run("x = (" + "1 + " * 75_000 + "\n")
    assert result.compile is not None and not result.compile.ok, result.compile
    assert "SyntaxError" in result.compile.output and len(result.compile.output) <= 9000
    assert result.tests == []


async def test_only_a_syntax_error_fails_the_check(run: Run) -> None:
    # compile() refuses a null byte with a ValueError, yet this python3 runs such a file: the
    # check leaves it to the run, which does what python3 does.
    result = await run("print(1)\n\x00\n")
    assert result.compile is not None and result.compile.ok, result.compile
    assert result.tests[0].status == "ok" and result.tests[0].stdout == b"1\n", result.tests[0]


async def test_the_check_names_the_student_s_file_and_line(run: Run) -> None:
    result = await run("print('fine')\nif True\n    print('x')\n")
    assert result.compile is not None and not result.compile.ok
    assert 'File "main.py", line 2' in result.compile.output and "SyntaxError" in result.compile.output
    assert "/work" not in result.compile.output
