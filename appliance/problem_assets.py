"""Assets a teacher gives a problem: pictures, sounds, data files, served at content-hashed URLs and
optionally put in every submission's working directory."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import quote

from appliance import problems
from appliance.accounts import User
from appliance.blob_refs import discard_unused_blobs, ensure_blobs
from appliance.blobs import BlobStore
from appliance.classes import require_staff
from appliance.clock import api_iso
from appliance.db import Conn, Database, Row
from appliance.errors import AppError, Conflict, Invalid, NotFound, TooLarge
from appliance.file_names import clean_name
from appliance.file_sniffing import archive_refused, check_allowed, sniff
from appliance.settings import Settings
from appliance.store import files as file_store
from appliance.upload_validation import Prepared

DIGEST = re.compile(r"^[0-9a-f]{64}$")


def asset_url(settings: Settings, digest: str, name: str) -> str:
    return f"{settings.asset_base_url.rstrip('/')}/assets/{digest}/{quote(name, safe='')}"


def asset_json(settings: Settings, row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "problem_id": row["problem_id"],
        "name": row["name"],
        "kind": row["kind"],
        "media_type": row["media_type"],
        "size": row["size"],
        "sha256": row["blob"],
        "in_workdir": bool(row["in_workdir"]),
        "url": asset_url(settings, row["blob"], row["name"]),
        "created_at": api_iso(row["created_at"]),
    }


async def _asset_plan(
    src: Database | Conn,
    settings: Settings,
    problem_id: int,
    item: Prepared,
    in_workdir: bool,
    replace: bool,
) -> tuple[str, Row | None]:
    old = await file_store.asset_named(src, problem_id, item.name)
    if old is not None and old["blob"] == item.digest:
        action = "same"
    elif old is not None and not replace:
        raise Conflict(
            "duplicate_name",
            f"the problem already has an asset named {item.name!r}; delete it first or send replace=true",
            field="file",
        )
    else:
        action = "replace" if old is not None else "new"
    if action == "new" and await file_store.asset_count(src, problem_id) >= settings.assets_max_per_problem:
        raise Conflict(
            "too_many_assets", f"a problem may have at most {settings.assets_max_per_problem} assets", field="file"
        )
    if in_workdir:
        others = [a for a in await file_store.workdir_assets(src, problem_id) if a["name"] != item.name]
        if len(others) + 1 > settings.job_files_max:
            raise Invalid(
                "too_many_job_files",
                f"a program gets at most {settings.job_files_max} files; this would be one more",
                field="in_workdir",
            )
        if sum(a["size"] for a in others) + item.size > settings.job_files_max_bytes:
            raise TooLarge(
                "job_files_too_large",
                f"the files given to every submission may total at most {settings.job_files_max_bytes} bytes",
                field="file",
            )
    return action, old


async def upload_asset(
    db: Database,
    blobs: BlobStore,
    settings: Settings,
    user: User,
    problem_id: int,
    filename: str | None,
    data: bytes,
    *,
    in_workdir: bool = True,
    replace: bool = False,
) -> tuple[dict[str, Any], bool]:
    """Attach an asset to a problem the teacher owns. Returns it and whether anything new was stored."""
    require_staff(user)
    await problems.readable_row(db, user, problem_id)  # staff: their own problems only (admins: all)
    name = clean_name(filename, settings.file_name_max_chars)
    kind = sniff(data, name)
    if kind == "zip":
        raise archive_refused(name, "ZIP")
    check_allowed(kind, settings, name)
    item = Prepared.of(name, kind, data)
    await _asset_plan(db, settings, problem_id, item, in_workdir, replace)
    await asyncio.to_thread(blobs.put, item.data)
    values = {
        "problem_id": problem_id,
        "name": name,
        "kind": kind,
        "media_type": item.media_type,
        "size": item.size,
        "blob": item.digest,
        "in_workdir": int(in_workdir),
        "uploaded_by": user.id,
    }
    async with db.transaction() as conn:
        try:
            action, old = await _asset_plan(conn, settings, problem_id, item, in_workdir, replace)
        except AppError:
            await discard_unused_blobs(conn, blobs, [item.digest])
            raise
        if old is None:
            asset_id = await file_store.insert_asset(conn, values)
        else:
            asset_id = old["id"]
            await file_store.update_asset(conn, asset_id, values)
            if action == "replace":
                await discard_unused_blobs(conn, blobs, [old["blob"]])
    await ensure_blobs(blobs, [item])
    row = await file_store.asset(db, problem_id, asset_id)
    assert row is not None
    return asset_json(settings, row), action != "same"


async def list_assets(db: Database, settings: Settings, user: User, problem_id: int) -> list[dict[str, Any]]:
    await problems.readable_row(db, user, problem_id)
    return [asset_json(settings, row) for row in await file_store.assets_of(db, problem_id)]


async def delete_asset(db: Database, blobs: BlobStore, user: User, problem_id: int, asset_id: int) -> None:
    require_staff(user)
    await problems.readable_row(db, user, problem_id)
    async with db.transaction() as conn:
        row = await file_store.asset(conn, problem_id, asset_id)
        if row is None:
            raise NotFound("not_found", "no such asset")
        await file_store.delete_asset(conn, asset_id)
        await discard_unused_blobs(conn, blobs, [row["blob"]])


async def asset_content(db: Database, blobs: BlobStore, digest: str, name: str) -> tuple[Row, bytes]:
    """The bytes behind a content-hashed asset URL. Only blobs that are problem assets are served:
    the URL names content, and a user's file or a hidden output must never be reachable by hash."""
    # No stored name holds a NUL, and PostgreSQL refuses one in a text parameter: a miss, not a 500.
    row = await file_store.asset_by_content(db, digest, name) if DIGEST.match(digest) and "\x00" not in name else None
    if row is None:
        raise NotFound("not_found", "no such asset")
    return row, await asyncio.to_thread(blobs.get, digest)
