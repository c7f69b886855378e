"""The retention audit log over HTTP: admins only, newest first, as the OpenAPI document says."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from appliance import retention
from appliance.app_keys import BLOBS, DB, SETTINGS
from tests.conftest import ApiClient, LiveServer
from tests.core.test_openapi import Walk


async def test_only_admins_read_what_the_purges_removed(
    server: LiveServer, make_user: Callable[..., Awaitable[ApiClient]], anon: ApiClient
) -> None:
    app = server.app
    await retention.purge(app[DB], app[BLOBS], app[SETTINGS])
    admin = await make_user("admin")
    walk = Walk((await anon.get("/api/openapi.json")).json)
    reply = await walk.call(admin, "GET", "/api/admin/purges")
    assert reply.status == 200, reply
    assert walk.problems == [], walk.problems
    purges = reply.json["purges"]
    assert {(p["policy"], p["what"]) for p in purges} >= {
        ("minor", "runs"),
        ("adult", "outputs"),
        ("everyone", "blobs"),
    }
    assert [p["id"] for p in purges] == sorted((p["id"] for p in purges), reverse=True)
    assert len((await admin.get("/api/admin/purges?limit=2")).json["purges"]) == 2
    for bad in ("0", "abc", "1001", "²"):
        refused = await admin.get(f"/api/admin/purges?limit={bad}")
        assert (refused.status, refused.error_code) == (400, "invalid_limit"), refused

    for role in ("teacher", "student"):
        assert (await (await make_user(role)).get("/api/admin/purges")).status == 403
    assert (await anon.get("/api/admin/purges")).status == 401
