"""Problems with visible, hidden and reveal-later test cases; who may see what.

Students only ever receive rows the store's student queries return: hidden test data is not
fetched for them at all, so no serializer or template can leak it.
"""

from __future__ import annotations

from typing import Any

from appliance import deadlines
from appliance.accounts import User
from appliance.classes import require_staff
from appliance.clock import api_iso, parse_iso, to_db
from appliance.db import Database, Row
from appliance.errors import Invalid, NotFound
from appliance.settings import Settings
from appliance.store import classes as class_store
from appliance.store import problems as problem_store
from appliance.validation import F, Schema
from runner.languages import LANGUAGES

VISIBILITIES = ("visible", "hidden", "reveal_later")
COMPARISONS = ("exact", "trailing_whitespace", "numeric")
# What students see of hidden tests: "passed k of n hidden tests" (the default, as in CodeRunner),
# or a verdict per hidden test.
HIDDEN_FEEDBACK = ("summary", "per_test")


def test_case_field(settings: Settings) -> F:
    text = F("string", max_length=settings.max_test_case_bytes)
    return F(
        "object",
        properties={
            "name": F("string", required=False, max_length=200),
            "stdin": F("string", required=False, max_length=settings.max_test_case_bytes),
            "expected_stdout": text,
            "visible": F("boolean", required=False, description="shorthand: true = visible, false = hidden"),
            "visibility": F("string", required=False, enum=VISIBILITIES),
            "reveal_at": F("string", required=False, nullable=True, max_length=40),
            "weight": F("number", required=False, minimum=0, maximum=1000),
        },
    )


def problem_schema(settings: Settings, *, partial: bool) -> Schema:
    required = not partial
    return Schema(
        {
            "title": F("string", required=required, min_length=1, max_length=200),
            "statement": F("string", required=required, max_length=settings.max_statement_chars),
            "language": F("string", required=required, enum=tuple(LANGUAGES)),
            "time_limit_ms": F("integer", required=False, minimum=100, maximum=settings.max_time_limit_ms),
            "memory_limit_mb": F("integer", required=False, minimum=16, maximum=settings.max_memory_limit_mb),
            "comparison": F("string", required=False, enum=COMPARISONS),
            "tolerance": F("number", required=False, minimum=0, maximum=1),
            "graphical": F(
                "boolean",
                required=False,
                nullable=True,
                description="programs run headless and their pictures are kept (pygame, turtle, tkinter,"
                " matplotlib); null: decided from each program's imports",
            ),
            "hidden_feedback": F(
                "string",
                required=False,
                enum=HIDDEN_FEEDBACK,
                description="what students see of hidden tests: summary (default) shows only 'passed k of n"
                " hidden tests'; per_test a verdict for each. Staff always see every test in full",
            ),
            "starter_code": F(
                "string",
                required=False,
                max_length=settings.max_code_chars,
                description="put in a student's editor while they have neither a draft nor a submission",
            ),
            "classes": F("array", required=False, max_length=100, items=F("integer", minimum=1)),
            "due_dates": deadlines.due_dates_field(),
            "test_cases": F(
                "array",
                required=required,
                max_length=settings.max_test_cases,
                items=test_case_field(settings),
            ),
        }
    )


