"""The classroom side's sync status, as the admin dashboard's Sync panel and `labrunner sync
--status` show it: who this appliance is (the id and key fingerprint a central instance registers),
where it pushes, how its last push went, and how many changes the central instance has not
acknowledged yet."""

from __future__ import annotations

from typing import Any

from appliance import appliance_id, identity, job_history, sync_outbox
from appliance.db import Database
from appliance.errors import Invalid
from appliance.settings import Settings
from appliance.store import sync as store


async def _last_push(db: Database) -> dict[str, Any] | None:
    run = await job_history.last_finished(db, sync_outbox.JOB_NAME)
    if run is None:
        return None
    error = run["detail"].get("error") or {}
    return {
        "at": run["finished_at"],
        "trigger": run["trigger"],
        "outcome": run["outcome"],
        "pushed": run["detail"].get("pushed"),
        "error_code": error.get("code"),
        "error_message": error.get("message"),
    }


async def status(db: Database, settings: Settings) -> dict[str, Any]:
    data_dir = settings.data_dir
    key = identity.public_key_of(data_dir)
    generation = identity.generation(data_dir)
    async with db.snapshot() as conn:
        counter = await store.watermark(conn)
    central = settings.sync_central_url or None
    acked: dict[str, int] | None = None
    ack_error = None
    if central is not None:
        try:
            ack = sync_outbox.acknowledged(data_dir, central)
        except Invalid as error:
            ack, ack_error = None, error.code
        if ack is not None:
            acked = {"generation": ack.generation, "watermark": ack.watermark}
    # Counted in change-log steps since the acknowledged mark; with none in this generation, the
    # next push is a full bundle of everything.
    current = acked is not None and acked["generation"] == generation
    return {
        # Not made here: a fresh data folder still takes over a restored backup's id (identity.ensure_keys).
        "appliance_id": appliance_id.read(data_dir),
        "fingerprint": identity.fingerprint(key),
        "public_key": identity.public_key_text(key),
        "central_url": central,
        "every_s": settings.sync_every_s,
        "last_push": await _last_push(db),
        "generation": generation,
        "counter": counter,
        "acknowledged": acked,
        "ack_error": ack_error,
        "unacknowledged": counter - acked["watermark"] if current and acked is not None else None,
    }


def describe(facts: dict[str, Any]) -> list[str]:
    """The status as lines of text, for the command line."""
    last = facts["last_push"]
    if last is None:
        pushed = "never"
    elif last["outcome"] == "ok":
        pushed = f"ok at {last['at']} ({last['trigger']}{'' if last['pushed'] else ', nothing new'})"
    else:
        pushed = f"failed at {last['at']} ({last['trigger']}): {last['error_code']}: {last['error_message']}"
    if facts["central_url"] is None:
        pending = "no central instance set"
    elif facts["ack_error"]:
        pending = f"the acknowledgement file is unreadable ({facts['ack_error']}); the next push sends everything"
    elif facts["unacknowledged"] is None:
        pending = f"nothing acknowledged yet: the next push sends everything (change {facts['counter']})"
    else:
        mark, now = facts["acknowledged"]["watermark"], facts["counter"]
        pending = f"{facts['unacknowledged']} changes not yet acknowledged (acknowledged {mark}, now {now})"
    return [
        f"appliance id: {facts['appliance_id'] or 'not made yet (made at the first export or backup)'}",
        f"fingerprint:  {facts['fingerprint']}",
        f"central:      {facts['central_url'] or 'not configured (set sync_central_url)'}",
        f"last push:    {pushed}",
        f"changes:      {pending}",
    ]
