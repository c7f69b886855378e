"""Which backups to keep: the newest of each of the last N days, weeks and months (local time),
and always the newest of all, so a policy of zeros never deletes the only backup."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from datetime import datetime


def to_keep(created: Sequence[datetime], *, daily: int, weekly: int, monthly: int) -> set[datetime]:
    newest_first = sorted(created, reverse=True)
    keep = set(newest_first[:1])
    buckets: list[tuple[Callable[[datetime], Hashable], int]] = [
        (lambda moment: moment.date(), daily),
        (lambda moment: moment.isocalendar()[:2], weekly),
        (lambda moment: (moment.year, moment.month), monthly),
    ]
    for bucket, count in buckets:
        seen: set[Hashable] = set()
        for moment in newest_first:
            key = bucket(moment.astimezone())
            if key in seen:
                continue
            if len(seen) >= count:
                break
            seen.add(key)
            keep.add(moment)
    return keep
