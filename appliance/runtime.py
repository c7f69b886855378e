"""Building the aiohttp application: storage, services, middlewares and routes, in start-up order."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import aiohttp_jinja2
import jinja2
from aiohttp import WSCloseCode, web

from appliance import (
    backup_schedule,
    data_locks,
    identity,
    job_history,
    legal,
    maintenance,
    migrations,
    problem_sets_fetch,
    sync_outbox,
    tls,
)
from appliance.accounts import Accounts
from appliance.app_keys import (
    ACCOUNTS,
    BLOBS,
    DASHBOARD,
    DB,
    EVENTS,
    LIVE_RUNS,
    LIVE_SOCKETS,
    METRICS,
    MODES,
    PRESENCE,
    RUNNER,
    SETTINGS,
    SYNC_INTAKE,
    TLS,
    USER_RATES,
)
from appliance.blobs import BlobStore
from appliance.dashboard import Dashboard
from appliance.db import database_lock, open_database
from appliance.errors import Conflict
from appliance.http.middleware import auth_middleware, errors_middleware, security_headers_middleware
from appliance.http.static_files import StaticFiles
from appliance.http.views import setup_routes
from appliance.job_events import JobEvents
from appliance.live_runs import LiveRuns
from appliance.logs import ErrorTail
from appliance.metrics import Metrics
from appliance.presence import Presence
from appliance.rate_limits import UserRates
from appliance.runner_service import RunnerService, SandboxProvider
from appliance.scheduler import Scheduler, scheduler_ctx
from appliance.service_modes import ServiceModes
from appliance.settings import Settings
from appliance.sync_intake import SyncIntake
from ui import STATIC_DIR, TEMPLATE_DIR

log = logging.getLogger(__name__)


async def _storage(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    # Held while the server runs: a restore refuses to replace the data under it.
    server_lock = data_locks.hold_server(settings.data_dir)
    try:
        async with database_lock(settings.database_location, exclusive=False) as serving:
            if not serving:
                raise Conflict(
                    "restore_running", "a restore is replacing the data in the database; start the server after it"
                )
            async for _ in _serving(app, settings):
                yield
    finally:
        server_lock.release()


async def _serving(app: web.Application, settings: Settings) -> AsyncIterator[None]:
    with data_locks.maintenance(settings.data_dir, "migration", wait=True):
        applied = migrations.migrate(settings.database_location, settings.backup_dir)
    for migration in applied:
        log.info("applied migration %04d_%s", migration.version, migration.name)
    identity.ensure_keys(settings.data_dir)
    db = open_database(settings.database_location)
    await db.open()
    await legal.ensure_defaults(db)
    if abandoned := await job_history.abandon_running(db):
        log.warning("%d maintenance run(s) were cut short by the last stop", abandoned)
    blobs = BlobStore(settings.blob_dir)
    if removed := blobs.remove_partials():
        log.warning("removed %d partial blob(s) left by a crash", removed)
    app[DB] = db
    app[BLOBS] = blobs
    app[ACCOUNTS] = Accounts(db, settings)
    await app[MODES].load(db)
    errors = ErrorTail(settings.dashboard_error_lines)
    errors.install()
    app[DASHBOARD] = Dashboard(db, settings, app[MODES], errors)
    yield
    errors.remove()
    app[MODES].close()
    await db.close()


def _runner_ctx(sandbox: SandboxProvider) -> Callable[[web.Application], AsyncIterator[None]]:
    async def runner(app: web.Application) -> AsyncIterator[None]:
        service = RunnerService(app[DB], app[BLOBS], app[EVENTS], app[SETTINGS], sandbox)
        # Paused before a worker can claim: a queue paused before a restart stays paused.
        service.pause_queue(app[MODES].modes.queue_paused)
        await service.start()
        app[RUNNER] = service
        yield
        await service.stop()

    return runner


async def _end_dashboard_streams(app: web.Application) -> None:
    """Open dashboard streams end at once (their pages reconnect to the next server)."""
    if DASHBOARD in app:
        app[DASHBOARD].closing = True
        app[EVENTS].poke()


async def _close_live_sockets(app: web.Application) -> None:
    """Before the runner stops: each live run's page hears the server is going away, and its
    session stops the program and hands its sandbox back."""
    for socket in list(app[LIVE_SOCKETS]):
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"the server is shutting down")


def create_app(settings: Settings, *, sandbox: SandboxProvider | None = None) -> web.Application:
    """The appliance; the sandbox defaults to local Docker (unit tests may hand in another)."""
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[security_headers_middleware, errors_middleware, auth_middleware],
    )
    app[SETTINGS] = settings
    app[EVENTS] = JobEvents()
    app[USER_RATES] = UserRates(settings)
    app[LIVE_RUNS] = LiveRuns(settings, app[USER_RATES])
    app[LIVE_SOCKETS] = set()
    app[PRESENCE] = Presence()
    app[MODES] = ServiceModes()
    app[METRICS] = Metrics()
    app[SYNC_INTAKE] = SyncIntake(settings)
    app[TLS] = tls.load(settings)
    app.on_shutdown.append(_close_live_sockets)
    app.on_shutdown.append(_end_dashboard_streams)
    app.cleanup_ctx.append(_storage)
    if sandbox is None and settings.runner_mode == "remote":
        from appliance.remote_runner import RemoteSandbox, host_keys_of

        sandbox = RemoteSandbox(settings, host_keys_of(lambda: app[DB]))
    elif sandbox is None:
        from appliance.sandbox_wiring import DockerSandbox

        sandbox = DockerSandbox(settings)
    app.cleanup_ctx.append(_runner_ctx(sandbox))
    scheduler = Scheduler()
    maintenance.setup_periodic(scheduler)
    sync_outbox.setup_periodic(scheduler, settings)
    problem_sets_fetch.setup_periodic(scheduler, settings)
    backup_schedule.setup_periodic(scheduler, settings.backup_time, settings.backup_misfire_grace_h)
    app.cleanup_ctx.append(scheduler_ctx(scheduler))
    setup_routes(app)
    StaticFiles(STATIC_DIR).add_routes(app)
    # The pages' templates (appliance.http.views.ui_pages, .pages). Every value is HTML-escaped;
    # raw HTML goes in only as markupsafe.Markup. A value a template names but is not given fails.
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        default_helpers=False,
    )
    return app
