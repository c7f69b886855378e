"""Teachers' comments on submissions."""

from __future__ import annotations

from appliance.clock import db_now
from appliance.db import Database, Row
from appliance.store.portable import insert_id

_COLUMNS = (
    "c.id, c.job_id, c.author_id, u.username AS author, c.body, c.created_at, c.updated_at"
    " FROM submission_comments c LEFT JOIN users u ON u.id = c.author_id"
)


async def of_submission(db: Database, job_id: int) -> list[Row]:
    return await db.fetchall(f"SELECT {_COLUMNS} WHERE c.job_id = ? ORDER BY c.id", (job_id,))


async def get(db: Database, job_id: int, comment_id: int) -> Row | None:
    return await db.fetchone(f"SELECT {_COLUMNS} WHERE c.job_id = ? AND c.id = ?", (job_id, comment_id))


async def add(db: Database, job_id: int, author_id: int, body: str, max_count: int) -> int | None:
    """The new comment's id; None when the submission has `max_count` comments already (checked
    under the writer lock, so two teachers at once cannot pass it together)."""
    stamp = db_now()
    async with db.transaction() as conn:
        cursor = await conn.execute("SELECT COUNT(*) FROM submission_comments WHERE job_id = ?", (job_id,))
        row = await cursor.fetchone()
        if row is not None and row[0] >= max_count:
            return None
        return await insert_id(
            conn,
            "INSERT INTO submission_comments (job_id, author_id, body, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?) RETURNING id",
            (job_id, author_id, body, stamp, stamp),
        )


async def edit(db: Database, comment_id: int, body: str) -> None:
    await db.execute(
        "UPDATE submission_comments SET body = ?, updated_at = ? WHERE id = ?", (body, db_now(), comment_id)
    )
