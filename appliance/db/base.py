"""What the store may ask of a database, whichever engine holds it.

The store writes one SQL text for both engines: the subset SQLite 3.40 and PostgreSQL 15 both
accept (RETURNING, ON CONFLICT, IS [NOT] DISTINCT FROM, NULLS LAST, CAST), with `?` or `:name`
parameters. The PostgreSQL side translates the parameters (dialect.py); the few places where no
common text exists ask `Database.dialect`.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, Protocol

import asyncpg

Dialect = Literal["sqlite", "postgresql"]
Params = Sequence[Any] | Mapping[str, Any]

# A constraint refused the write. A tuple, so `except IntegrityError:` catches either driver's.
IntegrityError = (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError)
# A table the query names does not exist (an old database, before its migration).
MissingTable = (sqlite3.OperationalError, asyncpg.UndefinedTableError)


class UnstorableText(ValueError):
    """Text the database cannot store (PostgreSQL refuses U+0000); nothing was written."""


class Row(Protocol):
    """A result row: by position or by column name, as sqlite3.Row and asyncpg.Record both are."""

    def __getitem__(self, key: int | str, /) -> Any: ...
    def keys(self) -> Iterable[str]: ...
    def __iter__(self) -> Iterator[Any]: ...
    def __len__(self) -> int: ...


class Cursor(Protocol):
    """The outcome of one statement run inside a transaction or snapshot."""

    @property
    def rowcount(self) -> int: ...
    async def fetchone(self) -> Row | None: ...
    async def fetchall(self) -> Iterable[Row]: ...
    async def close(self) -> None: ...


class Conn(Protocol):
    """The connection a transaction or snapshot hands out: the part of aiosqlite the store uses."""

    async def execute(self, sql: str, parameters: Params = ..., /) -> Cursor: ...
    async def executemany(self, sql: str, parameters: Iterable[Params], /) -> Cursor: ...
    async def execute_fetchall(self, sql: str, parameters: Params = ..., /) -> Iterable[Row]: ...


class Database(ABC):
    """One engine's connections: serialized write transactions, concurrent reads."""

    dialect: Dialect

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Conn]:
        """A write transaction; everything inside commits together or not at all. Write
        transactions run one at a time, so a check and the write it guards cannot interleave."""

    @abstractmethod
    def snapshot(self) -> AbstractAsyncContextManager[Conn]:
        """A read transaction: every query inside sees one moment of the data."""

    @abstractmethod
    async def scrub(self) -> bool:
        """Make deleted and overwritten rows unreadable from the storage itself; False when that
        cannot be promised."""

    @abstractmethod
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    async def execute(self, sql: str, params: Params = ()) -> None:
        """One write statement in its own transaction."""
        async with self.transaction() as conn:
            cursor = await conn.execute(sql, params)
            await cursor.close()

    async def insert(self, sql: str, params: Params = ()) -> int:
        """One `INSERT … RETURNING id` in its own transaction; the new row's id."""
        async with self.transaction() as conn:
            cursor = await conn.execute(sql, params)
            row = await cursor.fetchone()
            await cursor.close()
        if row is None:
            raise RuntimeError("insert returned no row: the statement needs RETURNING id")
        return int(row[0])

    async def execute_rowcount(self, sql: str, params: Params = ()) -> int:
        async with self.transaction() as conn:
            cursor = await conn.execute(sql, params)
            count = cursor.rowcount
            await cursor.close()
            return count


def placeholders(values: Iterable[Any]) -> str:
    return ",".join("?" for _ in values)
