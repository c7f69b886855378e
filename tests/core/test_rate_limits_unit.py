"""The per-student windows keep nothing of a student once their events have left the window."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from appliance.errors import RateLimited
from appliance.rate_limits import UserRates
from appliance.settings import Settings


def test_windows_forget_students_once_their_minute_is_over(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(join_failure_window_s=120)
    now = [1000.0]
    rates = UserRates(settings, clock=lambda: now[0])
    for user_id in range(40):
        rates.admit("run", user_id, 5).commit()
        rates.admit("submission", user_id, None).commit()  # no limit: counted all the same
    rates.join_attempt(7).finish(found=False)
    rates.admit("run", 99, 1).commit()
    with pytest.raises(RateLimited):
        rates.admit("run", 99, 1)
    assert rates.size() > 0
    now[0] += 61  # the runs' minute is over; the wrong join code is still within its window
    rates.admit("run", 1000, 5).cancel()  # any request sweeps
    assert rates.size() == 2  # one join key, in the storage and in the counter
    now[0] += 60
    rates.admit("run", 1000, 5).cancel()
    assert rates.size() == 0
