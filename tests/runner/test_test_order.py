"""The order a submission's tests run in: visible, then reveal-later, then hidden."""

from __future__ import annotations

from runner.queue import SECRECY_HIDDEN, SECRECY_LATER, SECRECY_VISIBLE, GradingTest
from runner.test_order import in_problem_order, run_order


def _test(name: str, secrecy: int) -> GradingTest:
    return GradingTest(None, name, "", "", 1.0, secrecy)


def test_less_secret_tests_run_first_and_results_return_to_the_problems_order() -> None:
    tests = [
        _test("h1", SECRECY_HIDDEN),
        _test("v1", SECRECY_VISIBLE),
        _test("later", SECRECY_LATER),
        _test("h2", SECRECY_HIDDEN),
        _test("v2", SECRECY_VISIBLE),
    ]
    order = run_order(tests)
    assert [tests[i].name for i in order] == ["v1", "v2", "later", "h1", "h2"]
    ran = [f"result of {tests[i].name}" for i in order]
    assert in_problem_order(ran, order) == [f"result of {t.name}" for t in tests]
