"""Accounts, roles, registration with an age gate, logins, sessions and API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from appliance import legal
from appliance.clock import age_on, now
from appliance.db import Database, Row
from appliance.errors import Forbidden, Invalid, RateLimited, Unauthorized
from appliance.passwords import DUMMY_HASH, hash_password, verify_password
from appliance.settings import Settings
from appliance.store import sessions as session_store
from appliance.store import users as user_store
from appliance.throttle import FailureThrottle

ROLES = ("student", "teacher", "admin")
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,31}$")
PASSWORD_MAX = 256


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str
    birthdate: str | None
    created_at: str

    @classmethod
    def from_row(cls, row: Row) -> User:
        return cls(row["id"], row["username"], row["role"], row["birthdate"], row["created_at"])

    @property
    def is_staff(self) -> bool:
        return self.role in ("teacher", "admin")

    def is_minor(self, adult_age: int) -> bool:
        # Staff created without a birthdate are adults by definition of the role.
        if self.birthdate is None:
            return False
        return age_on(date.fromisoformat(self.birthdate), now().date()) < adult_age

    def to_json(self, settings: Settings) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "role": self.role,
            "is_minor": self.is_minor(settings.adult_age),
            "created_at": self.created_at,
        }


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_username(username: str) -> None:
    if not USERNAME_RE.match(username):
        raise Invalid(
            "invalid_username",
            "usernames are 3 to 32 letters, digits, dots, dashes or underscores, starting with a letter or digit",
            field="username",
        )


def parse_birthdate(text: str) -> date:
    try:
        born = date.fromisoformat(text)
    except ValueError as exc:
        raise Invalid("invalid_birthdate", "birthdate must be a date like 2011-04-30", field="birthdate") from exc
    today = now().date()
    if born > today or born.year < today.year - 120:
        raise Invalid("invalid_birthdate", "birthdate is not a plausible date of birth", field="birthdate")
    return born


class Accounts:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._by_account = FailureThrottle(settings.login_max_failures_per_account, settings.login_failure_window_s)
        self._by_address = FailureThrottle(settings.login_max_failures_per_address, settings.login_failure_window_s)

    def check_password(self, password: str) -> None:
        if len(password) < self.settings.password_min_length:
            raise Invalid(
                "weak_password",
                f"passwords need at least {self.settings.password_min_length} characters",
                field="password",
            )
        if len(password) > PASSWORD_MAX:
            raise Invalid("too_long", f"passwords are at most {PASSWORD_MAX} characters", field="password")

    async def register(self, username: str, password: str, birthdate: str, accepted: dict[str, str]) -> User:
        """Self-registration: students only, old enough, accepting the current legal texts."""
        check_username(username)
        self.check_password(password)
        born = parse_birthdate(birthdate)
        if age_on(born, now().date()) < self.settings.min_self_register_age:
            raise Forbidden(
                "too_young_to_register",
                f"people under {self.settings.min_self_register_age} cannot create their own account; "
                "please ask your teacher to create one for you",
                field="birthdate",
            )
        await legal.check_acceptance(self.db, accepted)
        user_id = await user_store.create(
            self.db,
            username=username,
            password_hash=hash_password(password),
            role="student",
            birthdate=born.isoformat(),
            created_by=None,
            acceptances=accepted,
        )
        return await self.get(user_id)

    async def create_by(
        self, creator: User | None, username: str, password: str, role: str, birthdate: str | None
    ) -> User:
        """Accounts made by staff (or the CLI when creator is None); teachers may only make students."""
        if role not in ROLES:
            raise Invalid("invalid_role", f"role must be one of {', '.join(ROLES)}", field="role")
        if creator is not None:
            if creator.role == "teacher" and role != "student":
                raise Forbidden("forbidden_role", "teachers can create student accounts only", field="role")
            if creator.role == "student":
                raise Forbidden("forbidden", "students cannot create accounts")
        check_username(username)
        self.check_password(password)
        born = parse_birthdate(birthdate).isoformat() if birthdate else None
        user_id = await user_store.create(
            self.db,
            username=username,
            password_hash=hash_password(password),
            role=role,
            birthdate=born,
            created_by=creator.id if creator else None,
        )
        return await self.get(user_id)

    async def get(self, user_id: int) -> User:
        row = await user_store.get(self.db, user_id)
        if row is None:
            raise Unauthorized("unknown_user", "this account no longer exists")
        return User.from_row(row)

    async def login(self, username: str, password: str, address: str) -> tuple[User, str]:
        account_key = username.lower()
        wait = max(self._by_account.retry_after(account_key), self._by_address.retry_after(address))
        if wait:
            raise RateLimited("too_many_attempts", f"too many failed logins; try again in {wait} s", retry_after=wait)
        row = await user_store.get_with_hash(self.db, username)
        ok = verify_password(password, row["password_hash"] if row else DUMMY_HASH)
        if row is None or not ok or row["disabled"]:
            self._by_account.fail(account_key)
            self._by_address.fail(address)
            raise Unauthorized("invalid_credentials", "wrong username or password")
        self._by_account.reset(account_key)
        token = secrets.token_urlsafe(32)
        await session_store.create_session(
            self.db, hash_token(token), row["id"], timedelta(days=self.settings.session_days)
        )
        return User.from_row(row), token

    async def logout(self, session_token: str) -> None:
        await session_store.delete_session(self.db, hash_token(session_token))

    async def user_for_session(self, session_token: str) -> User | None:
        row = await session_store.user_for_session(self.db, hash_token(session_token))
        return User.from_row(row) if row else None

    async def user_for_bearer(self, token: str) -> User | None:
        row = await session_store.user_for_token(self.db, hash_token(token))
        return User.from_row(row) if row else None

    async def create_token(self, user: User, name: str) -> str:
        if not name.strip():
            raise Invalid("empty", "field 'name' must not be blank", field="name")
        token = "lr_" + secrets.token_urlsafe(32)
        await session_store.create_token(self.db, user.id, name, hash_token(token))
        return token
