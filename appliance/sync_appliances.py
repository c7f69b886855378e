"""The central instance's register of classroom appliances it accepts bundles from: a name the
admin chooses, the appliance's public key and, best, its appliance id (`labrunner identity` on the
appliance prints both). Without the id, the first import pins whatever id its bundle names, so
another registered appliance pushing first could take that id and lock the real one out."""

from __future__ import annotations

from typing import Any

from appliance.clock import db_now
from appliance.db import Database
from appliance.errors import Conflict, Invalid
from appliance.identity import KeyTextError, fingerprint, parse_public_key, public_key_text
from appliance.store import sync as store
from appliance.sync_bundle import APPLIANCE_ID

NAME_MAX_CHARS = 100


async def register(db: Database, name: str, key_text: str, appliance_id: str | None = None) -> dict[str, str]:
    name = name.strip()
    if not name or len(name) > NAME_MAX_CHARS or not name.isprintable():
        raise Invalid(
            "invalid_appliance_name", f"an appliance's name is 1 to {NAME_MAX_CHARS} printable characters", field="name"
        )
    try:
        key = parse_public_key(key_text)
    except KeyTextError as error:
        raise Invalid("invalid_public_key", str(error), field="public_key") from None
    if appliance_id is not None and not APPLIANCE_ID.match(appliance_id):
        raise Invalid(
            "invalid_appliance_id",
            "an appliance id is 32 lower-case hex digits, as `labrunner identity` prints it",
            field="appliance_id",
        )
    text, short = public_key_text(key), fingerprint(key)
    try:
        await store.add_appliance(db, name, text, short, appliance_id, db_now())
    except store.AlreadyRegistered:
        raise Conflict(
            "appliance_already_registered",
            "an appliance with this name, this public key or this appliance id is registered already",
        ) from None
    return {"name": name, "fingerprint": short}


async def listing(db: Database) -> list[dict[str, Any]]:
    return [dict(row) for row in await store.appliances(db)]
