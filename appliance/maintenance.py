"""The periodic maintenance tasks the embedded scheduler runs."""

from __future__ import annotations

from aiohttp import web

from appliance.http.keys import DB
from appliance.scheduler import periodic
from appliance.store import sessions as session_store


@periodic("purge_expired_sessions", every_s=3600)
async def purge_expired_sessions(app: web.Application) -> int:
    return await session_store.purge_expired_sessions(app[DB])
