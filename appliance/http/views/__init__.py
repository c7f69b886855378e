"""HTTP views: thin adapters from requests to domain calls.

Each module declares its routes in its own `routes` table; `setup_routes` adds them to the app,
module by module in the order listed here (the order aiohttp matches them in).
"""

from __future__ import annotations

from aiohttp import web

from appliance.http.middleware import NOT_FOUND_PAGE
from appliance.http.routing import add_routes
from appliance.http.views import (
    admin_accounts,
    admin_backups,
    admin_dashboard,
    assets,
    auth,
    central,
    classes,
    classroom,
    comments,
    desktop,
    drafts,
    exams,
    files,
    jobs,
    live,
    meta,
    metrics,
    overrides,
    pages,
    problem_sets,
    problems,
    retention,
    student_data,
    sync,
    ui_pages,
)

MODULES = (
    admin_accounts,
    admin_backups,
    admin_dashboard,
    files,
    assets,
    auth,
    central,
    classes,
    jobs,
    live,
    metrics,
    comments,
    classroom,
    desktop,
    exams,
    student_data,
    drafts,
    meta,
    overrides,
    pages,
    problem_sets,
    problems,
    retention,
    sync,
    ui_pages,
)


def setup_routes(app: web.Application) -> None:
    for module in MODULES:
        add_routes(app, module.routes)
    app[NOT_FOUND_PAGE] = ui_pages.not_found
