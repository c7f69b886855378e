"""Rosters: students imported from a CSV file, and password resets by their teacher.

A teacher may reset the password of a student in one of their classes (admins: anyone); the
new password is shown once and every session of that student ends, since someone else may know
the old password.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from appliance import classes
from appliance.accounts import Accounts, User, check_username, parse_birthdate
from appliance.classes import require_staff
from appliance.csvio import read_csv
from appliance.db import Database
from appliance.errors import AppError, Invalid, NotFound
from appliance.passwords import hash_password_async
from appliance.settings import Settings
from appliance.store import classes as class_store
from appliance.store import roster as roster_store
from appliance.store import sessions as session_store
from appliance.store import users as user_store

# Lower-case letters and digits without look-alikes (0/o, 1/l/i): passwords are read off paper.
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
MAX_REPORTED_ERRORS = 10


def generate_password(groups: int = 3, size: int = 4) -> str:
    """A password a child can type from a printed slip, e.g. `kq7m-x2pa-fh9t` (about 59 bits)."""
    return "-".join("".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(size)) for _ in range(groups))


async def import_csv(
    db: Database, accounts: Accounts, settings: Settings, user: User, class_id: int, data: bytes
) -> dict[str, Any]:
    """Create and enroll the students a CSV file lists (columns: username, password?, birthdate?)."""
    require_staff(user)
    await classes.owned_row(db, user, class_id)
    rows = read_csv(data, max_rows=settings.max_roster_import_rows)
    if rows and "username" not in rows[0]:
        raise Invalid("missing_column", "the first row must name the columns, with at least 'username'")
    errors: list[str] = []
    seen: set[str] = set()
    new: list[tuple[str, str, str | None]] = []  # username, password, birthdate
    generated: set[str] = set()
    existing: list[tuple[int, str]] = []
    for line, row in enumerate(rows, start=2):
        username = row["username"]
        try:
            check_username(username)
            if username.lower() in seen:
                raise Invalid("duplicate_username", f"{username!r} is listed twice")
            seen.add(username.lower())
            found = await user_store.get_with_hash(db, username)
            if found is not None:
                if found["role"] != "student":
                    raise Invalid("not_a_student", f"{username!r} is a {found['role']} account, not a student")
                existing.append((found["id"], found["username"]))
                continue
            password = row.get("password", "")
            if not password:
                password = generate_password()
                generated.add(username)
            accounts.check_password(password)
            birthdate = row.get("birthdate") or None
            new.append((username, password, parse_birthdate(birthdate).isoformat() if birthdate else None))
        except AppError as error:
            errors.append(f"row {line}: {error.message}")
    if errors:
        shown = "; ".join(errors[:MAX_REPORTED_ERRORS])
        more = f" (and {len(errors) - MAX_REPORTED_ERRORS} more)" if len(errors) > MAX_REPORTED_ERRORS else ""
        raise Invalid("invalid_rows", f"nothing was imported; fix these rows first: {shown}{more}")
    if not new and not existing:
        raise Invalid("empty_file", "the file lists no students")
    # scrypt takes ~50 ms a password: hashed off the event loop (see appliance.passwords).
    hashes = await asyncio.gather(*(hash_password_async(password) for _, password, _ in new))
    members_before = {m["id"] for m in await class_store.members(db, class_id)}
    await roster_store.import_students(
        db,
        class_id,
        user.id,
        [(username, digest, born) for (username, _, born), digest in zip(new, hashes, strict=True)],
        [user_id for user_id, _ in existing],
    )
    return {
        "class_id": class_id,
        "created": [
            {"username": username, "password": password, "generated": username in generated}
            for username, password, _ in new
        ],
        "added": [name for user_id, name in existing if user_id not in members_before],
        "already_members": [name for user_id, name in existing if user_id in members_before],
    }


async def reset_password(
    db: Database, accounts: Accounts, actor: User, user_id: int, password: str | None
) -> dict[str, Any]:
    require_staff(actor)
    target = await user_store.get(db, user_id)
    allowed = target is not None and (
        actor.role == "admin"
        or (target["role"] == "student" and await class_store.teacher_may_manage(db, actor.id, user_id))
    )
    if target is None or not allowed:
        raise NotFound("not_found", "no such student in your classes")
    generated = not password
    password = password or generate_password()
    accounts.check_password(password)
    digest = await hash_password_async(password)
    await user_store.set_password_hash(db, user_id, digest)
    await session_store.delete_user_sessions(db, user_id)
    # Whoever knew the old password may have made a script token with it.
    await session_store.revoke_user_tokens(db, user_id)
    return {"user_id": user_id, "username": target["username"], "password": password, "generated": generated}
