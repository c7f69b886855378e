"""Login and registration throttling, kept in memory with the `limits` library's moving windows.

In memory on purpose: a restart forgiving recent failures is harmless, and this keeps a login
storm from becoming a write storm on the single SQLite writer.

Logins are throttled three ways (security review, issue 9):

- per (account, address) pair: a hard limit, so one address guessing one account stops itself and
  nobody else — the right password typed on another machine still works;
- per address: a hard limit against one address spraying many accounts;
- per account, from all addresses together: once past a free allowance, each further attempt
  waits a delay that doubles per failure up to a cap. Never a lock of many minutes; and set above
  the pair limit, one address alone can never slow an account down for anyone else.

An attempt is *reserved* synchronously, before the caller awaits anything (the database, the
password hash), and counts against every limit while it is in flight, so concurrent attempts
cannot all pass the check before any of them is recorded. An attempt held up only by others still
in flight is not refused but waits for them to settle (`admit`): a class of 30 logging in at once
from one school address has more logins being checked than the address may fail, and none of
them has failed yet. A success releases the reservation and
clears the pair's and the account's failures (never the address's: a sprayer must not reset its
count by logging into an account of its own).

Every key leaves memory once its last failure has left the window (`sweep`, run as attempts
come in, so memory grows only with recent activity). `WindowCounter` also keeps the per-student
rates of `appliance.rate_limits`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

Clock = Callable[[], float]
# How often a login held up by others in flight looks again (a password check takes ~0.1 s).
_SETTLE_POLL_S = 0.05


class Throttled(Exception):
    """Refused by a throttle; `retry_after` is in whole seconds (at least 1)."""

    def __init__(self, retry_after: float, *, settling: bool = False) -> None:
        super().__init__(f"throttled for {retry_after:.1f} s")
        self.retry_after = max(1, math.ceil(retry_after))
        # Only reservations in flight stand in the way: once they settle, the attempt may pass.
        self.settling = settling


def _escape(identifier: str) -> str:
    # `limits` joins identifiers with '/': escape it so ("a/b", "c") and ("a", "b/c") stay apart.
    return identifier.replace("%", "%25").replace("/", "%2F")


class WindowCounter:
    """Events per key within a moving window of `window_s` seconds; `limit` of them allowed.

    The timestamps live in a `limits` MemoryStorage; this class adds what it lacks for our use:
    counting in-flight reservations, and forgetting keys whose events have all expired (the
    storage trims old events but keeps every key it has seen).
    """

    def __init__(
        self, storage: MemoryStorage, name: str, limit: int, window_s: int, clock: Clock = time.monotonic
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._storage = storage
        self._limiter = MovingWindowRateLimiter(storage)
        self._item = RateLimitItemPerSecond(limit, window_s, namespace=name)
        self._clock = clock
        self._pending: Counter[str] = Counter()
        self._expires: dict[str, float] = {}  # key -> when its newest event leaves the window

    def _ids(self, key: str) -> str:
        return _escape(key)

    def recorded(self, key: str) -> int:
        """Events recorded within the window."""
        return self.limit - self._limiter.get_window_stats(self._item, self._ids(key)).remaining

    def count(self, key: str) -> int:
        """Events recorded within the window, plus reservations in flight."""
        return self.recorded(key) + self._pending[key]

    def allows(self, key: str) -> bool:
        return self.count(key) < self.limit

    def retry_after(self, key: str) -> float:
        """Seconds until the oldest event in the window expires (1 when only reservations block)."""
        stats = self._limiter.get_window_stats(self._item, self._ids(key))
        if stats.remaining > 0:
            return 1.0
        return max(1.0, stats.reset_time - time.time())

    def reserve(self, key: str) -> None:
        self._pending[key] += 1

    def release(self, key: str) -> None:
        self._pending[key] -= 1
        if self._pending[key] <= 0:
            del self._pending[key]

    def record(self, key: str) -> bool:
        """Record one event now; False (and nothing recorded) when the window is already full."""
        recorded = self._limiter.hit(self._item, self._ids(key))
        if recorded:
            self._expires[key] = self._clock() + self.window_s
        return recorded

    def reserve_within(self, key: str, limit: int) -> None:
        """Reserve one event while fewer than `limit` (capped at the counter's own) are recorded or
        in flight, else raise Throttled: for a limit that differs per key and may change between
        calls (quota overrides), all counted in one window of the same key."""
        limit = min(limit, self.limit)
        if self.count(key) < limit:
            self.reserve(key)
            return
        stats = self._limiter.get_window_stats(self._item, self._ids(key))
        if self.limit - stats.remaining < limit:
            raise Throttled(1.0)  # only reservations in flight block: they settle within a moment
        # When the oldest event leaves. Exact while the limit stays put; after it was lowered the
        # caller may be told again, later, to wait a little longer.
        raise Throttled(stats.reset_time - time.time())

    def take(self, key: str) -> None:
        """Record one event, or raise Throttled without recording when the limit is reached."""
        if not self.record(key):
            raise Throttled(self.retry_after(key))

    def clear(self, key: str) -> None:
        full_key = self._item.key_for(self._ids(key))
        # Under the key's lock: the storage's expiry thread must not write back what is cleared.
        with self._storage.locks[full_key]:
            self._storage.clear(full_key)
        self._expires.pop(key, None)

    def sweep(self) -> None:
        now = self._clock()
        for key in [key for key, until in self._expires.items() if until <= now]:
            self.clear(key)

    def keys(self) -> set[str]:
        """Keys holding any state (recorded events or reservations in flight)."""
        return set(self._expires) | set(self._pending)


@dataclass
class LoginAttempt:
    """A reserved login attempt: call `finish` exactly once, whatever happens."""

    throttle: LoginThrottle
    account: str
    address: str
    done: bool = False

    def finish(self, *, success: bool) -> None:
        if self.done:
            return
        self.done = True
        self.throttle._finish(self, success)


class LoginThrottle:
    def __init__(
        self,
        *,
        per_pair: int,
        per_address: int,
        per_account: int,
        window_s: int,
        backoff_base_s: float,
        backoff_max_s: float,
        clock: Clock = time.monotonic,
    ) -> None:
        self._storage = storage = MemoryStorage()
        self.pair = WindowCounter(storage, "login-pair", per_pair, window_s, clock)
        self.address = WindowCounter(storage, "login-address", per_address, window_s, clock)
        # Counts every failure (well past the allowance) so the delay can keep growing to its cap.
        self.account = WindowCounter(storage, "login-account", per_account + 64, window_s, clock)
        self.account_allowance = per_account
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self._clock = clock
        self._not_before: dict[str, float] = {}  # account -> earliest start of its next attempt
        self._sweep_every = max(1.0, min(window_s, 60) / 2)
        self._next_sweep = clock() + self._sweep_every

    @staticmethod
    def _pair_key(account: str, address: str) -> str:
        return f"{_escape(account)}/{_escape(address)}"

    def delay(self, excess: int) -> float:
        """The wait before attempt number `excess` past the account's free allowance (1, 2, ...)."""
        return min(self.backoff_max_s, self.backoff_base_s * 2 ** min(excess - 1, 62))

    def reserve(self, account: str, address: str) -> LoginAttempt:
        """Admit one attempt or raise Throttled. Synchronous: call it before any await."""
        now = self._clock()
        if now >= self._next_sweep:
            self.sweep()
        pair = self._pair_key(account, address)
        waits: list[float] = []
        settling = True
        for counter, key in ((self.pair, pair), (self.address, address)):
            if not counter.allows(key):
                waits.append(counter.retry_after(key))
                settling = settling and counter.recorded(key) < counter.limit
        excess = self.account.count(account) - self.account_allowance + 1
        if excess > 0 and (not_before := self._not_before.get(account, 0.0)) > now:
            waits.append(not_before - now)
            settling = False
        if waits:
            raise Throttled(max(waits), settling=settling)
        self.pair.reserve(pair)
        self.address.reserve(address)
        self.account.reserve(account)
        if excess > 0:
            # Counted as the failure it will most likely be; a success clears it.
            self._not_before[account] = now + self.delay(excess)
        return LoginAttempt(self, account, address)

    async def admit(self, account: str, address: str, *, patience_s: float) -> LoginAttempt:
        """`reserve`, waiting up to `patience_s` while only attempts in flight stand in the way."""
        deadline = time.monotonic() + patience_s
        while True:
            try:
                return self.reserve(account, address)
            except Throttled as exc:
                if not exc.settling or time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(_SETTLE_POLL_S)

    def _finish(self, attempt: LoginAttempt, success: bool) -> None:
        pair = self._pair_key(attempt.account, attempt.address)
        self.pair.release(pair)
        self.address.release(attempt.address)
        self.account.release(attempt.account)
        if success:
            self.pair.clear(pair)
            self.account.clear(attempt.account)
            self._not_before.pop(attempt.account, None)
        else:
            self.pair.record(pair)
            self.address.record(attempt.address)
            self.account.record(attempt.account)

    def sweep(self) -> None:
        """Forget every key whose failures have all left the window."""
        now = self._clock()
        self._next_sweep = now + self._sweep_every
        for counter in (self.pair, self.address, self.account):
            counter.sweep()
        for account in [a for a, until in self._not_before.items() if until <= now]:
            del self._not_before[account]

    def size(self) -> int:
        """How many keys hold state, here and in the `limits` storage (0 when all is forgotten)."""
        counters = (self.pair, self.address, self.account)
        return len(self._storage.events) + sum(len(c.keys()) for c in counters) + len(self._not_before)


class RegistrationThrottle:
    """Accounts created per address within a moving window."""

    def __init__(self, *, per_address: int, window_s: int, clock: Clock = time.monotonic) -> None:
        self._storage = MemoryStorage()
        self.counter = WindowCounter(self._storage, "register-address", per_address, window_s, clock)
        self._clock = clock
        self._sweep_every = max(1.0, min(window_s, 60) / 2)
        self._next_sweep = clock() + self._sweep_every

    def take(self, address: str) -> None:
        """Count one registration from `address`, or raise Throttled. Synchronous."""
        if self._clock() >= self._next_sweep:
            self._next_sweep = self._clock() + self._sweep_every
            self.counter.sweep()
        self.counter.take(address)

    def size(self) -> int:
        return len(self._storage.events) + len(self.counter.keys())
