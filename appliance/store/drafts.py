"""Drafts: one row per user and problem, plus one scratchpad row (problem_id NULL) per user."""

from __future__ import annotations

from appliance.clock import db_now
from appliance.db import Database, Row

DRAFT_COLUMNS = "problem_id, language, code, stdin, revision, updated_at"
# The user's draft of one problem, or (problem_id NULL) their scratchpad.
_THE_DRAFT = "user_id = ? AND problem_id IS NOT DISTINCT FROM ?"


async def get(db: Database, user_id: int, problem_id: int | None) -> Row | None:
    return await db.fetchone(f"SELECT {DRAFT_COLUMNS} FROM drafts WHERE {_THE_DRAFT}", (user_id, problem_id))


async def save(
    db: Database,
    user_id: int,
    problem_id: int | None,
    language: str,
    code: str,
    stdin: str,
    base_revision: int | None,
) -> tuple[Row, bool]:
    """Store a draft; returns (the stored row, True) or, when `base_revision` is stale and the stored
    text differs, (the newer row, False).

    The check and the write share one write transaction, so two tabs saving at once cannot both
    believe they replaced the same revision.
    """
    async with db.transaction() as conn:
        cursor = await conn.execute(f"SELECT {DRAFT_COLUMNS} FROM drafts WHERE {_THE_DRAFT}", (user_id, problem_id))
        current = await cursor.fetchone()
        if current is None:
            await conn.execute(
                "INSERT INTO drafts (user_id, problem_id, language, code, stdin, revision, updated_at)"
                " VALUES (?, ?, ?, ?, ?, 1, ?)",
                (user_id, problem_id, language, code, stdin, db_now()),
            )
        elif (current["language"], current["code"], current["stdin"]) == (language, code, stdin):
            # Already stored (a save sent as the page was left, then the reloaded page's own save
            # of the same text): identical text is never a conflict, and needs no new revision.
            return current, True
        elif base_revision is not None and base_revision != current["revision"]:
            return current, False
        else:
            await conn.execute(
                "UPDATE drafts SET language = ?, code = ?, stdin = ?, revision = revision + 1, updated_at = ?"
                f" WHERE {_THE_DRAFT}",
                (language, code, stdin, db_now(), user_id, problem_id),
            )
        cursor = await conn.execute(f"SELECT {DRAFT_COLUMNS} FROM drafts WHERE {_THE_DRAFT}", (user_id, problem_id))
        row = await cursor.fetchone()
    assert row is not None
    return row, True
