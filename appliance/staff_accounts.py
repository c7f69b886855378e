"""Staff accounts administered from the web: admins list, create, disable, enable and reset the
passwords of teachers and admins.

Students are not managed here (their teachers manage them, see `appliance.roster`): a student's
id is answered like an id that does not exist. A disabled account's sessions end and its tokens
are revoked at once; a reset ends every session of the account but the one asking (an admin
resetting their own password stays logged in here) and revokes its tokens. An admin cannot disable
themselves, and the last enabled admin can never be disabled, so the appliance always keeps one.
Generated passwords are shown once, in the answer that made them; only their hash is stored.
"""

from __future__ import annotations

import logging
from typing import Any

from appliance.accounts import Accounts, User
from appliance.clock import api_iso
from appliance.db import Database, Row
from appliance.errors import Conflict, Forbidden, Invalid, NotFound
from appliance.passwords import hash_password_async
from appliance.roster import generate_password
from appliance.store import users as user_store

log = logging.getLogger(__name__)

STAFF_ROLES = ("teacher", "admin")
# A staff password guards every class's data: four groups (about 79 bits), more when the
# configured minimum length asks for it. Each group is 4 characters and a dash.
GENERATED_GROUPS = 4


def require_admin(user: User) -> None:
    # The routes are admin-only already; checked again here so no other caller can skip it.
    if user.role != "admin":
        raise Forbidden("forbidden", "only admins can do this")


def check_role(role: str | None) -> None:
    if role not in STAFF_ROLES:
        raise Invalid("invalid_role", "role must be 'teacher' or 'admin'", field="role")


def staff_json(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "username": row["username"],
        "role": row["role"],
        "created_at": api_iso(row["created_at"]),
        "disabled": bool(row["disabled"]),
        "last_login_at": api_iso(row["last_login_at"]),
    }


def generated_password(min_length: int) -> str:
    groups = max(GENERATED_GROUPS, -(-(min_length + 1) // 5))
    return generate_password(groups)


async def list_staff(db: Database, actor: User, role: str | None) -> list[dict[str, Any]]:
    require_admin(actor)
    if role is not None:
        check_role(role)
    return [staff_json(row) for row in await user_store.list_staff(db, role)]


async def _staff_row(db: Database, account_id: int) -> Row:
    row = await user_store.get_staff(db, account_id)
    if row is None:
        raise NotFound("not_found", "no such teacher or admin account")
    return row


async def create(
    db: Database, accounts: Accounts, actor: User, username: str, role: str, password: str | None
) -> dict[str, Any]:
    """A new teacher or admin; the password is generated when none is given (and then answered once)."""
    require_admin(actor)
    check_role(role)
    generated = not password
    password = password or generated_password(accounts.settings.password_min_length)
    # Checks the username (the registration rules) and the password, and refuses a taken name (409).
    made = await accounts.create_by(actor, username, password, role, None)
    log.info("admin %s created %s account %s", actor.id, role, made.id)
    return {
        "account": staff_json(await _staff_row(db, made.id)),
        "password": password if generated else None,
        "generated": generated,
    }


async def set_disabled(db: Database, actor: User, account_id: int, disabled: bool) -> dict[str, Any]:
    require_admin(actor)
    await _staff_row(db, account_id)
    if disabled:
        if account_id == actor.id:
            raise Conflict("cannot_disable_self", "you cannot disable your own account; ask another admin")
        if not await user_store.disable_staff(db, account_id):
            raise Conflict("last_admin", "this is the last enabled admin account; enable or create another admin first")
    else:
        await user_store.enable_staff(db, account_id)
    log.info("admin %s %s account %s", actor.id, "disabled" if disabled else "enabled", account_id)
    return {"account": staff_json(await _staff_row(db, account_id))}


async def reset_password(
    db: Database,
    accounts: Accounts,
    actor: User,
    account_id: int,
    password: str | None,
    *,
    caller_session: str | None,
) -> dict[str, Any]:
    """A new password for a teacher or admin (generated when none is given, answered once).

    `caller_session` is the hash of the session making the request: it survives the reset of the
    caller's own account, every other session of the account ends.
    """
    require_admin(actor)
    await _staff_row(db, account_id)
    generated = not password
    password = password or generated_password(accounts.settings.password_min_length)
    accounts.check_password(password)
    keep = caller_session if account_id == actor.id else None
    await user_store.replace_password(db, account_id, await hash_password_async(password), keep_session=keep)
    log.info("admin %s reset the password of account %s", actor.id, account_id)
    return {
        "account": staff_json(await _staff_row(db, account_id)),
        "password": password if generated else None,
        "generated": generated,
    }