def normalize_tests(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = []
    for index, test in enumerate(raw):
        path = f"test_cases[{index}]"
        visibility = test.get("visibility")
        if visibility is None:
            # Hidden unless said otherwise: forgetting the flag must not leak a test.
            visibility = "visible" if test.get("visible") is True else "hidden"
        elif "visible" in test and (visibility == "visible") != test["visible"]:
            raise Invalid("conflicting_fields", f"{path}: 'visible' contradicts 'visibility'", field=f"{path}.visible")
        reveal_at = test.get("reveal_at")
        if visibility == "reveal_later":
            if not reveal_at:
                raise Invalid("missing_field", f"{path}: reveal_later needs reveal_at", field=f"{path}.reveal_at")
            try:
                reveal_at = to_db(parse_iso(reveal_at))
            except (ValueError, OverflowError) as exc:
                raise Invalid(
                    "invalid_datetime",
                    f"{path}: reveal_at must be an ISO 8601 date and time",
                    field=f"{path}.reveal_at",
                ) from exc
        elif reveal_at:
            raise Invalid(
                "conflicting_fields",
                f"{path}: reveal_at only applies to reveal_later tests",
                field=f"{path}.reveal_at",
            )
        tests.append(
            {
                "name": (test.get("name") or f"test {index + 1}").strip() or f"test {index + 1}",
                "stdin": test.get("stdin", ""),
                "expected_stdout": test["expected_stdout"],
                "visibility": visibility,
                "reveal_at": reveal_at if visibility == "reveal_later" else None,
                "weight": float(test.get("weight", 1)),
            }
        )
    return tests


async def check_classes(db: Database, user: User, class_ids: list[int]) -> None:
    """Refuses a class that is not `user`'s own (admins may use any)."""
    for index, class_id in enumerate(class_ids):
        row = await class_store.get(db, class_id)
        if row is None or (user.role != "admin" and row["owner_id"] != user.id):
            raise Invalid("unknown_class", f"you have no class with id {class_id}", field=f"classes[{index}]")


def _test_json(row: Row, *, staff: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row["id"],
        "name": row["name"],
        "stdin": row["stdin"],
        "expected_stdout": row["expected_stdout"],
        "weight": row["weight"],
    }
    if staff:
        out["visibility"] = row["visibility"]
        out["visible"] = row["visibility"] == "visible"
        out["reveal_at"] = api_iso(row["reveal_at"])
    return out


def _problem_json(row: Row) -> dict[str, Any]:
    out = {key: row[key] for key in row.keys()}
    out["created_at"], out["updated_at"] = api_iso(row["created_at"]), api_iso(row["updated_at"])
    out["graphical"] = None if row["graphical"] is None else bool(row["graphical"])
    return out


async def _staff_row(db: Database, user: User, problem_id: int) -> Row:
    require_staff(user)
    row = await problem_store.get(db, problem_id)
    if row is None or (user.role != "admin" and row["owner_id"] != user.id):
        raise NotFound("not_found", "no such problem")
    return row


async def readable_row(db: Database, user: User, problem_id: int) -> Row:
    """The problem if `user` may read it; 404 otherwise, the same answer as for a missing one."""
    if user.is_staff:
        return await _staff_row(db, user, problem_id)
    row = await problem_store.get(db, problem_id)
    if row is None or not await problem_store.student_can_see(db, problem_id, user.id):
        raise NotFound("not_found", "no such problem")
    return row


def create_schema(settings: Settings) -> Schema:
    return problem_schema(settings, partial=False)


def update_schema(settings: Settings) -> Schema:
    return problem_schema(settings, partial=True)


async def create(db: Database, settings: Settings, user: User, data: dict[str, Any]) -> dict[str, Any]:
    """Create from a body already checked by `create_schema`."""
    require_staff(user)
    class_ids = data.get("classes", [])
    await check_classes(db, user, class_ids)
    tests = normalize_tests(data["test_cases"])
    fields = {
        "title": data["title"].strip(),
        "statement": data["statement"],
        "language": data["language"],
        "time_limit_ms": data.get("time_limit_ms", settings.default_time_limit_ms),
        "memory_limit_mb": data.get("memory_limit_mb", settings.default_memory_limit_mb),
        "comparison": data.get("comparison", "trailing_whitespace"),
        "tolerance": float(data.get("tolerance", 1e-6 if data.get("comparison") == "numeric" else 0)),
        "graphical": data.get("graphical"),
        "hidden_feedback": data.get("hidden_feedback", HIDDEN_FEEDBACK[0]),
        "starter_code": data.get("starter_code", ""),
    }
    if not fields["title"]:
        raise Invalid("empty", "field 'title' must not be blank", field="title")
    due_dates = deadlines.normalize(data.get("due_dates", []), class_ids)
    problem_id = await problem_store.create(db, user.id, fields, class_ids, tests, due_dates)
    return await get_for(db, user, problem_id)


async def update(db: Database, user: User, problem_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """Change from a body already checked by `update_schema`."""
    await _staff_row(db, user, problem_id)
    data = dict(data)
    class_ids = data.pop("classes", None)
    if class_ids is not None:
        await check_classes(db, user, class_ids)
    raw_due = data.pop("due_dates", None)
    due_dates = None
    if raw_due is not None:
        linked = class_ids if class_ids is not None else await problem_store.class_ids(db, problem_id)
        due_dates = deadlines.normalize(raw_due, linked)
    raw_tests = data.pop("test_cases", None)
    tests = normalize_tests(raw_tests) if raw_tests is not None else None
    if "title" in data:
        data["title"] = data["title"].strip()
        if not data["title"]:
            raise Invalid("empty", "field 'title' must not be blank", field="title")
    await problem_store.update(db, problem_id, data, class_ids, tests, due_dates)
    return await get_for(db, user, problem_id)


async def delete(db: Database, user: User, problem_id: int) -> None:
    await _staff_row(db, user, problem_id)
    await problem_store.delete(db, problem_id)


async def get_for(db: Database, user: User, problem_id: int) -> dict[str, Any]:
    row = await readable_row(db, user, problem_id)
    out = _problem_json(row)
    if user.is_staff:
        out["classes"] = await problem_store.class_ids(db, problem_id)
        out["due_dates"] = [deadlines.due_date_json(d) for d in await problem_store.due_dates(db, problem_id)]
        out["test_cases"] = [_test_json(t, staff=True) for t in await problem_store.all_tests(db, problem_id)]
    else:
        deadline = await deadlines.for_student(db, user, problem_id)
        out |= deadline.to_json() if deadline else deadlines.NO_DEADLINE
        out["test_cases"] = [_test_json(t, staff=False) for t in await problem_store.student_tests(db, problem_id)]
    # What students cannot see right now (reveal-later tests past their date are visible).
    out["hidden_test_count"] = await problem_store.hidden_test_count(db, problem_id)
    return out


async def list_for(db: Database, user: User) -> list[dict[str, Any]]:
    if user.role == "admin":
        rows = await problem_store.list_all(db)
    elif user.role == "teacher":
        rows = await problem_store.list_for_owner(db, user.id)
    else:
        rows = await problem_store.list_for_student(db, user.id)
    out = [
        {k: row[k] for k in ("id", "title", "language", "time_limit_ms", "memory_limit_mb")}
        | {"updated_at": api_iso(row["updated_at"])}
        for row in rows
    ]
    if user.is_staff:
        classes = await problem_store.classes_of(db, [p["id"] for p in out])
        for problem in out:
            problem["classes"] = classes[problem["id"]]
    else:
        mine = await deadlines.all_for_student(db, user)
        for problem in out:
            deadline = mine.get(problem["id"])
            problem |= deadline.to_json() if deadline else deadlines.NO_DEADLINE
    return out


async def visible_tests(db: Database, user: User, problem_id: int) -> list[dict[str, Any]]:
    await readable_row(db, user, problem_id)
    return [_test_json(t, staff=False) for t in await problem_store.student_tests(db, problem_id)]


async def all_tests(db: Database, user: User, problem_id: int) -> list[dict[str, Any]]:
    await _staff_row(db, user, problem_id)
    return [_test_json(t, staff=True) for t in await problem_store.all_tests(db, problem_id)]
