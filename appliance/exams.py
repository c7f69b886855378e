"""Exam mode: per class, between a start and an end time.

While an exam runs, each student of its class sees only the exam's problems (the problem queries
filter on it: `appliance.store.exams.visible_in_exam_sql`), may be refused runs (`runs_allowed`),
has at most `max_submissions_per_problem` submissions to each exam problem inside the window
(a deduplicated resubmission makes no job and costs nothing), and keeps one live session: a new
login ends their other sessions, and API tokens are refused (a token is a second session).
Before the start and after the end nothing changes.

A student in several classes is restricted while any of their classes is in an exam; if two of
their classes are in exams at once they see both exams' problems, runs are refused if either
exam refuses them, and each exam's submission limit holds for its own problems.

Teachers manage the exams of their own classes, admins all; anyone else is told the exam does not
exist (404). Staff are never restricted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from appliance.accounts import User, hash_token
from appliance.classes import owned_row, require_staff
from appliance.clock import api_iso, db_epoch, db_now, from_db, parse_iso, to_db
from appliance.db import Conn, Database, Row
from appliance.errors import Forbidden, Invalid, NotFound
from appliance.presence import Presence
from appliance.settings import Settings
from appliance.store import classes as class_store
from appliance.store import exams as exam_store
from appliance.validation import F, Schema

MAX_SUBMISSIONS_CAP = 10_000  # a bound on the field's value, so it stays an integer SQLite stores


def exam_schema(settings: Settings, *, partial: bool) -> Schema:
    required = not partial
    return Schema(
        {
            "title": F("string", required=required, min_length=1, max_length=200),
            "starts_at": F("string", required=required, max_length=40, description="ISO 8601 with an offset or Z"),
            "ends_at": F(
                "string",
                required=required,
                max_length=40,
                description=f"after starts_at, at most exam_max_minutes ({settings.exam_max_minutes}) later",
            ),
            "problem_ids": F(
                "array",
                required=required,
                min_length=1,
                max_length=settings.exam_max_problems,
                items=F("integer", minimum=1),
                description="problems shown to this class, in the order students see them",
            ),
            "runs_allowed": F(
                "boolean",
                required=False,
                description="false: runs, live runs and the scratchpad are refused during the exam (403"
                " exam_runs_disabled); submissions stay allowed. Default true",
            ),
            "max_submissions_per_problem": F(
                "integer",
                required=False,
                nullable=True,
                minimum=1,
                maximum=MAX_SUBMISSIONS_CAP,
                description="submissions each student may make to each exam problem during the exam (403"
                " exam_submission_limit past it); null: no limit of the exam's own",
            ),
        }
    )


def create_schema(settings: Settings) -> Schema:
    return exam_schema(settings, partial=False)


def update_schema(settings: Settings) -> Schema:
    return exam_schema(settings, partial=True)


def _stored_time(text: str, field: str) -> str:
    try:
        return to_db(parse_iso(text))
    except (ValueError, OverflowError) as exc:
        raise Invalid("invalid_datetime", f"{field} must be an ISO 8601 date and time", field=field) from exc


def _check_window(settings: Settings, starts_at: str, ends_at: str) -> None:
    if ends_at <= starts_at:
        raise Invalid("exam_ends_before_start", "the exam must end after it starts", field="ends_at")
    if from_db(ends_at) - from_db(starts_at) > timedelta(minutes=settings.exam_max_minutes):
        raise Invalid(
            "exam_too_long",
            f"an exam lasts at most {settings.exam_max_minutes} minutes (the exam_max_minutes setting)",
            field="ends_at",
        )


async def _check_problems(db: Database, user: User, class_id: int, problem_ids: list[int]) -> None:
    """Every problem is shown to the class (and, for a teacher, theirs), and listed once."""
    if not problem_ids:
        raise Invalid("no_problems", "an exam needs at least one problem", field="problem_ids")
    shown = await exam_store.problems_in_class(db, class_id, problem_ids)
    seen: set[int] = set()
    for index, problem_id in enumerate(problem_ids):
        field = f"problem_ids[{index}]"
        if problem_id in seen:
            raise Invalid("duplicate_problem", f"problem {problem_id} is listed twice", field=field)
        seen.add(problem_id)
        owner = shown.get(problem_id)
        if owner is None or (user.role != "admin" and owner != user.id):
            raise Invalid(
                "problem_not_in_class",
                f"problem {problem_id} is not one of yours shown to this class; assign it to the class first",
                field=field,
            )


def state_of(exam: Row, now: str) -> str:
    if now < exam["starts_at"]:
        return "upcoming"
    return "running" if now < exam["ends_at"] else "over"


async def _exams_json(db: Database, rows: list[Row]) -> list[dict[str, Any]]:
    problems = await exam_store.problems_of(db, [row["id"] for row in rows])
    now = db_now()
    return [
        {
            "id": row["id"],
            "class_id": row["class_id"],
            "title": row["title"],
            "starts_at": api_iso(row["starts_at"]),
            "ends_at": api_iso(row["ends_at"]),
            "runs_allowed": bool(row["runs_allowed"]),
            "max_submissions_per_problem": row["max_submissions_per_problem"],
            "problem_ids": [p["id"] for p in problems[row["id"]]],
            "problems": [{"id": p["id"], "title": p["title"]} for p in problems[row["id"]]],
            "state": state_of(row, now),
            "created_at": api_iso(row["created_at"]),
            "updated_at": api_iso(row["updated_at"]),
        }
        for row in rows
    ]


async def _owned_exam(db: Database, user: User, exam_id: int) -> Row:
    """The exam if `user` manages its class; 404 otherwise, as for a missing one."""
    require_staff(user)
    exam = await exam_store.get(db, exam_id)
    if exam is None:
        raise NotFound("not_found", "no such exam")
    try:
        await owned_row(db, user, exam["class_id"])
    except NotFound:
        raise NotFound("not_found", "no such exam") from None
    return exam


async def create(db: Database, settings: Settings, user: User, class_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """From a body checked by `create_schema`."""
    require_staff(user)
    await owned_row(db, user, class_id)
    title = data["title"].strip()
    if not title:
        raise Invalid("empty", "field 'title' must not be blank", field="title")
    starts_at = _stored_time(data["starts_at"], "starts_at")
    ends_at = _stored_time(data["ends_at"], "ends_at")
    _check_window(settings, starts_at, ends_at)
    await _check_problems(db, user, class_id, data["problem_ids"])
    fields = {
        "title": title,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "runs_allowed": data.get("runs_allowed", True),
        "max_submissions_per_problem": data.get("max_submissions_per_problem"),
    }
    exam_id = await exam_store.create(db, class_id, fields, data["problem_ids"])
    return await get_for(db, user, exam_id)


async def list_for_class(db: Database, user: User, class_id: int) -> list[dict[str, Any]]:
    require_staff(user)
    await owned_row(db, user, class_id)
    return await _exams_json(db, await exam_store.list_for_class(db, class_id))


async def get_for(db: Database, user: User, exam_id: int) -> dict[str, Any]:
    return (await _exams_json(db, [await _owned_exam(db, user, exam_id)]))[0]


async def update(db: Database, settings: Settings, user: User, exam_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """From a body checked by `update_schema`; fields left out stay as they are."""
    exam = await _owned_exam(db, user, exam_id)
    fields: dict[str, Any] = {}
    if "title" in data:
        fields["title"] = data["title"].strip()
        if not fields["title"]:
            raise Invalid("empty", "field 'title' must not be blank", field="title")
    for name in ("starts_at", "ends_at"):
        if name in data:
            fields[name] = _stored_time(data[name], name)
    _check_window(settings, fields.get("starts_at", exam["starts_at"]), fields.get("ends_at", exam["ends_at"]))
    for name in ("runs_allowed", "max_submissions_per_problem"):
        if name in data:
            fields[name] = data[name]
    problem_ids = data.get("problem_ids")
    if problem_ids is not None:
        await _check_problems(db, user, exam["class_id"], problem_ids)
    await exam_store.update(db, exam, fields, problem_ids)
    return await get_for(db, user, exam_id)


async def delete(db: Database, user: User, exam_id: int) -> None:
    await _owned_exam(db, user, exam_id)
    await exam_store.delete(db, exam_id)


# --- while an exam runs ---------------------------------------------------------------------------


async def running_for(db: Database, user: User) -> list[Row]:
    """The exams restricting `user` now (none for staff)."""
    if user.is_staff:
        return []
    return await exam_store.running_for_student(db, user.id, db_now())


async def refuse_runs_if_disabled(db: Database, user: User) -> None:
    """403 exam_runs_disabled while an exam of the student's that allows no runs is running."""
    for exam in await running_for(db, user):
        if not exam["runs_allowed"]:
            raise Forbidden(
                "exam_runs_disabled",
                f"running code is turned off during the exam {exam['title']!r} (until {api_iso(exam['ends_at'])});"
                " you can still submit",
            )


