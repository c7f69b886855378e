"""A classroom's trusted publishers: the keys it accepts problem sets from (`labrunner publishers`).
Not the central instance's register of classroom appliances (appliance/sync_appliances.py): that
one says whose pushes a central instance takes, this one whose problems a classroom takes. A
classroom that trusts no key accepts no set."""

from __future__ import annotations

from typing import Any

from appliance.clock import db_now
from appliance.db import Database
from appliance.errors import Conflict, Invalid, NotFound
from appliance.identity import KeyTextError, fingerprint, parse_public_key, public_key_text
from appliance.store import problem_sets as store

NAME_MAX_CHARS = 100


async def add(db: Database, name: str, key_text: str) -> dict[str, str]:
    name = name.strip()
    if not name or len(name) > NAME_MAX_CHARS or not name.isprintable():
        raise Invalid(
            "invalid_publisher_name", f"a publisher's name is 1 to {NAME_MAX_CHARS} printable characters", field="name"
        )
    try:
        key = parse_public_key(key_text)
    except KeyTextError as error:
        raise Invalid("invalid_public_key", str(error), field="public_key") from None
    text, short = public_key_text(key), fingerprint(key)
    try:
        await store.add_publisher(db, name, text, short, db_now())
    except store.AlreadyTrusted:
        raise Conflict(
            "publisher_already_trusted", "a publisher with this name or this public key is trusted already"
        ) from None
    return {"name": name, "fingerprint": short}


async def listing(db: Database) -> list[dict[str, Any]]:
    return [dict(row) for row in await store.publishers(db)]


async def remove(db: Database, name: str) -> None:
    """Untrusts a publisher: its sets leave the inbox; problems imported from them stay."""
    if not await store.remove_publisher(db, name.strip()):
        raise NotFound("unknown_publisher", f"no publisher named {name!r} is trusted here")
