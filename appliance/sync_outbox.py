"""The classroom's outbox: pushes what changed since the central instance's last acknowledgement
(`POST /api/sync/bundles` on `sync_central_url`), on the embedded scheduler and by `labrunner sync --now`.

The acknowledged mark is kept in the data folder (`sync-acked.json`), beside the generation file, not
in the database: a restore brings back an old database, and with it an old mark that would claim
acknowledgements the central instance later took for other changes; the generation bump then makes
the next push a full one anyway. The mark advances only when the central instance answers 2xx with
exactly the bundle's (generation, watermark); a lost link, a timeout or a 5xx leaves it where it was,
so the next attempt resends from there. A resent bundle the central instance already imported is
recognised by its SHA-256 there and writes nothing: every change lands once. Failures back off
(1 s doubling to `sync_backoff_max_s`, with jitter so a room of appliances does not retry in step).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from appliance import central_client, identity, sync_export, sync_intake
from appliance.app_keys import BLOBS, DB, SETTINGS
from appliance.blobs import BlobStore
from appliance.db import Database
from appliance.errors import Invalid, Unavailable
from appliance.scheduler import Scheduler
from appliance.settings import Settings

ACK_FILE = "sync-acked.json"
PUSH_PATH = "/api/sync/bundles"
FIRST_RETRY_S = 1.0
JOB_NAME = "sync_push"


@dataclass(frozen=True)
class Ack:
    central: str
    generation: int
    watermark: int


def acknowledged(data_dir: Path, central: str) -> Ack | None:
    """The last mark `central` acknowledged; None before the first, or when the setting names
    another central instance (which then gets a full bundle)."""
    path = data_dir / ACK_FILE
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        ack = Ack(str(saved["central"]), int(saved["generation"]), int(saved["watermark"]))
    except (ValueError, KeyError, TypeError):
        raise Invalid("sync_ack_unreadable", f"{path} is damaged; delete it to push everything again") from None
    return ack if ack.central == central else None


def _record(data_dir: Path, ack: Ack | None) -> None:
    path = data_dir / ACK_FILE
    if ack is None:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_name(ACK_FILE + ".tmp")
    tmp.write_text(json.dumps(ack.__dict__), encoding="utf-8")
    os.replace(tmp, path)


async def _post(settings: Settings, data: bytes, me: identity.Identity) -> dict[str, Any]:
    central = settings.sync_central_url
    # Signed headers first, so the central instance refuses anyone else before it reads the body.
    headers = {"Content-Type": "application/zip", **sync_intake.push_headers(me.private_key, me.public_key_text, data)}
    try:
        async with (
            central_client.session(settings) as session,
            session.post(central.rstrip("/") + PUSH_PATH, data=data, headers=headers) as response,
        ):
            status = response.status
            # Bounded: a man in the middle on a plain-HTTP link could otherwise stream until memory runs out.
            chunks, size = [], 0
            async for chunk in response.content.iter_chunked(1 << 16):
                size += len(chunk)
                if size > settings.sync_answer_max_bytes:
                    raise Unavailable(
                        "sync_answer_too_large",
                        f"the central instance {central} answered with more than sync_answer_max_bytes"
                        f" ({settings.sync_answer_max_bytes} bytes); nothing was acknowledged",
                    )
                chunks.append(chunk)
            body = b"".join(chunks)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise central_client.unreachable(exc, central) from None
    if 200 <= status < 300:
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if isinstance(answer, dict):
            return answer
    raise central_client.answer_error(status, body, central, "the bundle")


async def push(db: Database, blobs: BlobStore, settings: Settings) -> dict[str, Any]:
    """One push of what changed since the last acknowledgement; its outcome, for the job history."""
    central = settings.sync_central_url
    if not central:
        raise Invalid("sync_not_configured", "no central instance is set: set sync_central_url first")
    me = identity.ensure(settings.data_dir)
    ack = acknowledged(settings.data_dir, central)
    since = ack.watermark if ack is not None and ack.generation == me.generation else 0
    exported = await sync_export.export(db, blobs, settings, me, since)
    outcome: dict[str, Any] = {
        "central": central,
        "generation": exported.generation,
        "since": since,
        "watermark": exported.watermark,
    }
    if ack is not None and (ack.generation, ack.watermark) == (exported.generation, exported.watermark):
        return {**outcome, "pushed": False}
    try:
        answer = await _post(settings, exported.data, me)
    except central_client.SyncRefused as refused:
        if refused.code == "bundle_gap":
            # The central instance lacks what came before (its data was restored, or this appliance
            # registered anew there): the next push sends everything.
            _record(settings.data_dir, None)
        raise
    if (answer.get("generation"), answer.get("watermark")) != (exported.generation, exported.watermark):
        raise Unavailable(
            "sync_bad_ack",
            f"the central instance acknowledged generation {answer.get('generation')} watermark"
            f" {answer.get('watermark')}, not the bundle's {exported.generation}/{exported.watermark}",
        )
    digest = hashlib.sha256(exported.data).hexdigest()
    if settings.sync_central_key and not sync_intake.ack_signed_by(
        settings.sync_central_key, answer.get("signature"), exported.generation, exported.watermark, digest
    ):
        raise Unavailable(
            "sync_ack_unverified",
            f"the answer from {central} is not signed with sync_central_key: it may not come from the central"
            " instance (someone between the two?), so the changes are sent again next time",
        )
    _record(settings.data_dir, Ack(central, exported.generation, exported.watermark))
    return {**outcome, "pushed": True, "bytes": len(exported.data), "already": bool(answer.get("already"))}


class Backoff:
    """The wait before the next push: the interval after a success, after failures an exponential
    retry from FIRST_RETRY_S up to `max_s`, each wait drawn between half and all of it (jitter)."""

    def __init__(self, every_s: float, max_s: float, draw: Callable[[], float] = random.random) -> None:
        self.every_s = every_s
        self.max_s = max_s
        self.failures = 0
        self._draw = draw

    def delay(self) -> float:
        if self.failures == 0:
            return self.every_s
        ceiling = min(self.max_s, FIRST_RETRY_S * 2 ** min(self.failures - 1, 30))
        return ceiling * (0.5 + self._draw() / 2)


Attempt = Callable[[Database, BlobStore, Settings], Awaitable[dict[str, Any]]]


def add_central_job(scheduler: Scheduler, settings: Settings, name: str, attempt: Attempt) -> None:
    """Adds `attempt` (one exchange with the central instance) as the adaptive job `name`: every
    sync_every_s, after failures backing off as `Backoff` says. Nothing when no central is set."""
    if not settings.sync_central_url:
        return
    backoff = Backoff(settings.sync_every_s, settings.sync_backoff_max_s)

    async def task(app: web.Application) -> dict[str, Any]:
        try:
            result = await attempt(app[DB], app[BLOBS], app[SETTINGS])
        except Exception:  # any failed attempt backs off, whatever failed
            backoff.failures += 1
            raise
        backoff.failures = 0
        return result

    scheduler.add_adaptive(name, task, first_in_s=settings.sync_every_s, next_in=backoff.delay)


def setup_periodic(scheduler: Scheduler, settings: Settings) -> None:
    add_central_job(scheduler, settings, JOB_NAME, push)