async def problem_scope(db: Database, user: User) -> tuple[int, ...] | None:
    """The problems a student's submissions may be read for now: the running exams' during one,
    None (no narrowing) otherwise and for staff."""
    running = await running_for(db, user)
    if not running:
        return None
    problems = await exam_store.problems_of(db, [exam["id"] for exam in running])
    return tuple(sorted({row["id"] for rows in problems.values() for row in rows}))


@dataclass(frozen=True)
class SubmissionLimit:
    """At most `limit` submissions to one problem inside one exam's window."""

    exam_title: str
    limit: int
    starts_at: str
    ends_at: str


async def submission_limits(db: Database, user: User, problem_id: int) -> list[SubmissionLimit]:
    """The limits of the running exams that hold this problem, for `check_submission_limits`."""
    out = []
    for exam in await running_for(db, user):
        limit = exam["max_submissions_per_problem"]
        if limit is not None and problem_id in await exam_problem_ids(db, exam["id"]):
            out.append(SubmissionLimit(exam["title"], limit, exam["starts_at"], exam["ends_at"]))
    return out


async def exam_problem_ids(db: Database, exam_id: int) -> list[int]:
    return [row["id"] for row in (await exam_store.problems_of(db, [exam_id]))[exam_id]]


async def check_submission_limits(conn: Conn, user_id: int, problem_id: int, limits: list[SubmissionLimit]) -> None:
    """Inside the queueing transaction (under the writer lock), so two submissions at once cannot
    both take the last one: 403 exam_submission_limit when the limit is used up."""
    for limit in limits:
        used = await exam_store.submissions_in_window(conn, user_id, problem_id, limit.starts_at, limit.ends_at)
        if used >= limit.limit:
            raise Forbidden(
                "exam_submission_limit",
                f"you have used all {limit.limit} submissions to this problem in the exam {limit.exam_title!r}",
            )


