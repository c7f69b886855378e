"""Which runner host takes a job: the one holding its owner's warm sandbox when it has room, else
the least loaded host of the preferred region, else the least loaded host anywhere. A host that is
lost, stopped or whose engine is down takes nothing; a job never goes back to a host that failed
it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class HostLoad:
    name: str
    region: str
    slots: int
    placed: int  # jobs the server has on it now
    usable: bool  # heard from lately, running, engine up

    @property
    def free(self) -> int:
        return self.slots - self.placed


def choose(hosts: Iterable[HostLoad], *, sticky: str | None, region: str | None, exclude: frozenset[str]) -> str | None:
    """The host for the next job, or None when every usable host is full."""
    open_hosts = [host for host in hosts if host.usable and host.free > 0 and host.name not in exclude]
    for host in open_hosts:
        if host.name == sticky:
            return host.name
    in_region = [host for host in open_hosts if region is not None and host.region == region]
    for candidates in (in_region, open_hosts):
        if candidates:
            # Least loaded by share of its slots; the name breaks ties so the choice is repeatable.
            return min(candidates, key=lambda host: (host.placed / host.slots, host.name)).name
    return None


def free_slots(hosts: Iterable[HostLoad]) -> int:
    return sum(max(0, host.free) for host in hosts if host.usable)
