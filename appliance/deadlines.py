"""Due dates: one per problem and class, with a late policy, and what they mean for a student.

A problem shown to several classes may be due at a different time in each. A student in more than
one of those classes gets the most lenient: no due date if any of their classes has none, else
the latest one, and of two due at the same time `accept_late` before `close`. After it, a
submission is either taken and marked late (`accept_late`) or refused with 403 `problem_closed`
(`close`). Teachers and admins are never refused and never late: the due dates are their students'.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from appliance.accounts import User
from appliance.clock import api_iso, db_now, parse_iso, to_db
from appliance.db import Database
from appliance.errors import Forbidden, Invalid
from appliance.store import problems as problem_store
from appliance.store.problems import DueDate
from appliance.validation import F

LATE_POLICIES = ("accept_late", "close")


def due_dates_field() -> F:
    return F(
        "array",
        required=False,
        max_length=100,
        description="the due date in each class the problem is shown to (replaces them all; a class left out has"
        " none). late_policy: accept_late takes a late submission and marks it late, close refuses it (403"
        " problem_closed); teachers and admins are never refused",
        items=F(
            "object",
            properties={
                "class_id": F("integer", minimum=1),
                "due_at": F("string", nullable=True, max_length=40, description="ISO 8601 with an offset or Z"),
                "late_policy": F("string", required=False, enum=LATE_POLICIES),
            },
        ),
    )


def normalize(raw: list[dict[str, Any]], class_ids: Iterable[int]) -> list[DueDate]:
    """Due dates from a body checked by `due_dates_field`, for a problem shown to `class_ids`."""
    linked = set(class_ids)
    out: list[DueDate] = []
    for index, item in enumerate(raw):
        path = f"due_dates[{index}]"
        class_id = item["class_id"]
        if class_id not in linked:
            raise Invalid(
                "class_not_assigned",
                f"{path}: the problem is not shown to class {class_id}; tick the class first",
                field=f"{path}.class_id",
            )
        if any(due.class_id == class_id for due in out):
            raise Invalid(
                "duplicate_class", f"{path}: class {class_id} has a due date already", field=f"{path}.class_id"
            )
        due_at = item["due_at"]
        if due_at is not None:
            try:
                due_at = to_db(parse_iso(due_at))
            except (ValueError, OverflowError) as exc:
                raise Invalid(
                    "invalid_datetime", f"{path}: due_at must be an ISO 8601 date and time", field=f"{path}.due_at"
                ) from exc
        out.append(DueDate(class_id, due_at, item.get("late_policy", LATE_POLICIES[0])))
    return out


def due_date_json(due: DueDate) -> dict[str, Any]:
    return {"class_id": due.class_id, "due_at": api_iso(due.due_at), "late_policy": due.late_policy}


@dataclass(frozen=True)
class Deadline:
    """The due date that applies to one student on one problem."""

    due_at: str  # stored form
    late_policy: str

    def passed(self, now: str | None = None) -> bool:
        # Stored times sort as text in time order (appliance.clock).
        return (now or db_now()) > self.due_at

    def to_json(self) -> dict[str, Any]:
        return {"due_at": api_iso(self.due_at), "late_policy": self.late_policy, "past_due": self.passed()}


NO_DEADLINE = {"due_at": None, "late_policy": None, "past_due": False}


def most_lenient(due_dates: Sequence[DueDate]) -> Deadline | None:
    """The deadline a student in all these classes has (see the module's note); None: none."""
    if not due_dates or any(due.due_at is None for due in due_dates):
        return None
    latest = max(due_dates, key=lambda due: (due.due_at, due.late_policy == "accept_late"))
    assert latest.due_at is not None
    return Deadline(latest.due_at, latest.late_policy)


async def for_student(db: Database, user: User, problem_id: int) -> Deadline | None:
    if user.is_staff:
        return None
    mine = await problem_store.student_due_dates(db, user.id, problem_id)
    return most_lenient(mine.get(problem_id, []))


async def all_for_student(db: Database, user: User) -> dict[int, Deadline | None]:
    """problem id → the student's deadline, for every problem of their classes."""
    return {pid: most_lenient(dues) for pid, dues in (await problem_store.student_due_dates(db, user.id)).items()}


async def admit_submission(db: Database, user: User, problem_id: int) -> bool:
    """Whether a submission the user makes now is late; 403 problem_closed if it may not be made."""
    deadline = await for_student(db, user, problem_id)
    if deadline is None or not deadline.passed():
        return False
    if deadline.late_policy == "close":
        raise Forbidden(
            "problem_closed",
            f"this problem was due {api_iso(deadline.due_at)} and takes no more submissions; ask your teacher",
        )
    return True