async def student_view(db: Database, user: User) -> dict[str, Any]:
    """The caller's running exams, for their banner: end time, whether runs are allowed, and for each
    problem the submissions used of the limit."""
    out = []
    for exam in await running_for(db, user):
        used = {row["problem_id"]: row["used"] for row in await exam_store.window_counts(db, exam, user.id)}
        problems = (await exam_store.problems_of(db, [exam["id"]]))[exam["id"]]
        out.append(
            {
                "id": exam["id"],
                "title": exam["title"],
                "starts_at": api_iso(exam["starts_at"]),
                "ends_at": api_iso(exam["ends_at"]),
                "runs_allowed": bool(exam["runs_allowed"]),
                "max_submissions_per_problem": exam["max_submissions_per_problem"],
                "problems": [
                    {"id": p["id"], "title": p["title"], "submissions_used": used.get(p["id"], 0)} for p in problems
                ],
            }
        )
    return {"exams": out}


async def refuse_token_during_exam(db: Database, user: User) -> None:
    """A student's API token during their exam would be a second session: 403 exam_token_refused."""
    if await running_for(db, user):
        raise Forbidden(
            "exam_token_refused",
            "API tokens are not accepted during your exam (one session per student); use the browser you logged in"
            " with",
        )


async def refuse_export_during_exam(db: Database, student: User) -> None:
    """A student's data export holds every submission and draft, the other problems' too: none is
    made while the student is in an exam (403 exam_export_refused), for them or their teacher."""
    running = await running_for(db, student)
    if running:
        raise Forbidden(
            "exam_export_refused",
            f"{student.username} is in the exam {running[0]['title']!r} until {api_iso(running[0]['ends_at'])};"
            " their data can be exported after it",
        )


async def end_if_superseded(db: Database, user: User, session_token: str) -> bool:
    """During their exam a student keeps only their newest session: an older one (made before the
    exam started, when a login ends no other) ends at its next request, as if they had logged in
    elsewhere. True when this session was ended."""
    if user.is_staff or not await running_for(db, user):
        return False
    return await exam_store.end_if_older_session(db, user.id, hash_token(session_token))


async def after_login(db: Database, user: User, session_token: str) -> int:
    """A student logging in during their exam keeps only this new session: the others end (and
    their browsers are told why: `session_was_ended`). Returns how many ended."""
    if not await running_for(db, user):
        return 0
    return await exam_store.end_other_sessions(db, user.id, hash_token(session_token))


async def session_was_ended(db: Database, session_token: str) -> bool:
    return await exam_store.session_was_ended(db, hash_token(session_token))


async def live_view(db: Database, settings: Settings, presence: Presence, user: User, exam_id: int) -> dict[str, Any]:
    """For the exam's teacher: each student of the class, online or not, and per exam problem the
    submissions made inside the window and their best score."""
    exam = await _owned_exam(db, user, exam_id)
    exam_json = (await _exams_json(db, [exam]))[0]
    counts = {(row["user_id"], row["problem_id"]): row for row in await exam_store.window_counts(db, exam)}
    students = []
    for member in await class_store.members(db, exam["class_id"]):
        if member["role"] != "student":
            continue
        last = presence.last_seen(member["id"])
        cells = {}
        for problem_id in exam_json["problem_ids"]:
            row = counts.get((member["id"], problem_id))
            cells[str(problem_id)] = {
                "submissions": row["used"] if row else 0,
                "best_score": row["best_score"] if row else None,
            }
        students.append(
            {
                "id": member["id"],
                "username": member["username"],
                "online": presence.online(member["id"], settings.exam_presence_s),
                "last_seen_at": None if last is None else api_iso(db_epoch(last)),
                "problems": cells,
            }
        )
    return {"exam": exam_json, "presence_s": settings.exam_presence_s, "students": students}
