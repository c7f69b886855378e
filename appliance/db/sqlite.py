"""SQLite: one writer connection behind a lock (BEGIN IMMEDIATE), separate readers.

WAL lets readers run beside the single writer; funnelling writes through one connection means
they never contend for the lock (the Datasette pattern).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from appliance.db.base import Conn, Database, Params, Row

BUSY_TIMEOUT_MS = 5000
READERS = 2


async def _connect(path: Path, *, readonly: bool) -> aiosqlite.Connection:
    if readonly:
        conn = await aiosqlite.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        await conn.execute("PRAGMA query_only = ON")
    else:
        conn = await aiosqlite.connect(path, isolation_level=None)
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = NORMAL")
    conn.row_factory = aiosqlite.Row
    await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    await conn.execute("PRAGMA foreign_keys = ON")
    return conn


class SqliteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: aiosqlite.Connection | None = None
        self._readers: list[aiosqlite.Connection] = []
        self._next_reader = itertools.cycle(range(READERS))
        self._write_lock = asyncio.Lock()

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = await _connect(self.path, readonly=False)
        self._readers = [await _connect(self.path, readonly=True) for _ in range(READERS)]

    async def close(self) -> None:
        for conn in [*self._readers, self._writer]:
            if conn is not None:
                await conn.close()
        self._readers = []
        self._writer = None

    @property
    def writer(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise RuntimeError("database is not open")
        return self._writer

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        async with self._write_lock:
            conn = self.writer
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Conn]:
        """Its own connection (WAL snapshot), because the shared readers interleave other
        requests' statements."""
        conn = await _connect(self.path, readonly=True)
        try:
            await conn.execute("BEGIN")
            try:
                yield conn
            finally:
                await conn.execute("ROLLBACK")
        finally:
            await conn.close()

    async def scrub(self) -> bool:
        """Rebuild the file from its live rows (VACUUM) and empty the WAL, so nothing deleted or
        overwritten before stays readable in freed pages, free space inside pages or old WAL
        frames. Holds the writer for the whole rebuild. False when a long reader kept the WAL
        from being emptied (its frames are overwritten by later writes instead)."""
        async with self._write_lock:
            conn = self.writer
            await conn.execute("VACUUM")
            cursor = await conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            row = await cursor.fetchone()
            await cursor.close()
            return row is not None and row[0] == 0

    def _reader(self) -> aiosqlite.Connection:
        if not self._readers:
            raise RuntimeError("database is not open")
        return self._readers[next(self._next_reader)]

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        # One call on the connection's thread: the statement runs to completion and is reset at
        # once. Interleaved execute/fetch pairs from concurrent requests would keep a read
        # transaction open across them and pin an old snapshot, hiding just-committed writes.
        return list(await self._reader().execute_fetchall(sql, params))
