"""Typed application state keys (aiohttp AppKey): what `appliance.runtime` builds and starts, and
what the views, the health check and the scheduled tasks read, as typed objects."""

from __future__ import annotations

from aiohttp import web

from appliance.accounts import Accounts
from appliance.blobs import BlobStore
from appliance.dashboard import Dashboard
from appliance.db import Database
from appliance.job_events import JobEvents
from appliance.live_runs import LiveRuns
from appliance.metrics import Metrics
from appliance.presence import Presence
from appliance.rate_limits import UserRates
from appliance.runner_service import RunnerService
from appliance.service_modes import ServiceModes
from appliance.settings import Settings
from appliance.sync_intake import SyncIntake
from appliance.tls import Tls

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
ACCOUNTS = web.AppKey("accounts", Accounts)
BLOBS = web.AppKey("blobs", BlobStore)
EVENTS = web.AppKey("events", JobEvents)
# The runner, set once it has started: absent (`app.get(RUNNER)` is None) before that.
RUNNER = web.AppKey("runner", RunnerService)
LIVE_RUNS = web.AppKey("live_runs", LiveRuns)
# Per-student windows of runs, submissions and wrong join codes (in memory).
USER_RATES = web.AppKey("user_rates", UserRates)
# The open live-run sockets, closed when the server shuts down.
LIVE_SOCKETS = web.AppKey("live_sockets", set[web.WebSocketResponse])
# When each user was last seen (exam mode's live view), fed by the auth middleware.
PRESENCE = web.AppKey("presence", Presence)
# The admin's switches (queue paused, maintenance, verbose runner logging), loaded at start-up.
MODES = web.AppKey("modes", ServiceModes)
# The live dashboard (set once the database is open) and the Prometheus metrics of this app.
DASHBOARD = web.AppKey("dashboard", Dashboard)
METRICS = web.AppKey("metrics", Metrics)
# The certificate served when `tls` is on (None: plain HTTP), loaded and checked as the app is made.
TLS = web.AppKey("tls", Tls | None)
# The central instance's gate for pushed bundles: per-address window, one import at a time.
SYNC_INTAKE = web.AppKey("sync_intake", SyncIntake)
