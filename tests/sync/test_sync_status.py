"""The classroom's sync status: `labrunner sync --status` and the admin's `GET /api/admin/sync/status`
(the dashboard's Sync panel) show this appliance's id and key fingerprint as `labrunner identity`
prints them, the central instance or "not configured", the last push (ok, or failed with its code)
and the changes the central instance has not acknowledged; against a real central server process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.runner.appliance_process import ApplianceProcess, free_port
from tests.sync.conftest import Classroom, cli, ok, sql, submit
from tests.ui.conftest import no_docker


def status(classroom: Classroom, url: str = "") -> dict[str, str]:
    env = {"LABRUNNER_SYNC_CENTRAL_URL": url} if url else None
    lines = ok(cli(classroom.data_dir, "sync", "--status", env=env)).splitlines()
    return {key.strip(): value.strip() for key, value in (line.split(":", 1) for line in lines)}


def identity(classroom: Classroom) -> dict[str, str]:
    lines = ok(cli(classroom.data_dir, "identity")).splitlines()
    return {key.strip(): value.strip() for key, value in (line.split(":", 1) for line in lines)}


def test_sync_status_names_the_identity_the_central_and_the_last_push(
    classroom: Classroom, central_server: ApplianceProcess
) -> None:
    me = identity(classroom)
    alone = status(classroom)
    assert (alone["appliance id"], alone["fingerprint"]) == (me["appliance id"], me["fingerprint"])
    assert alone["central"].startswith("not configured")
    assert (alone["last push"], alone["changes"]) == ("never", "no central instance set")

    ok(cli(classroom.data_dir, "sync", "--now", env={"LABRUNNER_SYNC_CENTRAL_URL": central_server.url}))
    pushed = status(classroom, central_server.url)
    assert pushed["central"] == central_server.url
    assert pushed["last push"].startswith("ok at") and "(cli)" in pushed["last push"], pushed
    assert pushed["changes"].startswith("0 changes not yet acknowledged"), pushed

    with sql(classroom.data_dir) as conn:
        submit(conn, classroom.adult_id, classroom.problem_id, "accepted", 100.0)
    assert status(classroom, central_server.url)["changes"].startswith("1 changes not yet acknowledged")

    dead = f"http://127.0.0.1:{free_port()}"
    refused = cli(classroom.data_dir, "sync", "--now", env={"LABRUNNER_SYNC_CENTRAL_URL": dead})
    assert refused.returncode == 1 and "(sync_unreachable)" in refused.stderr
    failed = status(classroom, dead)
    assert failed["last push"].startswith("failed at") and "sync_unreachable" in failed["last push"], failed
    # Another central instance has acknowledged nothing: the next push to it sends everything.
    assert failed["changes"].startswith("nothing acknowledged yet"), failed


async def test_the_admin_api_shows_the_same_status_and_only_to_admins(
    classroom: Classroom, server_factory: Callable[..., Any]
) -> None:
    me = identity(classroom)
    dead = f"http://127.0.0.1:{free_port()}"
    cli(classroom.data_dir, "sync", "--now", env={"LABRUNNER_SYNC_CENTRAL_URL": dead})
    server = await server_factory(data_dir=classroom.data_dir, sync_central_url=dead, app_options=no_docker())
    admin = await server.make_user("admin")
    reply = await admin.get("/api/admin/sync/status")
    assert reply.status == 200, reply
    facts = reply.json
    assert (facts["appliance_id"], facts["fingerprint"], facts["public_key"]) == (
        me["appliance id"],
        me["fingerprint"],
        me["public key"],
    )
    assert facts["central_url"] == dead and facts["acknowledged"] is None and facts["unacknowledged"] is None
    assert (facts["last_push"]["outcome"], facts["last_push"]["error_code"]) == ("failed", "sync_unreachable")
    for client in (await server.make_user("teacher"), await server.make_user("student")):
        refused = await client.get("/api/admin/sync/status")
        assert refused.status == 403 and me["fingerprint"] not in refused.text
