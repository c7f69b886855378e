"""Typed application state keys (aiohttp AppKey), so views get typed objects."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from appliance.accounts import Accounts
from appliance.blobs import BlobStore
from appliance.db import Database
from appliance.job_events import JobEvents
from appliance.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
ACCOUNTS = web.AppKey("accounts", Accounts)
BLOBS = web.AppKey("blobs", BlobStore)
EVENTS = web.AppKey("events", JobEvents)
# Long-lived services started with the app (the runner); looked up by name so tests can swap them.
SERVICES = web.AppKey("services", dict[str, Any])
