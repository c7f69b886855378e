"""Login throttling under attack (issue 9, finding 9): concurrent guesses, lockouts, memory.

Throttles count per (account, address) pair and per address, and slow an account down for all
addresses only with growing, capped delays. Other client addresses come from the loopback /8
(`server.client(local_address=...)`), so the server sees the peers a classroom LAN would.
"""

from __future__ import annotations

import asyncio

import pytest

from appliance.app_keys import ACCOUNTS
from appliance.throttle import LoginThrottle, Throttled
from tests.conftest import DEFAULT_PASSWORD, LiveServer


def _throttle(server: LiveServer) -> LoginThrottle:
    return server.app[ACCOUNTS].login_throttle


def _assert_throttled(reply, *, at_most: float) -> int:
    assert reply.status == 429, reply
    assert reply.error_code == "too_many_attempts"
    retry_after = int(reply.headers["Retry-After"])
    assert 1 <= retry_after <= at_most, retry_after
    return retry_after


async def test_concurrent_guesses_get_no_more_password_checks_than_the_limit(server_factory) -> None:
    """The review's attack: 60 guesses at once got 22 password checks against a limit of 5."""
    server = await server_factory()
    limit = server.settings.login_max_failures_per_account_address
    victim = await server.make_user("teacher")
    attacker = server.client()
    replies = await asyncio.gather(*(attacker.login(victim.username, f"guess-{i:03d}") for i in range(60)))
    checked = [reply for reply in replies if reply.status == 401]  # each 401 is one password check
    refused = [reply for reply in replies if reply.status != 401]
    assert len(checked) <= limit, f"{len(checked)} password checks for a limit of {limit}"
    for reply in refused:
        _assert_throttled(reply, at_most=server.settings.login_failure_window_s)


async def test_concurrent_guesses_from_many_addresses_are_bounded_per_account(server_factory) -> None:
    server = await server_factory(
        login_max_failures_per_account_address=5,
        login_max_failures_per_account=10,
        login_backoff_base_s=60,
        login_backoff_max_s=60,
    )
    victim = await server.make_user("teacher")
    clients = [server.client(local_address=f"127.0.0.{20 + n}") for n in range(8)]
    replies = await asyncio.gather(
        *(client.login(victim.username, f"guess-{n}-{i}") for n, client in enumerate(clients) for i in range(5))
    )
    checked = sum(reply.status == 401 for reply in replies)
    # The free allowance, then one attempt that starts the delay; everything else waits for it.
    assert checked <= server.settings.login_max_failures_per_account + 1, checked
    for reply in replies:
        if reply.status != 401:
            _assert_throttled(reply, at_most=60)


async def test_a_student_cannot_lock_the_teacher_out(server_factory) -> None:
    """Bad logins from one machine must not stop the right password typed on another."""
    server = await server_factory()
    teacher = await server.make_user("teacher")
    student_pc = server.client(local_address="127.0.0.2")
    for _ in range(server.settings.login_max_failures_per_account_address):
        assert (await student_pc.login(teacher.username, "let-me-in-please")).status == 401
    for _ in range(10):  # the attacker keeps going (and is refused without a password check)
        _assert_throttled(
            await student_pc.login(teacher.username, "let-me-in-please"),
            at_most=server.settings.login_failure_window_s,
        )
    # Even the right password waits on the attacker's machine ...
    _assert_throttled(
        await student_pc.login(teacher.username, DEFAULT_PASSWORD), at_most=server.settings.login_failure_window_s
    )
    # ... but the teacher at their own desk logs in at once.
    teacher_pc = server.client(local_address="127.0.0.3")
    reply = await teacher_pc.login(teacher.username, DEFAULT_PASSWORD)
    assert reply.status == 200, reply


async def test_account_delays_grow_and_are_never_a_long_lock(server_factory) -> None:
    """Guesses spread over many addresses slow the account down: doubling delays, capped."""
    server = await server_factory(
        login_max_failures_per_account_address=2,
        login_max_failures_per_account=4,
        login_backoff_base_s=1,
        login_backoff_max_s=2,
    )
    teacher = await server.make_user("teacher")
    hosts = iter(range(30, 60))

    def machine():
        return server.client(local_address=f"127.0.0.{next(hosts)}")

    for _ in range(2):  # the free allowance, two guesses each from two machines
        attacker = machine()
        for _ in range(2):
            assert (await attacker.login(teacher.username, "guess-guess")).status == 401
    assert (await machine().login(teacher.username, "guess-guess")).status == 401  # starts a 1 s delay
    assert _assert_throttled(await machine().login(teacher.username, "guess-guess"), at_most=1) == 1
    await asyncio.sleep(1.05)
    assert (await machine().login(teacher.username, "guess-guess")).status == 401  # starts a 2 s delay
    assert _assert_throttled(await machine().login(teacher.username, DEFAULT_PASSWORD), at_most=2) == 2
    await asyncio.sleep(2.05)
    # The delay has passed: the right password from any machine gets in, and clears the account.
    assert (await machine().login(teacher.username, DEFAULT_PASSWORD)).status == 200
    assert (await machine().login(teacher.username, "guess-guess")).status == 401


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_account_delays_double_up_to_the_cap() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(
        per_pair=100, per_address=100, per_account=2, window_s=300, backoff_base_s=1, backoff_max_s=8, clock=clock
    )
    for address in ("a", "b"):  # free
        throttle.reserve("ms-lee", address).finish(success=False)
    delays = []
    for n in range(6):
        throttle.reserve("ms-lee", f"guesser-{n}").finish(success=False)
        with pytest.raises(Throttled) as refused:
            throttle.reserve("ms-lee", "teacher-pc")
        delays.append(refused.value.retry_after)
        clock.now += refused.value.retry_after
    assert delays == [1, 2, 4, 8, 8, 8]
    throttle.reserve("ms-lee", "teacher-pc").finish(success=True)  # clears the account
    throttle.reserve("ms-lee", "guesser-0").finish(success=False)
    throttle.reserve("ms-lee", "guesser-0").finish(success=False)


async def test_throttle_state_is_forgotten_after_the_window(server_factory) -> None:
    """A key that failed once leaves memory once its window has passed (memory cannot grow forever)."""
    server = await server_factory(login_failure_window_s=1)
    throttle = _throttle(server)
    student = await server.make_user("student")
    sprayer = server.client(local_address="127.0.0.4")
    for n in range(5):  # unknown accounts too: each one is a key
        assert (await sprayer.login(f"nobody-{n}", "guess-guess")).status == 401
    assert throttle.size() > 0
    await asyncio.sleep(1.6)
    # Any later login attempt sweeps; a successful one leaves nothing behind of its own.
    assert (await server.client(local_address="127.0.0.5").login(student.username, DEFAULT_PASSWORD)).status == 200
    assert throttle.size() == 0
