"""Who was seen when: the auth middleware notes every authenticated request (page loads, API calls,
event streams), and an exam's live view calls a student online while seen within a window.

In memory on purpose: presence is a fact about the last minute, not worth a database write per
request, and a restart that forgets it is right within that minute anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Presence:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        # One float per account that made a request since start: bounded by the accounts.
        self._seen: dict[int, float] = {}

    def seen(self, user_id: int) -> None:
        self._seen[user_id] = self._clock()

    def last_seen(self, user_id: int) -> float | None:
        """Epoch seconds of the user's last request, None if not seen since the server started."""
        return self._seen.get(user_id)

    def online(self, user_id: int, window_s: float) -> bool:
        last = self._seen.get(user_id)
        return last is not None and self._clock() - last <= window_s
