"""A user's own files: upload, ownership, listing, download, deletion, and which files a job may use.

Who may touch a file is decided here, from the caller's account, on every call: a file id alone
grants nothing. Another user's file, a malformed id, an expired or a deleted file all get the same
404, so ids cannot be probed. Every check runs before anything is written, so a refused upload
leaves no row and no blob behind.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from appliance.accounts import User
from appliance.blob_refs import discard_unused_blobs, ensure_blobs
from appliance.blobs import BlobStore
from appliance.clock import api_iso, epoch
from appliance.db import Conn, Database, Row
from appliance.errors import AppError, Conflict, Forbidden, Invalid, NotFound, TooLarge
from appliance.settings import Settings
from appliance.store import files as file_store
from appliance.upload_validation import Prepared, prepare_upload

DAY_S = 86_400
FILE_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")  # secrets.token_urlsafe(16)


def _missing(field: str | None = None) -> NotFound:
    # One answer for every file the caller may not have: missing, someone else's, expired, malformed.
    return NotFound("not_found", "no such file", field=field)


def _alive(row: Row, now: float) -> bool:
    return row["deleted_at"] is None and (epoch(row["expires_at"]) > now or bool(row["pinned"]))


def file_json(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "owner_id": row["owner_id"],
        "name": row["name"],
        "kind": row["kind"],
        "media_type": row["media_type"],
        "size": row["size"],
        "created_at": api_iso(row["created_at"]),
        "expires_at": api_iso(row["expires_at"]),
        # A submission uses it: kept as long as that submission, whatever expires_at says.
        "kept_for_submission": bool(row["pinned"]),
    }


@dataclass(frozen=True)
class _Step:
    item: Prepared
    action: str  # new | same (identical file already there) | replace
    old: Row | None


async def _plan(
    src: Database | Conn,
    settings: Settings,
    user: User,
    items: Sequence[Prepared],
    replace: bool,
    now: float,
) -> list[_Step]:
    """What storing `items` would do, or the refusal: duplicates, then the count and byte quotas."""
    existing = {row["name"]: row for row in await file_store.alive_named(src, user.id, [i.name for i in items], now)}
    steps: list[_Step] = []
    for item in items:
        old = existing.get(item.name)
        if old is None:
            steps.append(_Step(item, "new", None))
        elif old["blob"] == item.digest:
            steps.append(_Step(item, "same", old))
        elif replace:
            steps.append(_Step(item, "replace", old))
        else:
            raise Conflict(
                "duplicate_name",
                f"you already have a file named {item.name!r}; delete it first or send replace=true to replace it",
                field="file",
            )
    count, used = await file_store.usage(src, user.id, now)
    count += sum(1 for s in steps if s.action == "new")
    used += sum(s.item.size - (s.old["size"] if s.old is not None else 0) for s in steps if s.action != "same")
    if count > settings.files_max_per_user:
        raise Conflict(
            "too_many_files",
            f"you may keep at most {settings.files_max_per_user} files; delete some before uploading more",
            field="file",
        )
    if used > settings.files_max_bytes_per_user:
        raise TooLarge(
            "quota_exceeded",
            f"your files would take {used} bytes; the limit is {settings.files_max_bytes_per_user} bytes."
            " Delete some first",
            field="file",
        )
    return steps


@dataclass(frozen=True)
class Uploaded:
    files: list[dict[str, Any]]  # each with `deduplicated`: an identical file of that name was there
    created: bool  # anything new was stored
    archive: bool  # the upload was an archive, unpacked into `files`


async def upload(
    db: Database,
    blobs: BlobStore,
    settings: Settings,
    user: User,
    filename: str | None,
    data: bytes,
    *,
    unpack: bool = False,
    replace: bool = False,
) -> Uploaded:
    """Store an upload for `user`: one file, or each file of an archive sent with unpack."""
    items, archive = prepare_upload(settings, filename, data, unpack=unpack)
    now = time.time()
    await _plan(db, settings, user, items, replace, now)  # refuse before any blob is written
    for item in items:
        await asyncio.to_thread(blobs.put, item.data)
    expires_at = now + settings.file_expiry_days * DAY_S
    ids: list[tuple[str, bool]] = []
    async with db.transaction() as conn:
        try:
            # Again under the writer lock: a concurrent upload may have used the quota meanwhile.
            steps = await _plan(conn, settings, user, items, replace, now)
        except AppError:
            await discard_unused_blobs(conn, blobs, [i.digest for i in items])
            raise
        for step in steps:
            if step.action == "same":
                assert step.old is not None
                await file_store.extend_expiry(conn, step.old["id"], expires_at)
                ids.append((step.old["id"], True))
                continue
            if step.action == "replace":
                assert step.old is not None
                gone = await file_store.remove(conn, step.old["id"], now)
                if gone is not None:
                    await discard_unused_blobs(conn, blobs, [gone])
            file_id = secrets.token_urlsafe(16)
            await file_store.insert(
                conn,
                {
                    "id": file_id,
                    "owner_id": user.id,
                    "name": step.item.name,
                    "kind": step.item.kind,
                    "media_type": step.item.media_type,
                    "size": step.item.size,
                    "blob": step.item.digest,
                    "created_at": now,
                    "expires_at": expires_at,
                },
            )
            ids.append((file_id, False))
    await ensure_blobs(blobs, items)
    out = []
    for file_id, deduplicated in ids:
        row = await file_store.get(db, file_id)
        assert row is not None
        out.append({**file_json(row), "deduplicated": deduplicated})
    return Uploaded(out, created=not all(dedup for _, dedup in ids), archive=archive)


async def readable(db: Database, user: User, file_id: str) -> Row:
    """The file if `user` may read it: its owner, a teacher of a submission using it, an admin."""
    if not FILE_ID.match(file_id):
        raise _missing()
    row = await file_store.get(db, file_id)
    if row is None:
        raise _missing()
    alive = _alive(row, time.time())
    if row["owner_id"] == user.id and alive:
        return row
    if user.role == "admin" and (alive or row["pinned"]):
        return row
    if user.role == "teacher" and row["pinned"] and await file_store.teacher_can_read(db, file_id, user.id):
        return row
    raise _missing()


async def list_for(db: Database, settings: Settings, user: User) -> dict[str, Any]:
    now = time.time()
    rows = await file_store.alive_of(db, user.id, now)
    count, used = await file_store.usage(db, user.id, now)
    return {
        "files": [file_json(row) for row in rows],
        "quota": {
            "files": count,
            "max_files": settings.files_max_per_user,
            "bytes": used,
            "max_bytes": settings.files_max_bytes_per_user,
        },
    }


async def get_for(db: Database, user: User, file_id: str) -> dict[str, Any]:
    return file_json(await readable(db, user, file_id))


async def content_for(db: Database, blobs: BlobStore, user: User, file_id: str) -> tuple[Row, bytes]:
    row = await readable(db, user, file_id)
    return row, await asyncio.to_thread(blobs.get, row["blob"])


async def delete(db: Database, blobs: BlobStore, user: User, file_id: str) -> None:
    row = await readable(db, user, file_id)
    if row["owner_id"] != user.id and user.role != "admin":
        raise Forbidden("forbidden", "only the file's owner can delete it")
    if row["deleted_at"] is not None:
        raise _missing()
    async with db.transaction() as conn:
        gone = await file_store.remove(conn, file_id, time.time())
        if gone is not None:
            await discard_unused_blobs(conn, blobs, [gone])


async def check_job_files(
    db: Database, settings: Settings, user: User, file_ids: Sequence[str], problem_id: int | None
) -> list[str]:
    """The ids a run or submission may be queued with: only the caller's own files (staff too)."""
    now = time.time()
    rows: list[Row] = []
    for index, file_id in enumerate(file_ids):
        field = f"files[{index}]"
        if file_id in file_ids[:index]:
            raise Invalid("duplicate_file", f"file {file_id} is listed twice", field=field)
        row = await file_store.get(db, file_id) if FILE_ID.match(file_id) else None
        if row is None or row["owner_id"] != user.id or not _alive(row, now):
            raise _missing(field)
        rows.append(row)
    assets = await file_store.workdir_assets(db, problem_id) if problem_id is not None else []
    given = {asset["name"] for asset in assets}
    for index, row in enumerate(rows):
        if row["name"] in given:
            raise Conflict(
                "file_name_conflict",
                f"the problem already gives every student a file named {row['name']!r}; rename yours",
                field=f"files[{index}]",
            )
    if len(rows) + len(assets) > settings.job_files_max:
        raise Invalid(
            "too_many_job_files",
            f"a program gets at most {settings.job_files_max} files"
            + (f", and the problem already gives {len(assets)}" if assets else ""),
            field="files",
        )
    total = sum(row["size"] for row in rows) + sum(asset["size"] for asset in assets)
    if total > settings.job_files_max_bytes:
        raise TooLarge(
            "job_files_too_large",
            f"the files for one program may total at most {settings.job_files_max_bytes} bytes",
            field="files",
        )
    return [row["id"] for row in rows]


async def files_of_job(db: Database, job_id: int) -> list[dict[str, Any]]:
    return [
        {"id": row["file_id"], "name": row["name"], "size": row["size"]}
        for row in await file_store.files_of_job(db, job_id)
    ]
