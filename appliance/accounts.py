"""Accounts, roles, registration with an age gate, logins, sessions and API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from appliance import legal
from appliance.clock import age_on, api_iso, from_db, now, to_db
from appliance.db import Database, Row
from appliance.errors import Forbidden, Invalid, NotFound, RateLimited, Unauthorized
from appliance.passwords import DUMMY_HASH, hash_password_async, verify_password_async
from appliance.settings import Settings
from appliance.store import sessions as session_store
from appliance.store import users as user_store
from appliance.throttle import LoginThrottle, RegistrationThrottle, Throttled

ROLES = ("student", "teacher", "admin")
USERNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{2,31}")
PASSWORD_MAX = 256
# A token's last use is written at most this often, so scripts polling the API cost no write each.
TOKEN_TOUCH_S = 60


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
            "created_at": api_iso(self.created_at),
        }


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_username(username: str) -> None:
    if not USERNAME_RE.fullmatch(username):
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
        self.login_throttle = LoginThrottle(
            per_pair=settings.login_max_failures_per_account_address,
            per_address=settings.login_max_failures_per_address,
            per_account=settings.login_max_failures_per_account,
            window_s=settings.login_failure_window_s,
            backoff_base_s=settings.login_backoff_base_s,
            backoff_max_s=settings.login_backoff_max_s,
        )
        self.registration_throttle = RegistrationThrottle(
            per_address=settings.register_max_per_address, window_s=settings.register_window_s
        )

    def check_password(self, password: str) -> None:
        if len(password) < self.settings.password_min_length:
            raise Invalid(
                "weak_password",
                f"passwords need at least {self.settings.password_min_length} characters",
                field="password",
            )
        if len(password) > PASSWORD_MAX:
            raise Invalid("too_long", f"passwords are at most {PASSWORD_MAX} characters", field="password")

    async def register(
        self, username: str, password: str, birthdate: str, accepted: dict[str, str], *, address: str
    ) -> User:
        """Self-registration: students only, old enough, accepting the current legal texts.

        Registrations that would create an account count against `address` (checked and counted in
        one synchronous step, so concurrent requests cannot all slip under the limit).
        """
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
        try:
            self.registration_throttle.take(address)
        except Throttled as exc:
            raise RateLimited(
                "too_many_registrations",
                f"too many accounts were created from this address; try again in {exc.retry_after} s",
                retry_after=exc.retry_after,
            ) from None
        user_id = await user_store.create(
            self.db,
            username=username,
            password_hash=await hash_password_async(password),
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
            password_hash=await hash_password_async(password),
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
        # The attempt is reserved before any other await: concurrent guesses count at once.
        try:
            attempt = await self.login_throttle.admit(
                username.lower(), address, patience_s=self.settings.login_settle_wait_s
            )
        except Throttled as exc:
            raise RateLimited(
                "too_many_attempts",
                f"too many failed logins; try again in {exc.retry_after} s",
                retry_after=exc.retry_after,
            ) from None
        good = False
        try:
            row = await user_store.get_with_hash(self.db, username)
            ok = await verify_password_async(password, row["password_hash"] if row else DUMMY_HASH)
            good = row is not None and ok and not row["disabled"]
        finally:
            attempt.finish(success=good)
        if not good or row is None:
            raise Unauthorized("invalid_credentials", "wrong username or password")
        token = secrets.token_urlsafe(32)
        lifetime = timedelta(days=self.settings.session_days)
        if not await session_store.create_session_if_password(
            self.db, hash_token(token), row["id"], lifetime, row["password_hash"]
        ):
            raise Unauthorized("invalid_credentials", "wrong username or password")  # reset meanwhile
        return User.from_row(row), token

    async def logout(self, session_token: str) -> None:
        await session_store.delete_session(self.db, hash_token(session_token))

    async def user_for_session(self, session_token: str) -> User | None:
        row = await session_store.user_for_session(self.db, hash_token(session_token))
        return User.from_row(row) if row else None

    async def user_for_bearer(self, token: str) -> User | None:
        """The owner of a live token (not expired, not revoked); records when it was last used."""
        row = await session_store.user_for_token(self.db, hash_token(token))
        if row is None:
            return None
        moment = now()
        last = row["token_last_used_at"]
        if last is None or (moment - from_db(last)).total_seconds() >= TOKEN_TOUCH_S:
            await session_store.touch_token(self.db, row["token_id"], to_db(moment))
        return User.from_row(row)

    async def create_token(self, user: User, name: str, expires_in_days: int | None = None) -> dict[str, Any]:
        """A new token for scripts: the secret is in this answer only (stored hashed)."""
        if not name.strip():
            raise Invalid("empty", "field 'name' must not be blank", field="name")
        days = self.settings.token_days if expires_in_days is None else expires_in_days
        if not 1 <= days <= self.settings.token_max_days:
            raise Invalid(
                "out_of_range",
                f"expires_in_days must be between 1 and {self.settings.token_max_days}",
                field="expires_in_days",
            )
        token = "lr_" + secrets.token_urlsafe(32)
        token_id = await session_store.create_token(
            self.db, user.id, name, hash_token(token), to_db(now() + timedelta(days=days))
        )
        row = await session_store.get_token(self.db, user.id, token_id)
        assert row is not None
        return {"token": token, **token_json(row)}

    async def list_tokens(self, user: User) -> list[dict[str, Any]]:
        return [token_json(row) for row in await session_store.list_tokens(self.db, user.id)]

    async def revoke_token(self, user: User, token_id: int) -> None:
        """Revoke one of the caller's own tokens; anyone else's (or a revoked one) is not found."""
        if not await session_store.revoke_token(self.db, user.id, token_id):
            raise NotFound("not_found", "no such token")


def token_json(row: Row) -> dict[str, Any]:
    """What a token's owner may see of it: never the secret (which is not stored anyway)."""
    return {
        "id": row["id"],
        "name": row["name"],
        "created_at": api_iso(row["created_at"]),
        "last_used_at": api_iso(row["last_used_at"]),
        "expires_at": api_iso(row["expires_at"]),
    }
