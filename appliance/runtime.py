"""Building the aiohttp application: storage, services, middlewares and routes, in start-up order."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from appliance import (
    legal,
    maintenance,  # noqa: F401 - registers the periodic tasks
    migrations,
)
from appliance.accounts import Accounts
from appliance.blobs import BlobStore
from appliance.db import Database
from appliance.http.keys import ACCOUNTS, BLOBS, DB, EVENTS, SERVICES, SETTINGS
from appliance.http.middleware import auth_middleware, errors_middleware, security_headers_middleware
from appliance.http.routing import add_routes, import_views
from appliance.job_events import JobEvents
from appliance.runner_service import ExecutorFactory, ImageCheck, RunnerService
from appliance.scheduler import scheduler_ctx
from appliance.settings import Settings
from ui import STATIC_DIR

log = logging.getLogger(__name__)


async def _storage(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    applied = migrations.migrate(settings.db_path, settings.backup_dir)
    for migration in applied:
        log.info("applied migration %04d_%s", migration.version, migration.name)
    db = Database(settings.db_path)
    await db.open()
    await legal.ensure_defaults(db)
    blobs = BlobStore(settings.blob_dir)
    if removed := blobs.remove_partials():
        log.warning("removed %d partial blob(s) left by a crash", removed)
    app[DB] = db
    app[BLOBS] = blobs
    app[ACCOUNTS] = Accounts(db, settings)
    yield
    await db.close()


def _runner_ctx(executor_factory: ExecutorFactory, image_check: ImageCheck):  # type: ignore[no-untyped-def]
    async def runner(app: web.Application) -> AsyncIterator[None]:
        service = RunnerService(app[DB], app[BLOBS], app[EVENTS], app[SETTINGS], executor_factory, image_check)
        await service.start()
        app[SERVICES]["runner"] = service
        yield
        app[SERVICES].pop("runner", None)
        await service.stop()

    return runner


def create_app(
    settings: Settings,
    *,
    executor_factory: ExecutorFactory | None = None,
    image_check: ImageCheck | None = None,
) -> web.Application:
    """The appliance; the executor defaults to the Docker sandbox (unit tests may hand in another)."""
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[errors_middleware, security_headers_middleware, auth_middleware],
    )
    app[SETTINGS] = settings
    app[SERVICES] = {}
    app[EVENTS] = JobEvents()
    app.cleanup_ctx.append(_storage)
    if executor_factory is None or image_check is None:
        from appliance.sandbox_wiring import docker_executor_factory, docker_image_check

        executor_factory = executor_factory or docker_executor_factory(settings)
        image_check = image_check or docker_image_check(settings)
    app.cleanup_ctx.append(_runner_ctx(executor_factory, image_check))
    app.cleanup_ctx.append(scheduler_ctx)
    import_views()
    add_routes(app)
    app.router.add_static("/static/", STATIC_DIR, append_version=False)
    return app
