"""PostgreSQL through an asyncpg pool, with the same promises as the SQLite store.

Write transactions run one at a time, as SQLite's single writer makes them: an in-process lock
keeps this server's transactions from queueing on the database, and a transaction-scoped advisory
lock taken first in every write transaction extends that to other processes on the same database.
The store's check-then-write transactions (quotas, fair-share claims, leases) rely on it. Reads
take any pooled connection and run beside the writer.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager

import asyncpg

from appliance.db.base import Conn, Database, Params, Row, UnstorableText
from appliance.db.dialect import arguments, translate

POOL_MIN = 2
POOL_MAX = 10
# asyncpg's default (100) is smaller than the store's set of statements; a miss costs a Parse.
STATEMENT_CACHE = 1024
# The advisory lock every write transaction takes: "LBRN" as a number, so it cannot be mistaken
# for another application's lock on a shared server.
WRITE_LOCK_KEY = 0x4C42524E
# Held shared by every server on the database for as long as it runs, and exclusively by a restore:
# a restore from any data folder refuses to replace the rows under a running server ("LBSV").
SERVING_LOCK_KEY = 0x4C425356
# Statements whose result rows the caller reads; everything else reports a row count.
_RETURNS_ROWS = re.compile(r"^\s*(SELECT|WITH|VALUES|SHOW|TABLE)\b|\bRETURNING\b", re.IGNORECASE)


class PgCursor:
    """A finished statement's rows and row count, shaped like aiosqlite's cursor."""

    def __init__(self, rows: list[Row], rowcount: int) -> None:
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount

    async def fetchone(self) -> Row | None:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    async def fetchall(self) -> list[Row]:
        rest = self._rows[self._next :]
        self._next = len(self._rows)
        return rest

    async def close(self) -> None:
        self._rows = []


@contextmanager
def _storable() -> Iterator[None]:
    """PostgreSQL's refusal of U+0000 in text, as the store's own error (SQLite stores it)."""
    try:
        yield
    except (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError) as exc:
        raise UnstorableText(str(exc)) from exc


def _status_count(status: str) -> int:
    """The row count in a command tag such as "UPDATE 3" or "INSERT 0 1"; -1 when there is none."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else -1


class PgConn:
    """One pooled connection inside a transaction or snapshot, speaking the store's `?` SQL."""

    dialect = "postgresql"

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, parameters: Params = ()) -> PgCursor:
        text, names = translate(sql)
        args = arguments(names, parameters)
        with _storable():
            if _RETURNS_ROWS.search(text):
                rows = await self._conn.fetch(text, *args)
                return PgCursor(rows, len(rows))
            status = await self._conn.execute(text, *args)
        return PgCursor([], _status_count(status))

    async def executemany(self, sql: str, parameters: Iterable[Params]) -> PgCursor:
        text, names = translate(sql)
        batch = [arguments(names, params) for params in parameters]
        if batch:
            with _storable():
                await self._conn.executemany(text, batch)
        return PgCursor([], len(batch))

    async def execute_fetchall(self, sql: str, parameters: Params = ()) -> list[Row]:
        text, names = translate(sql)
        with _storable():
            return await self._conn.fetch(text, *arguments(names, parameters))


class PgDatabase(Database):
    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: asyncpg.Pool | None = None
        self._write_lock = asyncio.Lock()

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.url, min_size=POOL_MIN, max_size=POOL_MAX, statement_cache_size=STATEMENT_CACHE
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database is not open")
        return self._pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        async with self._write_lock, self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", WRITE_LOCK_KEY)
            yield PgConn(conn)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Conn]:
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            yield PgConn(conn)

    async def scrub(self) -> bool:
        """Rewrite every table from its live rows (VACUUM FULL), so erased rows leave the table
        files. Always False: the server's write-ahead log, its archives and any standby may
        still hold the old rows, and only the database's administrator governs those."""
        async with self._write_lock, self.pool.acquire() as conn:
            await conn.execute("VACUUM FULL")
        return False

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        text, names = translate(sql)
        with _storable():
            return await self.pool.fetch(text, *arguments(names, params))


@asynccontextmanager
async def serving_lock(url: str, *, exclusive: bool) -> AsyncIterator[bool]:
    """Inside: whether the lock was had (a server shares it, a restore takes it alone), held on a
    connection of its own until the end."""
    conn = await asyncpg.connect(url)
    try:
        take = "pg_try_advisory_lock" if exclusive else "pg_try_advisory_lock_shared"
        yield bool(await conn.fetchval(f"SELECT {take}($1)", SERVING_LOCK_KEY))
    finally:
        await conn.close()
