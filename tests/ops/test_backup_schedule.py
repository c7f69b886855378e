"""The daily backup's schedule with a fake clock: a slot missed while the machine was off runs once
at start-up; the keep policy; and what admins see: the job history, /healthz, the API document."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from appliance import backup_schedule, migrations, scheduler
from appliance.backup_rotation import to_keep
from appliance.settings import Settings
from tests.conftest import LiveServer
from tests.core.test_openapi import Walk
from tests.ops.conftest import picture_sandbox

NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
GRACE = timedelta(hours=20)


@pytest.mark.parametrize(
    ("last_started", "installed", "expected"),
    [
        (None, NOW - timedelta(days=30), datetime(2026, 3, 10, 3, 0, tzinfo=UTC)),  # never backed up
        (NOW - timedelta(days=2), NOW - timedelta(days=30), datetime(2026, 3, 10, 3, 0, tzinfo=UTC)),  # was off
        (datetime(2026, 3, 10, 3, 0, 5, tzinfo=UTC), NOW - timedelta(days=30), None),  # it ran at its slot
        (None, datetime(2026, 3, 10, 8, 0, tzinfo=UTC), None),  # installed after the slot
    ],
)
def test_a_missed_slot_is_caught_up_once(
    last_started: datetime | None, installed: datetime, expected: datetime | None
) -> None:
    assert backup_schedule.missed_slot(NOW, "03:00", GRACE, last_started=last_started, installed=installed) == expected


def test_a_slot_past_its_grace_is_not_caught_up() -> None:
    # At 23:30 the 03:00 slot is 20.5 hours old.
    late = NOW.replace(hour=23)
    assert (
        backup_schedule.missed_slot(late, "03:00", GRACE, last_started=None, installed=NOW - timedelta(days=9)) is None
    )
    # Before today's slot, the last one was yesterday's.
    early = NOW.replace(hour=1)
    assert backup_schedule.last_slot(early, "03:00") == datetime(2026, 3, 9, 3, 0, tzinfo=UTC)


def test_the_keep_policy_keeps_the_newest_of_each_day_week_and_month() -> None:
    start = datetime(2025, 1, 1, 12, tzinfo=UTC)
    # Two backups a day for 400 days.
    made = [start + timedelta(hours=12 * i) for i in range(800)]
    kept = to_keep(made, daily=7, weekly=4, monthly=12)
    newest = max(made)
    assert newest in kept
    days = {m.astimezone().date() for m in kept}
    assert len({m.astimezone().date() for m in kept if newest - m < timedelta(days=7)}) == 7
    # 7 daily, then up to 4 weekly and 12 monthly picks that overlap them: never more than 23 in all.
    assert len(kept) <= 23 and len(days) == len(kept)
    oldest_kept = min(kept)
    assert newest - oldest_kept > timedelta(days=300)
    assert to_keep(made, daily=0, weekly=0, monthly=0) == {newest}


async def test_a_machine_that_was_off_backs_up_once_at_start_up(
    settings_factory: Callable[..., Settings],
    server_factory: Callable[..., Awaitable[LiveServer]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scheduler, "CATCH_UP_DELAY_S", 0.05)
    slot = (datetime.now().astimezone() - timedelta(hours=1)).strftime("%H:%M")
    settings = settings_factory(backup_time=slot)
    # Installed long ago; never backed up.
    migrations.migrate(settings.db_path, settings.backup_dir)
    conn = sqlite3.connect(settings.db_path)
    conn.execute("UPDATE schema_migrations SET applied_at = '2000-01-01T00:00:00Z'")
    conn.commit()
    conn.close()

    async def runs(server: LiveServer) -> list[dict[str, object]]:
        admin = await server.make_user("admin")
        for _ in range(200):
            history = (await admin.get("/api/admin/jobs/history?job=backup")).json["runs"]
            if history and history[0]["outcome"] != "running":
                return list(history)
            await asyncio.sleep(0.05)
        return list(history)

    first = await server_factory(
        data_dir=settings.data_dir, backup_time=slot, app_options={"sandbox": picture_sandbox()}
    )
    history = await runs(first)
    assert [(r["trigger"], r["outcome"]) for r in history] == [("catch_up", "ok")], history
    await first.close()
    # Started again: the slot is not missed any more.
    again = await server_factory(
        data_dir=settings.data_dir, backup_time=slot, app_options={"sandbox": picture_sandbox()}
    )
    await asyncio.sleep(0.3)
    assert len(await runs(again)) == 1


async def test_admins_see_the_history_and_the_last_backup(
    server_factory: Callable[..., Awaitable[LiveServer]], fast_passwords: None
) -> None:
    server = await server_factory(app_options={"sandbox": picture_sandbox()}, backup_time="")
    admin, teacher = await server.make_user("admin"), await server.make_user("teacher")
    walk = Walk((await admin.get("/api/openapi.json")).json)
    health = await walk.call(admin, "GET", "/healthz")
    assert health.json["backup"] is None
    made = await walk.call(admin, "POST", "/api/admin/backups")
    assert made.status == 201, made
    health = await walk.call(admin, "GET", "/healthz")
    assert (
        health.json["backup"]["outcome"] == "ok" and health.json["backup"]["detail"]["archive"] == made.json["archive"]
    )
    assert "backup" not in (await walk.call(teacher, "GET", "/healthz")).json
    assert "backup" not in (await walk.call(server.client(), "GET", "/healthz")).json
    history = await walk.call(admin, "GET", "/api/admin/jobs/history?limit=5")
    run = history.json["runs"][0]
    assert (run["job"], run["trigger"], run["outcome"], run["bytes"]) == ("backup", "admin", "ok", made.json["bytes"])
    assert run["detail"]["tables"]["users"] == 2 and run["finished_at"] >= run["started_at"]
    assert (await walk.call(admin, "GET", "/api/admin/jobs/history?limit=0")).error_code == "invalid_limit"
    for method, path in (("GET", "/api/admin/jobs/history"), ("POST", "/api/admin/backups")):
        assert (await walk.call(teacher, method, path)).status == 403
    assert walk.problems == [], walk.problems
