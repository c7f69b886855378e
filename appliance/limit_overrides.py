"""Quota overrides: a teacher lifts (or lowers) a student's limits for one student or a class.

The limits that can be overridden are settings (`NAMES`); an override's value 0 means no limit,
as in the settings. A student's effective value: their own override, else the most generous one
among their classes, else the setting. Staff have no such limits at all.

Read from SQLite for each run or submission (two indexed lookups in one query, cheaper than a
cache that classes joining, overrides expiring and writes would all have to invalidate), so an
override takes effect at the next request, with no restart.

Who may set them: a teacher for their own classes and their own students (`student_access`), an
admin for any; everyone else is told the class or student does not exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from appliance import classes, student_access
from appliance.accounts import User
from appliance.clock import api_iso, now, parse_iso, to_db
from appliance.db import Database, Row
from appliance.errors import Invalid
from appliance.settings import SETTINGS, Settings
from appliance.store import limit_overrides as override_store

NAMES = (
    "runs_per_user_per_minute",
    "submissions_per_user_per_minute",
    "max_jobs_in_flight_per_user",
    "submissions_per_problem_per_minute",
    "submissions_per_problem_per_hour",
)
MAX_VALUE = 10_000
_HELP = {spec.name: spec.help for spec in SETTINGS if spec.name in NAMES}


@dataclass(frozen=True)
class Limits:
    """A student's limits in force; None: no limit."""

    runs_per_user_per_minute: int | None
    submissions_per_user_per_minute: int | None
    max_jobs_in_flight_per_user: int | None
    submissions_per_problem_per_minute: int | None
    submissions_per_problem_per_hour: int | None

    @classmethod
    def of(cls, values: Mapping[str, int]) -> Limits:
        return cls(**{name: values[name] or None for name in NAMES})


def defaults(settings: Settings) -> dict[str, int]:
    return {name: getattr(settings, name) for name in NAMES}


def _more_generous(a: int, b: int) -> int:
    return 0 if 0 in (a, b) else max(a, b)


def _resolve(settings: Settings, rows: list[Row]) -> tuple[dict[str, int], dict[str, str]]:
    """(value, source) per name from a student's overrides in force."""
    values, sources = defaults(settings), dict.fromkeys(NAMES, "setting")
    from_classes: dict[str, int] = {}
    for row in rows:
        if row["scope"] == "class" and row["name"] in values:
            name = row["name"]
            from_classes[name] = _more_generous(from_classes.get(name, row["value"]), row["value"])
    for name, value in from_classes.items():
        values[name], sources[name] = value, "class"
    for row in rows:
        if row["scope"] == "user" and row["name"] in values:
            values[row["name"]], sources[row["name"]] = row["value"], "user"
    return values, sources


async def effective(db: Database, settings: Settings, user: User) -> Limits:
    """The limits on `user`'s runs and submissions now (staff: none)."""
    if user.is_staff:
        return Limits(None, None, None, None, None)
    values, _ = _resolve(settings, await override_store.in_force_for_student(db, user.id))
    return Limits.of(values)


def _override_json(row: Row) -> dict[str, Any]:
    return {"value": row["value"], "until": api_iso(row["until"]), "set_at": api_iso(row["set_at"])}


def _table(settings: Settings, rows: list[Row]) -> list[dict[str, Any]]:
    by_name = {row["name"]: row for row in rows}
    return [
        {
            "name": name,
            "help": _HELP[name],
            "default": getattr(settings, name),
            "override": _override_json(by_name[name]) if name in by_name else None,
        }
        for name in NAMES
    ]


async def for_class(db: Database, settings: Settings, actor: User, class_id: int) -> dict[str, Any]:
    await classes.owned_row(db, actor, class_id)
    return {"class_id": class_id, "limits": _table(settings, await override_store.of_class(db, class_id))}


async def for_user(db: Database, settings: Settings, actor: User, user_id: int) -> dict[str, Any]:
    """A student's overrides and effective limits (their teacher, an admin, or the student)."""
    await student_access.managed_student(db, actor, user_id, self_allowed=True)
    table = _table(settings, await override_store.of_user(db, user_id))
    values, sources = _resolve(settings, await override_store.in_force_for_student(db, user_id))
    for item in table:
        item["effective"], item["source"] = values[item["name"]], sources[item["name"]]
    return {"user_id": user_id, "limits": table}


def _until(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        moment: datetime = parse_iso(text)
        stored = to_db(moment)
    except (ValueError, OverflowError):
        raise Invalid("invalid_until", "until must be a time like 2026-03-01T10:30:00Z", field="until") from None
    if moment <= now():
        raise Invalid("invalid_until", "until must be in the future", field="until")
    return stored


def _changes(data: Mapping[str, Any]) -> tuple[dict[str, int | None], str | None]:
    changes: dict[str, int | None] = data["limits"]
    if not changes:
        raise Invalid("empty", "name at least one limit to set (a number, 0 for no limit) or remove (null)")
    return changes, _until(data.get("until"))


async def set_for_class(
    db: Database, settings: Settings, actor: User, class_id: int, data: Mapping[str, Any]
) -> dict[str, Any]:
    await classes.owned_row(db, actor, class_id)
    changes, until = _changes(data)
    await override_store.put(db, class_id=class_id, changes=changes, until=until, set_by=actor.id)
    return await for_class(db, settings, actor, class_id)


async def set_for_user(
    db: Database, settings: Settings, actor: User, user_id: int, data: Mapping[str, Any]
) -> dict[str, Any]:
    classes.require_staff(actor)
    await student_access.managed_student(db, actor, user_id)
    changes, until = _changes(data)
    await override_store.put(db, user_id=user_id, changes=changes, until=until, set_by=actor.id)
    return await for_user(db, settings, actor, user_id)


async def all_overrides(db: Database) -> list[dict[str, Any]]:
    return [
        {
            "id": row["id"],
            "user_id": row["user_id"],
            "username": row["username"],
            "class_id": row["class_id"],
            "class_name": row["class_name"],
            "name": row["name"],
            **_override_json(row),
            "set_by": row["set_by"],
        }
        for row in await override_store.all_in_force(db)
    ]
