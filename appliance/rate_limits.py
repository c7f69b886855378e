"""Per-student rate limits: runs and submissions a minute, and wrong join codes.

Moving windows kept in memory with the `limits` library (through `throttle.WindowCounter`), on
purpose: a restart forgetting the last minute is harmless; counting in SQLite would add a write to
the single writer for every run, at exactly the moment a whole class presses Run; and one process
serves the appliance, so no other process keeps counts that could disagree.

Keyed by user id, never by address: a class of 30 comes from one school address (or one NAT
address in the room), so an address limit would block the class for one student's burst. Only the
unauthenticated routes, login and registration, are limited per address (`appliance.throttle`).

A request is *admitted* synchronously (no await between the check and the reservation), so
concurrent requests cannot all pass; its reservation counts while it is in flight and becomes an
event only once its job is queued. A request refused for any reason, or answered with an earlier
identical job, costs nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from limits.storage import MemoryStorage

from appliance.errors import RateLimited
from appliance.settings import Settings
from appliance.throttle import Clock, Throttled, WindowCounter

Kind = Literal["run", "submission"]
# The most events a minute any limit may allow (settings and overrides above it act as it):
# the window keeps one timestamp per event, so this bounds its memory per student.
MAX_PER_MINUTE = 10_000
_WINDOW_S = 60
_VERBS = {"run": "start", "submission": "make"}
_NOUNS = {"run": "run", "submission": "submission"}


@dataclass
class Admission:
    """One admitted request: `commit` once its job is queued, else `cancel`; the second call is a no-op."""

    counter: WindowCounter
    key: str
    done: bool = False

    def commit(self) -> None:
        self._finish(record=True)

    def cancel(self) -> None:
        self._finish(record=False)

    def _finish(self, *, record: bool) -> None:
        if self.done:
            return
        self.done = True
        self.counter.release(self.key)
        if record:
            self.counter.record(self.key)


class AdmissionSlot:
    """The admission a transaction takes (`take`, where its check belongs) and settles once the
    transaction is over: an event if it committed, dropped if anything refused the job. Entered
    before the transaction (`async with slot, db.transaction()`), so it is left after it."""

    def __init__(self, admit: Callable[[], Admission] | None) -> None:
        self._admit = admit
        self._admission: Admission | None = None

    def take(self) -> None:
        if self._admit is not None:
            self._admission = self._admit()

    async def __aenter__(self) -> AdmissionSlot:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if self._admission is None:
            return
        if kind is None:
            self._admission.commit()
        else:
            self._admission.cancel()


@dataclass
class JoinAttempt:
    """A reserved join-code attempt: `finish` once, with whether the code was right."""

    counter: WindowCounter
    key: str
    done: bool = False

    def finish(self, *, found: bool) -> None:
        if self.done:
            return
        self.done = True
        self.counter.release(self.key)
        if not found:
            self.counter.record(self.key)


class UserRates:
    """The appliance's per-student windows (one instance per app)."""

    def __init__(self, settings: Settings, clock: Clock = time.monotonic) -> None:
        self._storage = storage = MemoryStorage()
        self._counters: dict[Kind, WindowCounter] = {
            "run": WindowCounter(storage, "user-runs", MAX_PER_MINUTE, _WINDOW_S, clock),
            "submission": WindowCounter(storage, "user-submissions", MAX_PER_MINUTE, _WINDOW_S, clock),
        }
        self._join = WindowCounter(
            storage, "join-failures", settings.join_max_failures_per_user, settings.join_failure_window_s, clock
        )
        self._clock = clock
        self._sweep_every = _WINDOW_S / 2
        self._next_sweep = clock() + self._sweep_every

    def admit(self, kind: Kind, user_id: int, limit: int | None) -> Admission:
        """Admit one run or submission of `user_id` under `limit` a minute (None: no limit), or raise
        RateLimited (429 rate_limited with Retry-After). Synchronous: call it with no await before
        the job is queued or refused."""
        self._sweep()
        counter, key = self._counters[kind], str(user_id)
        if limit is None:
            # Counted all the same: when an override ends mid-lesson, the minute's runs still count.
            counter.reserve(key)
            return Admission(counter, key)
        try:
            counter.reserve_within(key, limit)
        except Throttled as exc:
            raise RateLimited(
                "rate_limited",
                f"you may {_VERBS[kind]} {limit} {_NOUNS[kind]}{'' if limit == 1 else 's'} a minute; try again in"
                f" {exc.retry_after} s",
                retry_after=exc.retry_after,
            ) from None
        return Admission(counter, key)

    def join_attempt(self, user_id: int) -> JoinAttempt:
        """Reserve one join-code attempt, or raise RateLimited once the account has tried too many
        wrong codes (code guessing). Per account: a class joins at once from one address."""
        self._sweep()
        key = str(user_id)
        if not self._join.allows(key):
            wait = Throttled(self._join.retry_after(key)).retry_after
            raise RateLimited(
                "too_many_join_attempts",
                f"too many wrong join codes; check the code with your teacher and try again in {wait} s",
                retry_after=wait,
            )
        self._join.reserve(key)
        return JoinAttempt(self._join, key)

    def _sweep(self) -> None:
        now = self._clock()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self._sweep_every
        for counter in (*self._counters.values(), self._join):
            counter.sweep()

    def size(self) -> int:
        """Keys holding state here and in the `limits` storage (0 when all is forgotten)."""
        counters = (*self._counters.values(), self._join)
        return len(self._storage.events) + sum(len(c.keys()) for c in counters)
