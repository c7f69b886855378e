"""Teachers' comments on a submission: written by the teacher of its problem or an admin, read by
them and by the student who made it. Everyone else is told the submission does not exist (404),
as for every other way of reading it."""

from __future__ import annotations

from typing import Any

from appliance.accounts import User
from appliance.classes import require_staff
from appliance.clock import api_iso
from appliance.db import Database, Row
from appliance.errors import Conflict, Forbidden, Invalid, NotFound
from appliance.jobs import readable_job
from appliance.settings import Settings
from appliance.store import comments as comment_store
from appliance.validation import F, Schema


def comment_schema(settings: Settings) -> Schema:
    return Schema({"body": F("string", min_length=1, max_length=settings.max_comment_chars)})


def _comment_json(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "submission_id": row["job_id"],
        "author_id": row["author_id"],
        "author": row["author"],
        "body": row["body"],
        "created_at": api_iso(row["created_at"]),
        "updated_at": api_iso(row["updated_at"]),
        "edited": row["updated_at"] != row["created_at"],
    }


async def _submission(db: Database, user: User, submission_id: int) -> Row:
    """The submission (not a rejudge) if `user` may read it; 404 otherwise."""
    job = await readable_job(db, user, submission_id, "submission")
    if job["kind"] != "submission":
        raise NotFound("not_found", "no such submission")
    return job


def _text(data: dict[str, Any]) -> str:
    body = str(data["body"]).strip()
    if not body:
        raise Invalid("empty", "field 'body' must not be blank", field="body")
    return body


async def list_for(db: Database, user: User, submission_id: int) -> list[dict[str, Any]]:
    await _submission(db, user, submission_id)
    return [_comment_json(row) for row in await comment_store.of_submission(db, submission_id)]


async def add(db: Database, settings: Settings, user: User, submission_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """Add from a body checked by `comment_schema`."""
    await _submission(db, user, submission_id)
    require_staff(user)
    comment_id = await comment_store.add(db, submission_id, user.id, _text(data), settings.max_comments_per_submission)
    if comment_id is None:
        raise Conflict(
            "too_many_comments",
            f"a submission holds at most {settings.max_comments_per_submission} comments; edit one instead",
        )
    row = await comment_store.get(db, submission_id, comment_id)
    assert row is not None
    return _comment_json(row)


async def edit(db: Database, user: User, submission_id: int, comment_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """Change from a body checked by `comment_schema`: its author's comment, or any as an admin."""
    await _submission(db, user, submission_id)
    require_staff(user)
    row = await comment_store.get(db, submission_id, comment_id)
    if row is None:
        raise NotFound("not_found", "no such comment")
    if user.role != "admin" and row["author_id"] != user.id:
        raise Forbidden("not_your_comment", "only its author or an admin can change a comment")
    await comment_store.edit(db, comment_id, _text(data))
    row = await comment_store.get(db, submission_id, comment_id)
    assert row is not None
    return _comment_json(row)
