"""Erasing a student: everything personal goes, while their class's statistics still add up.

The account stays as a pseudonym ("erased #<id>": a name no one can register, since usernames
have neither spaces nor '#'), disabled, with no password and no birth date; its submissions keep
their verdicts and scores, so gradebooks count and total as before. What goes is listed in
`appliance.store.student_data`. Sessions and tokens are deleted in the same transaction, so they
stop working at once. Blobs that only the student used are unlinked; one another row still uses
(the same file uploaded by someone else) stays. Then the database file is rebuilt and its WAL
emptied, so the erased rows do not linger in freed pages. Backups keep them until they rotate
out (the privacy notice says so).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from appliance.accounts import User
from appliance.blob_refs import discard_unused_blobs
from appliance.blobs import BlobStore
from appliance.classes import require_staff
from appliance.clock import api_iso, db_now
from appliance.db import Database
from appliance.errors import Conflict, Invalid
from appliance.store import student_data
from appliance.student_access import managed_student
from appliance.validation import F, Schema

log = logging.getLogger(__name__)

ERASE = Schema(
    {
        "confirm_username": F(
            "string", max_length=64, description="the student's username, typed again to confirm the erasure"
        )
    }
)


def pseudonym(user_id: int) -> str:
    return f"erased #{user_id}"


async def erase(db: Database, blobs: BlobStore, actor: User, user_id: int, confirm_username: str) -> dict[str, Any]:
    """Erase from a body checked by `ERASE`: an admin, or a teacher the student is theirs for."""
    require_staff(actor)
    student = await managed_student(db, actor, user_id)
    if await student_data.erasure_of(db, user_id) is not None:
        raise Conflict("already_erased", "this student's data was erased already")
    typed = confirm_username.strip()
    # Usernames are ASCII: casefold() would let look-alikes through (KELVIN SIGN folds to "k").
    if not typed.isascii() or typed.lower() != student["username"].lower():
        raise Invalid(
            "confirmation_mismatch",
            "type the student's username exactly to confirm; nothing was erased",
            field="confirm_username",
        )
    stamp = db_now()
    try:
        async with db.transaction() as conn:
            erased = await student_data.erase(conn, user_id, pseudonym(user_id))
            # Inside the transaction: no row can start using one of these blobs before they go.
            removed_blobs = await discard_unused_blobs(conn, blobs, erased.blobs)
            counts = {**erased.counts, "blobs": removed_blobs}
            await student_data.record_erasure(conn, user_id, actor.id, stamp, json.dumps(counts, sort_keys=True))
    except student_data.AlreadyErased:
        raise Conflict("already_erased", "this student's data was erased already") from None
    except student_data.JobsInFlight:
        raise Conflict(
            "jobs_in_progress",
            "this student has runs or submissions waiting or running; erase them once those have finished",
        ) from None
    scrubbed = await db.scrub()
    if not scrubbed:
        where = (
            "a reader kept the WAL from being emptied; later writes overwrite it"
            if db.dialect == "sqlite"
            else "PostgreSQL's write-ahead log, its archives and standbys keep what the database's retention keeps"
        )
        log.warning("erasure of user %s: erased rows may survive in storage: %s", user_id, where)
    return {
        "user_id": user_id,
        "username": pseudonym(user_id),
        "erased_at": api_iso(stamp),
        "removed": counts,
        "storage_scrubbed": scrubbed,
    }


async def erase_again(db: Database, blobs: BlobStore, replaced: Database) -> list[int]:
    """After a restore: erase again every student the replaced data had erased, so a backup taken
    before an erasure never brings them back. The erasure keeps its first date and author; the
    student's jobs the backup caught waiting or running never run. Returns their ids."""
    return await erase_recorded(db, blobs, await student_data.erasures_recorded(replaced))


async def erase_recorded(db: Database, blobs: BlobStore, records: Sequence[Mapping[str, Any]]) -> list[int]:
    """`erase_again` from the replaced data's erasure records (user_id, erased_by, erased_at,
    counts), read by the caller wherever the replaced data is kept."""
    again = []
    for record in records:
        user_id = int(record["user_id"])
        if not await student_data.has_user(db, user_id) or await student_data.erasure_of(db, user_id) is not None:
            continue  # made after the backup, or erased in it already
        async with db.transaction() as conn:
            await student_data.stop_jobs_in_flight(conn, user_id)
            erased = await student_data.erase(conn, user_id, pseudonym(user_id))
            await discard_unused_blobs(conn, blobs, erased.blobs)
            await student_data.record_erasure(conn, user_id, record["erased_by"], record["erased_at"], record["counts"])
        again.append(user_id)
    if again:
        await db.scrub()
        log.info("erased again after the restore: %d student(s) the replaced data had erased", len(again))
    return again
