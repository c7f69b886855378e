"""The order a submission's tests run in: what a student may see first, hidden tests last.

Within one job, the harness restores a clean state between tests, but some state no sandbox can
reset (the PID counter, the CPU's load, timing) still reaches a later test. Running hidden tests
after every test whose output a student sees means nothing of a hidden test's input can reach
such output, whatever channel a program finds. Results are stored in the problem's own order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from runner.queue import GradingTest

_T = TypeVar("_T")


def run_order(tests: Sequence[GradingTest]) -> list[int]:
    """Indexes of tests in the order to run them: by secrecy, then as the problem lists them."""
    return sorted(range(len(tests)), key=lambda index: (tests[index].secrecy, index))


def in_problem_order(items_in_run_order: Sequence[_T], order: Sequence[int]) -> list[_T]:
    """Undo run_order: the item run at place k belongs to the test at order[k]."""
    by_index = dict(zip(order, items_in_run_order, strict=True))
    return [by_index[index] for index in range(len(order))]
