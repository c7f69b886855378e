"""What the central instance checks before it reads a pushed bundle's body (up to
`sync_bundle_max_bytes`) into memory: pushes per address within a window, the signing key the
push names in its `X-Labrunner-Key` header (registered here, else refused unread), and one import
at a time.

A second push while one is being imported is answered at once with 503 `sync_busy` and a
Retry-After (`sync_push_busy_retry_s`), not queued: a waiting push would hold its connection, and
queueing them would let many bodies wait in memory. The outbox treats it like any failed attempt
and retries with its backoff.

The per-address window is in memory (the `limits` library, through `throttle.WindowCounter`), as
the login throttle's: a restart forgetting it is harmless. Refused pushes count too: they are what
an address hammering the route sends.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from limits.storage import MemoryStorage

from appliance.db import Database
from appliance.errors import Forbidden, RateLimited, Unauthorized, Unavailable
from appliance.identity import KeyTextError, parse_public_key, public_key_text
from appliance.settings import Settings
from appliance.store import sync as store
from appliance.throttle import Clock, Throttled, WindowCounter

KEY_HEADER = "X-Labrunner-Key"


class SyncIntake:
    """The central instance's gate for pushes (one per app)."""

    def __init__(self, settings: Settings, clock: Clock = time.monotonic) -> None:
        self._storage = MemoryStorage()
        self._pushes = WindowCounter(
            self._storage, "sync-push-address", settings.sync_push_max_per_address, settings.sync_push_window_s, clock
        )
        self._busy_retry_s = settings.sync_push_busy_retry_s
        self._importing = False
        self._clock = clock
        self._next_sweep = clock() + settings.sync_push_window_s

    def count(self, address: str) -> None:
        """Count one push from `address`, or raise RateLimited (429 with Retry-After)."""
        if self._clock() >= self._next_sweep:
            self._next_sweep = self._clock() + self._pushes.window_s
            self._pushes.sweep()
        try:
            self._pushes.take(address)
        except Throttled as exc:
            raise RateLimited(
                "sync_push_rate_limited",
                f"too many pushes from this address; try again in {exc.retry_after} s",
                retry_after=exc.retry_after,
            ) from None

    @asynccontextmanager
    async def importing(self) -> AsyncIterator[None]:
        """Held while one push is read and imported; a second one meanwhile is refused, unread.
        Taken with no await before it is set, so two pushes cannot both take it."""
        if self._importing:
            raise Unavailable(
                "sync_busy",
                f"another push is being imported; try again in {self._busy_retry_s} s",
                retry_after=self._busy_retry_s,
            )
        self._importing = True
        try:
            yield
        finally:
            self._importing = False


async def registered_signer(db: Database, header: str | None) -> str:
    """The registered public key a push names in its header, in canonical text; refused otherwise."""
    if not header:
        raise Unauthorized(
            "bundle_key_required",
            f"name the bundle's signing key in the {KEY_HEADER} header"
            " (ed25519:..., as `labrunner identity` prints it)",
        )
    try:
        key = public_key_text(parse_public_key(header))
    except KeyTextError as error:
        raise Unauthorized("bundle_key_required", f"the {KEY_HEADER} header holds no public key: {error}") from None
    async with db.snapshot() as conn:
        registered = await store.appliance_by_key(conn, key)
    if registered is None:
        raise Forbidden(
            "bundle_unknown_key",
            "no appliance was registered here with the key this push names; if you trust the appliance, register"
            " its key with `labrunner appliances add NAME PUBLIC-KEY`; nothing was read or imported",
        )
    return key
