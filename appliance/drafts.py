"""Server-side drafts of code, per problem and one scratchpad per user.

The editor saves every few seconds, so what a student typed survives a reload, a lost
connection or a server restart. A save names the revision it started from; a save based on an
older revision (another tab or computer saved since) is refused with 409 so newer work is never
silently overwritten — the page then lets the student choose which version to keep. A save of
the text already stored always succeeds, whatever its base: identical versions are no conflict.
"""

from __future__ import annotations

from typing import Any

from appliance import problems
from appliance.accounts import User
from appliance.clock import api_iso
from appliance.db import Database, Row
from appliance.errors import Conflict
from appliance.jobs.queueing import check_language
from appliance.settings import Settings
from appliance.store import drafts as draft_store
from appliance.validation import F, Schema


def draft_schema(settings: Settings) -> Schema:
    return Schema(
        {
            "language": F("string", max_length=32),
            # Empty code is a real state (the student cleared the editor), so no minimum.
            "code": F("string", max_length=settings.max_code_chars),
            "stdin": F("string", required=False, max_length=settings.max_test_case_bytes),
            "base_revision": F(
                "integer",
                required=False,
                nullable=True,
                minimum=1,
                description="the revision this text was based on; omit or null to overwrite",
            ),
        }
    )


def _draft_json(row: Row | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {key: row[key] for key in row.keys()} | {"updated_at": api_iso(row["updated_at"])}


async def get(db: Database, user: User, problem_id: int | None) -> dict[str, Any] | None:
    if problem_id is not None:
        await problems.readable_row(db, user, problem_id)
    return _draft_json(await draft_store.get(db, user.id, problem_id))


async def save(db: Database, user: User, problem_id: int | None, data: dict[str, Any]) -> dict[str, Any]:
    """Save from a body already checked by `draft_schema`."""
    if problem_id is not None:
        await problems.readable_row(db, user, problem_id)
    check_language(data["language"])
    row, saved = await draft_store.save(
        db,
        user.id,
        problem_id,
        data["language"],
        data["code"],
        data.get("stdin", ""),
        data.get("base_revision"),
    )
    if not saved:
        raise Conflict(
            "draft_conflict",
            f"this code was changed in another tab or on another computer (now at revision {row['revision']}); "
            "reload it, or save again without base_revision to keep this version",
            field="base_revision",
        )
    draft = _draft_json(row)
    assert draft is not None
    return draft
