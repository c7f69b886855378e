"""Failed-login throttling per account and per address, with a sliding window kept in memory.

In memory on purpose: a restart forgiving recent failures is harmless, and this keeps a login
storm from becoming a write storm on the single SQLite writer.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable


class FailureThrottle:
    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _prune(self, key: str) -> deque[float]:
        entries = self._failures[key]
        horizon = self._clock() - self.window_s
        while entries and entries[0] <= horizon:
            entries.popleft()
        if not entries:
            del self._failures[key]
            return deque()
        return entries

    def retry_after(self, key: str) -> int:
        """Seconds until another attempt is allowed; 0 when allowed now."""
        entries = self._prune(key)
        if len(entries) < self.limit:
            return 0
        return int(entries[-self.limit] + self.window_s - self._clock()) + 1

    def fail(self, key: str) -> None:
        self._failures[key].append(self._clock())

    def reset(self, key: str) -> None:
        self._failures.pop(key, None)
