"""Output comparison and verdicts, on the host: expected outputs never enter the sandbox."""

from __future__ import annotations

import math
from collections.abc import Sequence

from runner.executor import TestOutcome

VERDICTS = (
    "accepted",
    "wrong_answer",
    "time_limit",
    "memory_limit",
    "output_limit",
    "runtime_error",
    "compile_error",
    "internal_error",
    "stopped",  # a run its owner stopped (the Stop button) before it finished
)
_STATUS_VERDICT = {
    "time_limit": "time_limit",
    "memory_limit": "memory_limit",
    "output_limit": "output_limit",
    "runtime_error": "runtime_error",
}


def _normalize_lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _numbers_match(expected: str, actual: str, tolerance: float) -> bool:
    exp_tokens, act_tokens = expected.split(), actual.split()
    if len(exp_tokens) != len(act_tokens):
        return False
    for exp, act in zip(exp_tokens, act_tokens, strict=True):
        try:
            e, a = float(exp), float(act)
        except ValueError:
            if exp != act:
                return False
            continue
        if math.isnan(e) or math.isnan(a):
            if not (math.isnan(e) and math.isnan(a)):
                return False
        elif not math.isclose(e, a, rel_tol=tolerance, abs_tol=tolerance):
            return False
    return True


def outputs_match(expected: str, actual: str, mode: str, tolerance: float = 0.0) -> bool:
    if mode == "exact":
        return expected == actual
    if mode == "trailing_whitespace":
        return _normalize_lines(expected) == _normalize_lines(actual)
    if mode == "numeric":
        return _numbers_match(expected, actual, tolerance)
    raise ValueError(f"unknown comparison mode {mode!r}")


def decode(data: bytes, errors: str = "replace") -> str:
    """Programs may print any bytes; invalid UTF-8 is replaced, never a crash (DESIGN §2.8). So is
    U+0000: PostgreSQL cannot store it in text, and a screen shows nothing for it."""
    return data.decode("utf-8", errors=errors).replace("\x00", "\ufffd")


def test_verdict(outcome: TestOutcome, expected: str | None, mode: str, tolerance: float) -> str:
    """A test's verdict; `expected` None means a plain run, where finishing cleanly is accepted."""
    if outcome.status != "ok":
        return _STATUS_VERDICT[outcome.status]
    if outcome.exit_code not in (0, None):
        return "runtime_error"
    if expected is None:
        return "accepted"
    return "accepted" if outputs_match(expected, decode(outcome.stdout), mode, tolerance) else "wrong_answer"


def overall(verdicts: Sequence[str], weights: Sequence[float]) -> tuple[str, float]:
    """The job's verdict (its first failing test's) and its score out of 100, weighted."""
    total = sum(weights)
    passed = sum(w for v, w in zip(verdicts, weights, strict=True) if v == "accepted")
    score = (
        round(100.0 * passed / total, 2) if total > 0 else (100.0 if all(v == "accepted" for v in verdicts) else 0.0)
    )
    failing = next((v for v in verdicts if v != "accepted"), "accepted")
    return failing, score
