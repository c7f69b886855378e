"""The server's register of runner hosts (`labrunner workers add|list|remove`) and the regions
classes and users prefer (`labrunner regions`). A host's name is the one it declares with
`labrunner worker --name`; its key is the one `labrunner identity` prints on the host."""

from __future__ import annotations

import secrets
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from appliance import named_keys
from appliance.clock import db_now
from appliance.db import Database
from appliance.errors import Conflict, Invalid, NotFound
from appliance.identity import parse_public_key
from appliance.store import runner_hosts as store
from runner.broker import HOST_NAME, REGION_NAME, acl_rule

NAME_RULE = "1 to 63 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit"


def check_host_name(name: str) -> str:
    if not HOST_NAME.match(name):
        raise Invalid("invalid_host_name", f"a runner host's name is {NAME_RULE}", field="name")
    return name


def check_region(region: str) -> str | None:
    """A region name, or None for an empty one (no preference)."""
    if region == "":
        return None
    if not REGION_NAME.match(region):
        raise Invalid("invalid_region", f"a region is {NAME_RULE}", field="region")
    return region


async def register(db: Database, name: str, key_text: str) -> dict[str, str]:
    entry = named_keys.checked(name, key_text, name_code="invalid_host_name", whose="a runner host's")
    check_host_name(entry.name)
    try:
        await store.add(db, entry.name, entry.key_text, entry.fingerprint, db_now())
    except store.AlreadyRegistered:
        raise Conflict(
            "runner_host_already_registered", "a runner host with this name or this public key is registered already"
        ) from None
    # A fresh password per host: a password shared by hosts would let one read the others' plans.
    password = secrets.token_urlsafe(24)
    return {
        "name": entry.name,
        "fingerprint": entry.fingerprint,
        "acl_rule": acl_rule(entry.name, password),
        "broker_password": password,
    }


async def remove(db: Database, name: str) -> None:
    if not await store.remove(db, name):
        raise NotFound("runner_host_not_found", f"no runner host named {name!r} is registered")


async def listing(db: Database) -> list[dict[str, Any]]:
    return [dict(row) for row in await store.listing(db)]


async def public_keys(db: Database) -> dict[str, Ed25519PublicKey]:
    return {name: parse_public_key(text) for name, text in (await store.keys(db)).items()}


async def prefer_region(db: Database, *, class_id: int | None, username: str | None, region: str) -> None:
    chosen = check_region(region)
    if class_id is not None:
        if not await store.set_class_region(db, class_id, chosen):
            raise NotFound("class_not_found", f"no class with id {class_id}")
    elif username is not None:
        if not await store.set_user_region(db, username, chosen):
            raise NotFound("user_not_found", f"no user named {username!r}")
