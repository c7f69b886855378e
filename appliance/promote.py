"""`labrunner --env staging promote`: chosen problems of this (staging) appliance go to production
through the same signed bundles a central instance hands down, hidden tests intact.

Staging publishes the problems as the next version of its one promotion set (a `problem_set`
signed with staging's own key, appliance/problem_sets.py); production receives it as from any
publisher, so it must trust staging's key first (`publishers add` on production: the refusal
prints the exact command). The receive checks the signature against production's own trust list,
then the problems are imported for the production teacher named by --owner, through the same
origin mapping as any problem set: promoting a problem again updates its production copy, never a
second one (a copy edited in production is refused unless --replace).

Both databases are opened through their normal write path (SQLite WAL, one writer at a time), so
production's server may be running or not. Everything on production is checked before staging
publishes anything: an unknown owner, an untrusted key or a problem id staging does not have
leave both appliances as they were.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance import problem_sets, problems
from appliance.accounts import User
from appliance.blobs import BlobStore
from appliance.db import Database
from appliance.errors import Conflict, Invalid, NotFound
from appliance.identity import Identity
from appliance.settings import Settings
from appliance.store import problem_sets as set_store
from appliance.store import users as user_store

# The one set staging promotes through: its set id is stable (per staging appliance and name), so
# each promotion is its next version and production's origin mapping finds earlier copies.
SET_NAME = "promoted from staging"


@dataclass(frozen=True)
class Target:
    """Production, as promote writes to it."""

    settings: Settings
    db: Database
    blobs: BlobStore
    # How to name production on the command line, for the messages' commands.
    command: str


def trust_command(target: Target, me: Identity) -> str:
    return f"{target.command} publishers add staging-{me.fingerprint} {me.public_key_text}"


async def check_target(target: Target, me: Identity, owner_name: str, class_ids: Sequence[int]) -> User:
    """Production's side, checked before staging writes anything: the owner and their classes, and
    trust in staging's key."""
    row = await user_store.by_username(target.db, owner_name)
    if row is None:
        raise NotFound(
            "promote_unknown_owner",
            f"production has no account {owner_name!r}; name the production teacher who will own the problems",
            field="owner",
        )
    owner = User.from_row(row)
    if not owner.is_staff or row["disabled"]:
        raise Invalid(
            "promote_owner_not_teacher",
            f"{owner_name!r} is not an active teacher or admin on production; promoted problems need one as owner",
            field="owner",
        )
    await problems.check_classes(target.db, owner, list(class_ids))
    if await set_store.publisher_by_key(target.db, me.public_key_text) is None:
        raise Conflict(
            "promote_untrusted_staging",
            "production does not trust this staging appliance's key, so it would refuse the bundle. If this is"
            f" your staging appliance (fingerprint {me.fingerprint}), run once: {trust_command(target, me)}"
            " ; nothing was promoted",
        )
    return owner


async def bundle(
    db: Database, blobs: BlobStore, settings: Settings, me: Identity, problem_ids: Sequence[int]
) -> problem_sets.Published:
    """Staging's signed problem set of these problems: the next version of the promotion set."""
    return await problem_sets.publish(db, blobs, settings, me, SET_NAME, problem_ids)


async def into_production(
    target: Target, owner: User, data: bytes, problem_ids: Sequence[int], class_ids: Sequence[int], *, replace: bool
) -> list[dict[str, Any]]:
    """Receive the set on production (verified against its trust list) and import the problems for
    `owner`. The set then leaves production's inbox, imported or not: a promotion is for its owner,
    and any teacher may import what the inbox holds, hidden tests and all."""
    received = await problem_sets.receive(target.db, target.blobs, target.settings, data)
    try:
        return await problem_sets.import_into_problems(
            target.db,
            target.blobs,
            target.settings,
            owner,
            received.inbox_id,
            problem_ids,
            class_ids,
            replace=replace,
        )
    finally:
        await problem_sets.drop_from_inbox(target.db, target.blobs, received.inbox_id)


def describe(results: list[dict[str, Any]], target_dir: Path) -> str:
    parts = [
        f"staging problem {r['origin_id']} -> production problem {r['problem_id']} ({r['outcome']})" for r in results
    ]
    return f"promoted to {target_dir}: " + "; ".join(parts)
