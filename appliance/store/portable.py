"""Small pieces of SQL text both engines accept, where the obvious SQLite form has no
PostgreSQL twin."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from appliance.db import Conn, Params, placeholders


async def insert_id(conn: Conn, sql: str, params: Params = ()) -> int:
    """Run `sql` (an `INSERT … RETURNING id`) inside the caller's transaction; the new row's id.
    PostgreSQL has no lastrowid: RETURNING is how both engines tell it."""
    cursor = await conn.execute(sql, params)
    row = await cursor.fetchone()
    await cursor.close()
    if row is None:
        raise RuntimeError("insert returned no row: the statement needs RETURNING id")
    return int(row[0])


def in_list(column: str, values: Sequence[Any]) -> str:
    """`column IN (?, …)` for `values` (bound in order after it); false for no values, where
    PostgreSQL refuses the empty `IN ()` SQLite accepts."""
    return f"{column} IN ({placeholders(values)})" if values else "1 = 0"
