"""The periodic maintenance tasks the embedded scheduler runs."""

from __future__ import annotations

from aiohttp import web

from appliance import file_expiry, jobs
from appliance.http.keys import BLOBS, DB, SETTINGS
from appliance.scheduler import periodic
from appliance.store import sessions as session_store


@periodic("purge_expired_sessions", every_s=3600)
async def purge_expired_sessions(app: web.Application) -> int:
    return await session_store.purge_expired_sessions(app[DB])


@periodic("purge_expired_files", every_s=900)
async def purge_expired_files(app: web.Application) -> dict[str, int]:
    """Expired and deleted uploads no submission keeps, and the blobs only they used."""
    return await file_expiry.purge_expired_files(app[DB], app[BLOBS])


@periodic("purge_expired_outputs", every_s=3600)
async def purge_expired_outputs(app: web.Application) -> dict[str, int]:
    """Full outputs of jobs finished longer ago than `full_output_expiry_days`, and their blobs."""
    return await jobs.purge_expired_outputs(app[DB], app[BLOBS], app[SETTINGS].full_output_expiry_days)


@periodic("purge_orphan_blobs", every_s=6 * 3600)
async def purge_orphan_blobs(app: web.Application) -> int:
    """Blobs nothing references any more: left behind by deleted problems, jobs and accounts."""
    return await file_expiry.purge_orphan_blobs(app[DB], app[BLOBS])
