"""Classes: teachers own them, students join with a code or are added by their teacher."""

from __future__ import annotations

import secrets
from typing import Any

from appliance.accounts import User
from appliance.clock import api_iso
from appliance.db import Database, Row
from appliance.errors import Conflict, Forbidden, Invalid, NotFound
from appliance.rate_limits import UserRates
from appliance.store import classes as class_store
from appliance.store import users as user_store

JOIN_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I/L: codes are read off a projector
JOIN_CODE_LENGTH = 8


def _class_json(row: Row, *, with_code: bool) -> dict[str, Any]:
    out = {"id": row["id"], "name": row["name"], "owner_id": row["owner_id"], "created_at": api_iso(row["created_at"])}
    if with_code:
        out["join_code"] = row["join_code"]
    return out


def require_staff(user: User) -> None:
    if not user.is_staff:
        raise Forbidden("forbidden", "only teachers and admins can do this")


async def create(db: Database, user: User, name: str) -> dict[str, Any]:
    require_staff(user)
    name = name.strip()
    if not name:
        raise Invalid("empty", "field 'name' must not be blank", field="name")
    for _ in range(5):
        code = "".join(secrets.choice(JOIN_ALPHABET) for _ in range(JOIN_CODE_LENGTH))
        try:
            class_id = await class_store.create(db, name, user.id, code)
        except Conflict:
            continue
        return await get_for(db, user, class_id)
    raise Conflict("join_code_taken", "could not pick a free join code; try again")


async def list_for(db: Database, user: User) -> list[dict[str, Any]]:
    if user.role == "admin":
        rows = await class_store.list_all(db)
    elif user.role == "teacher":
        rows = await class_store.list_owned(db, user.id)
    else:
        rows = await class_store.list_joined(db, user.id)
    return [_class_json(row, with_code=user.is_staff) for row in rows]


async def owned_row(db: Database, user: User, class_id: int) -> Row:
    """The class if `user` may manage it; otherwise 404, exactly as if it did not exist."""
    row = await class_store.get(db, class_id)
    if row is None or not (user.role == "admin" or row["owner_id"] == user.id):
        raise NotFound("not_found", "no such class")
    return row


async def get_for(db: Database, user: User, class_id: int) -> dict[str, Any]:
    row = await class_store.get(db, class_id)
    if row is None:
        raise NotFound("not_found", "no such class")
    if user.is_staff:
        row = await owned_row(db, user, class_id)
        out = _class_json(row, with_code=True)
        out["members"] = [
            {"id": m["id"], "username": m["username"], "added_at": api_iso(m["added_at"])}
            for m in await class_store.members(db, class_id)
        ]
        return out
    if not await class_store.is_member(db, class_id, user.id):
        raise NotFound("not_found", "no such class")
    return _class_json(row, with_code=False)


async def join(db: Database, rates: UserRates, user: User, code: str) -> dict[str, Any]:
    """Wrong codes count against the student's account (code guessing), never their address."""
    if user.role != "student":
        raise Forbidden("students_only", "only students join classes; teachers create them")
    attempt = rates.join_attempt(user.id)
    row = None
    try:
        row = await class_store.by_join_code(db, code.strip().upper())
    finally:
        attempt.finish(found=row is not None)
    if row is None:
        raise NotFound("invalid_join_code", "no class has that join code; check it with your teacher")
    await class_store.add_members(db, row["id"], [user.id], by_code=True)
    return _class_json(row, with_code=False)


async def add_members(db: Database, user: User, class_id: int, usernames: list[str]) -> dict[str, Any]:
    require_staff(user)
    await owned_row(db, user, class_id)
    ids: list[int] = []
    for index, username in enumerate(usernames):
        row = await user_store.get_with_hash(db, username)
        if row is None:
            raise Invalid("unknown_user", f"no account named {username!r}", field=f"usernames[{index}]")
        if row["role"] != "student":
            raise Invalid("not_a_student", f"{username!r} is not a student account", field=f"usernames[{index}]")
        ids.append(row["id"])
    await class_store.add_members(db, class_id, ids)
    return await get_for(db, user, class_id)
