"""A classroom's trusted publishers: the keys it accepts problem sets from (`labrunner publishers`).
Not the central instance's register of classroom appliances (appliance/sync_appliances.py): that
one says whose pushes a central instance takes, this one whose problems a classroom takes. A
classroom that trusts no key accepts no set."""

from __future__ import annotations

from typing import Any

from appliance import named_keys
from appliance.clock import db_now
from appliance.db import Database
from appliance.errors import Conflict, NotFound
from appliance.store import problem_sets as store


async def add(db: Database, name: str, key_text: str) -> dict[str, str]:
    entry = named_keys.checked(name, key_text, name_code="invalid_publisher_name", whose="a publisher's")
    try:
        await store.add_publisher(db, entry.name, entry.key_text, entry.fingerprint, db_now())
    except store.AlreadyTrusted:
        raise Conflict(
            "publisher_already_trusted", "a publisher with this name or this public key is trusted already"
        ) from None
    return {"name": entry.name, "fingerprint": entry.fingerprint}


async def listing(db: Database) -> list[dict[str, Any]]:
    return [dict(row) for row in await store.publishers(db)]


async def remove(db: Database, name: str) -> None:
    """Untrusts a publisher: its sets leave the inbox; problems imported from them stay."""
    if not await store.remove_publisher(db, name.strip()):
        raise NotFound("unknown_publisher", f"no publisher named {name!r} is trusted here")
