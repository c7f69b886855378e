"""Every timestamp in the database is one fixed-width UTC ISO 8601 string with microseconds,
`2026-03-01T09:30:00.250000Z` (years zero-padded to four digits): it sorts as text in time order, so SQL compares
times as plain text, and it keeps the sub-second precision the job queue needs. This module is
the only one that converts: the stores bind `db_*` values, and what the API shows is made here
from a stored value (`api_iso`: whole-second ISO strings; `api_epoch`: epoch seconds)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

# The stored form of the epoch: before every other time ("no earlier start" for queued jobs,
# "tests never replaced" for problems).
DB_EPOCH = "1970-01-01T00:00:00.000000Z"


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """The API's whole-second ISO form."""
    # isoformat, not strftime("%Y"): the C library does not zero-pad years before 1000.
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """Accept any ISO 8601 timestamp with an offset or a trailing Z; naive ones are taken as UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# Into the database.


def to_db(moment: datetime) -> str:
    """OverflowError for a moment that has no UTC form (year 1 with a positive offset, …)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def db_now() -> str:
    return to_db(now())


def db_later(delta: timedelta) -> str:
    return to_db(now() + delta)


def db_epoch(seconds: float) -> str:
    """The stored form of epoch seconds (`time.time()`)."""
    return to_db(datetime.fromtimestamp(seconds, UTC))


# Out of the database.


def from_db(stored: str) -> datetime:
    return parse_iso(stored)


def epoch(stored: str) -> float:
    return from_db(stored).timestamp()


def api_iso(stored: str | None) -> str | None:
    """A stored time as the API shows ISO times: whole seconds, UTC, trailing Z."""
    return None if stored is None else iso(from_db(stored))


def api_epoch(stored: str | None) -> float | None:
    """A stored time as the API shows job times: epoch seconds."""
    return None if stored is None else epoch(stored)


def age_on(birthdate: date, today: date) -> int:
    before_birthday = (today.month, today.day) < (birthdate.month, birthdate.day)
    return today.year - birthdate.year - int(before_birthday)
