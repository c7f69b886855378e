"""Timestamps are stored as fixed-width UTC ISO strings so SQL can compare them as text."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(FORMAT)


def now_iso() -> str:
    return iso(now())


def later_iso(delta: timedelta) -> str:
    return iso(now() + delta)


def parse_iso(text: str) -> datetime:
    """Accept any ISO 8601 timestamp with an offset or a trailing Z; naive ones are taken as UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def age_on(birthdate: date, today: date) -> int:
    before_birthday = (today.month, today.day) < (birthdate.month, birthdate.day)
    return today.year - birthdate.year - int(before_birthday)
