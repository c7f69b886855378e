"""The central instance's register of classroom appliances it accepts bundles from: a name the
admin chooses, the appliance's public key and, best, its appliance id (`labrunner identity` on the
appliance prints both). Without the id, the first import pins whatever id its bundle names, so
another registered appliance pushing first could take that id and lock the real one out."""

from __future__ import annotations

from typing import Any

from appliance import named_keys
from appliance.clock import db_now
from appliance.db import Database
from appliance.errors import Conflict, Invalid
from appliance.store import sync as store
from appliance.sync_bundle import APPLIANCE_ID


async def register(db: Database, name: str, key_text: str, appliance_id: str | None = None) -> dict[str, str]:
    entry = named_keys.checked(name, key_text, name_code="invalid_appliance_name", whose="an appliance's")
    if appliance_id is not None and not APPLIANCE_ID.match(appliance_id):
        raise Invalid(
            "invalid_appliance_id",
            "an appliance id is 32 lower-case hex digits, as `labrunner identity` prints it",
            field="appliance_id",
        )
    try:
        await store.add_appliance(db, entry.name, entry.key_text, entry.fingerprint, appliance_id, db_now())
    except store.AlreadyRegistered:
        raise Conflict(
            "appliance_already_registered",
            "an appliance with this name, this public key or this appliance id is registered already",
        ) from None
    return {"name": entry.name, "fingerprint": entry.fingerprint}


async def listing(db: Database) -> list[dict[str, Any]]:
    return [dict(row) for row in await store.appliances(db)]
