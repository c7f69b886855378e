"""One-time links made by the local desktop process (Datasette's `--root` link is the model).

A login link logs a teacher (or an admin) in without a password; a setup link opens the first-start
page that creates the admin and the teacher while no teacher or admin exists (students may: anyone
on the network can register one meanwhile, which must not take the setup away). Both are made by a process
on this machine that can write the database (the window's own server, or `labrunner desktop`
beside a running service), so whoever can use them already owns the data folder.

Rules: the token is kept only as a hash; a link works once, only before it expires, and only from
the loopback address of the server's own connection (`request.remote`, the TCP peer: no proxy
header is trusted). Any attempt marks a login link used, refused or not, so a link seen on the
network cannot be tried again later from this machine either; a setup link is spent by its use
and by any attempt from the network.
"""

from __future__ import annotations

import ipaddress
import secrets
from datetime import timedelta

from appliance import legal
from appliance.accounts import PASSWORD_MAX, User, check_username, hash_token
from appliance.clock import db_now
from appliance.db import Database, Row
from appliance.errors import Conflict, Forbidden, Invalid, NotFound
from appliance.passwords import hash_password_async
from appliance.settings import Settings
from appliance.store import login_links as link_store
from appliance.store import sessions as session_store

# Marks the window's requests (its user agent): only its pages, over loopback, may run pywebview's bridge.
WINDOW_AGENT = "LabrunnerDesktop"
LOGIN = "login"
SETUP = "setup"


def is_loopback(address: str | None) -> bool:
    """127.0.0.0/8, ::1 and IPv4-mapped loopback; anything else (or no address) is not."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool((mapped or ip).is_loopback)


def _new_token() -> str:
    return secrets.token_urlsafe(32)


async def create_login_link(db: Database, settings: Settings, username: str | None) -> tuple[str, User]:
    """A fresh login link token for `username` (a teacher or admin), else the most recently created
    teacher; raises NotFound (`no_teacher`) when there is none."""
    row = await link_store.desktop_user(db, username)
    if row is None:
        if username is not None:
            raise NotFound("no_such_teacher", f"there is no enabled teacher or admin called {username!r}")
        raise NotFound(
            "no_teacher",
            "there is no teacher account yet: create one with `labrunner users create --role teacher`,"
            " or name an admin with `--user NAME`",
        )
    token = _new_token()
    lifetime = timedelta(seconds=settings.desktop_login_link_s)
    await link_store.create(db, hash_token(token), LOGIN, row["id"], lifetime)
    return token, User.from_row(row)


async def create_setup_link(db: Database, settings: Settings) -> str:
    """A setup link token; only while no teacher or admin exists (Conflict `accounts_exist` otherwise)."""
    await _no_accounts(db)
    token = _new_token()
    await link_store.create(db, hash_token(token), SETUP, None, timedelta(seconds=settings.desktop_setup_link_s))
    return token


async def needs_setup(db: Database) -> bool:
    return await link_store.staff_count(db) == 0


async def _no_accounts(db: Database) -> None:
    if not await needs_setup(db):
        raise Conflict(
            "accounts_exist", "this appliance already has a teacher or an admin: setup is only for the first start"
        )


def _check_local(address: str | None) -> None:
    if not is_loopback(address):
        raise Forbidden(
            "link_not_local", "this link works only in a browser on the Labrunner machine itself (from 127.0.0.1)"
        )


def _check_fresh(row: Row | None, purpose: str) -> None:
    # A setup link may also come from `labrunner setup-link` (a server run by a service manager has no window).
    again = "open a new one from the Labrunner window" + (" or `labrunner setup-link`" if purpose == SETUP else "")
    if row is None or row["purpose"] != purpose:
        raise NotFound("link_unknown", f"this link is not valid: {again}")
    if row["used_at"] is not None:
        raise Forbidden("link_used", f"this link was already used once: {again}")
    if row["expires_at"] <= db_now():
        raise Forbidden("link_expired", f"this link has expired: {again}")


async def redeem_login(db: Database, settings: Settings, token: str, address: str | None) -> tuple[User, str]:
    """Use a login link: the account it logs in and a new session token for its cookie.

    The link is marked used before any check, so every attempt (refused or not) spends it."""
    row = await link_store.consume(db, hash_token(token))
    _check_fresh(row, LOGIN)
    _check_local(address)
    assert row is not None
    user_row = await link_store.desktop_user_by_id(db, row["user_id"])
    if user_row is None:
        raise Forbidden("account_disabled", "this account is disabled or no longer a teacher's or admin's")
    return User.from_row(user_row), await start_session(db, settings, user_row["id"])


async def start_session(db: Database, settings: Settings, user_id: int) -> str:
    """A new login session for `user_id`, as a password login makes; returns the cookie's token."""
    session = secrets.token_urlsafe(32)
    await session_store.create_session(db, hash_token(session), user_id, timedelta(days=settings.session_days))
    return session


async def check_setup_link(db: Database, token: str, address: str | None) -> None:
    """Whether the setup page may be shown for this token: looking from this machine does not
    spend it (a typo on the page costs no new link); an attempt from the network does."""
    _check_fresh(await link_store.get(db, hash_token(token)), SETUP)
    if not is_loopback(address):
        await link_store.consume(db, hash_token(token))
    _check_local(address)
    await _no_accounts(db)


def _check_password(settings: Settings, password: str, field: str) -> None:
    if len(password) < settings.password_min_length:
        message = f"passwords need at least {settings.password_min_length} characters"
        raise Invalid("weak_password", message, field=field)
    if len(password) > PASSWORD_MAX:
        raise Invalid("too_long", f"passwords are at most {PASSWORD_MAX} characters", field=field)


async def complete_setup(
    db: Database,
    settings: Settings,
    token: str,
    address: str | None,
    admin: tuple[str, str],
    teacher: tuple[str, str],
    accepted: dict[str, str],
) -> tuple[User, str]:
    """Create the admin and the teacher (username, password) from the setup page and log the
    teacher in. Everything the person typed is checked before the link is spent, so a typo costs
    no new link; the accounts and the spending happen in one transaction."""
    await check_setup_link(db, token, address)
    for (username, password), role in ((admin, "admin"), (teacher, "teacher")):
        try:
            check_username(username)
        except Invalid as error:
            raise Invalid(error.code, error.message, field=f"{role}_username") from None
        _check_password(settings, password, f"{role}_password")
    if admin[0].lower() == teacher[0].lower():
        raise Conflict("username_taken", "the admin and the teacher need different usernames", field="teacher_username")
    for (username, _password), role in ((admin, "admin"), (teacher, "teacher")):
        if await link_store.username_taken(db, username):  # a student registered it
            raise Conflict("username_taken", f"the username {username!r} is already taken", field=f"{role}_username")
    await legal.check_acceptance(db, accepted)
    teacher_id = await link_store.create_first_accounts(
        db,
        (admin[0], await hash_password_async(admin[1])),
        (teacher[0], await hash_password_async(teacher[1])),
        accepted,
        hash_token(token),
    )
    if teacher_id is None:  # another request was quicker
        raise Conflict(
            "accounts_exist", "this appliance already has a teacher or an admin: setup is only for the first start"
        )
    user_row = await link_store.desktop_user_by_id(db, teacher_id)
    assert user_row is not None
    return User.from_row(user_row), await start_session(db, settings, teacher_id)
