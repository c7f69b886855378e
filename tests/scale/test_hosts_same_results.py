"""Runner hosts judge exactly as the appliance's own engine does: the runner's outcome cases (every
language's correct, wrong, crashing, failing-to-compile, not-parsing, slow and memory-hungry
program, and one that prints too much) submitted to a remote-mode cluster and to a local-mode
appliance get the same verdict, score, compile output and per-test verdicts, stdout and stderr.
Times and ids differ by nature and are left out."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ApiClient
from tests.runner.appliance_process import create_account, serving
from tests.runner.test_clear_outcomes_http import CRASH as CRASH_AT_LINE_3
from tests.runner.test_clear_outcomes_http import SYNTAX_ERROR
from tests.sandbox.test_outcomes import COMPILE_ERROR, CRASH, MEMORY_HOG, SLOW, SUM
from tests.scale.cluster import cluster, finished, logged_in, server_jobs

TESTS = [
    {"name": "shown", "stdin": "1 2\n", "expected_stdout": "3\n", "visible": True},
    {"name": "secret", "stdin": "40 2\n", "expected_stdout": "42\n", "visible": False},
]
LIMITS = {"time_limit_ms": 2000, "memory_limit_mb": 128}
# The slow and memory-hungry programs run to their limits on every test: one test each keeps the
# set within its time.
PROBLEMS = {
    "two tests": {"title": "Sum", "statement": "Print a + b.", "language": "python", **LIMITS, "test_cases": TESTS},
    "one test": {"title": "Sum once", "statement": "Print a + b.", "language": "python", **LIMITS,
                 "test_cases": TESTS[1:]},
}  # fmt: skip

CASES: dict[str, tuple[str, str, str]] = {
    **{f"sum {lang}": ("two tests", lang, code) for lang, code in SUM.items()},
    **{f"crash {lang}": ("two tests", lang, code) for lang, code in CRASH.items()},
    **{f"crash at line 3 {lang}": ("two tests", lang, code) for lang, code in CRASH_AT_LINE_3.items()},
    **{f"compile error {lang}": ("two tests", lang, code) for lang, code in COMPILE_ERROR.items()},
    **{f"syntax error {lang}": ("two tests", lang, code) for lang, code in SYNTAX_ERROR.items()},
    **{f"slow {lang}": ("one test", lang, code) for lang, code in SLOW.items()},
    **{f"memory hog {lang}": ("one test", lang, code) for lang, code in MEMORY_HOG.items()},
    "wrong answer": ("two tests", "python", "print(input())\n"),
    "half right": ("two tests", "python", "a, b = map(int, input().split())\nprint(3 if a == 1 else 0)\n"),
    "too much output": ("two tests", "python", "print('x' * 50_000_000)\n"),
    "out of input": ("two tests", "python", "a = input()\nb = input()\nprint(a + b)\n"),
}


def _masked(text: str | None) -> str | None:
    """A runtime's out-of-memory report reduced to its error lines, without addresses and numbers:
    the rest (Node's list of the last collections, its native stack) differs in length and frames
    from one run to the next on any engine."""
    if text is None:
        return None
    native_frame = re.compile(r"\s*\d+: 0x[0-9a-fA-F]+")
    errors = [line for line in text.splitlines() if "error" in line.lower() and not native_frame.match(line)]
    return re.sub(r"\d+(\.\d+)?", "N", re.sub(r"0x[0-9a-fA-F]+", "0x?", "\n".join(errors)))


def _test(test: dict[str, Any]) -> dict[str, Any]:
    out = {key: test.get(key) for key in ("name", "verdict", "stdout", "stderr", "truncated", "hint")}
    if test["verdict"] == "memory_limit":
        out["stderr"] = _masked(out["stderr"])
    return out


def judged(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": result["status"],
        "verdict": result["verdict"],
        "score": result["score"],
        "compile_output": result["compile_output"],
        "tests": [_test(test) for test in result["tests"]],
    }


async def judge_all(url: str) -> dict[str, dict[str, Any]]:
    """Every case submitted by a teacher (no student budget applies) to one problem; each one's result."""
    teacher: ApiClient = await logged_in(url, "teach")
    try:
        problems = {}
        for key, body in PROBLEMS.items():
            made = await teacher.post("/api/problems", json=body)
            assert made.status == 201, made
            problems[key] = made.json["id"]
        ids = {}
        for name, (problem, language, code) in CASES.items():
            posted = await teacher.post(
                f"/api/problems/{problems[problem]}/submissions", json={"language": language, "code": code}
            )
            assert posted.status == 202 and not posted.json["deduplicated"], (name, posted)
            ids[name] = posted.json["id"]
        results = await asyncio.gather(*(finished(teacher, job_id, tries=10) for job_id in ids.values()))
        return {name: judged(result) for name, result in zip(ids, results, strict=True)}
    finally:
        await teacher.close()


@pytest.mark.timeout(600)
async def test_runner_hosts_judge_every_case_as_the_local_engine_does(tmp_path: Path, sandbox_ready: None) -> None:
    with cluster(tmp_path / "remote", {"teach": "teacher"}) as c:
        c.add_worker("alpha", slots=1)
        c.add_worker("beta", slots=1)
        remote = await judge_all(c.server.url)
        hosts = {row["host"] for row in server_jobs(c.server)}
    assert hosts == {"alpha", "beta"}, hosts  # every job ran on a host, and both took some

    local_dir = tmp_path / "local"
    create_account(local_dir, "teacher", "teach")
    with serving(local_dir, {"LABRUNNER_WORKERS": "2"}) as local_server:
        local = await judge_all(local_server.url)

    # The cases cover every outcome, so the comparison below is not between two empty sets.
    verdicts = {result["verdict"] for result in local.values()}
    assert verdicts >= {"accepted", "wrong_answer", "runtime_error", "compile_error", "time_limit", "memory_limit"}
    assert "output_limit" in verdicts or local["too much output"]["tests"][0]["truncated"]
    differing = {name: (remote[name], local[name]) for name in CASES if remote[name] != local[name]}
    assert differing == {}
