"""API tokens expire, record their last use, and their owners list and revoke them
(issue 9, finding 14). Logging out leaves tokens alone: they are for scripts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from appliance.clock import parse_iso
from tests import dbaccess
from tests.conftest import LiveServer

FIELDS = {"id", "name", "created_at", "last_used_at", "expires_at"}


def _days_from_now(stamp: str) -> float:
    return (parse_iso(stamp) - datetime.now(UTC)) / timedelta(days=1)


async def test_tokens_expire_and_record_their_last_use(server: LiveServer, make_user) -> None:
    teacher = await make_user("teacher")
    reply = await teacher.post("/api/tokens", json={"name": "gradebook"})
    assert reply.status == 201, reply
    created = reply.json
    assert set(created) == FIELDS | {"token"}
    assert created["name"] == "gradebook" and created["last_used_at"] is None
    assert abs(_days_from_now(created["expires_at"]) - server.settings.token_days) < 0.01
    script = teacher.with_token(created["token"])
    assert (await script.get("/api/me")).status == 200
    listed = (await teacher.get("/api/tokens")).json["tokens"]
    assert [token["id"] for token in listed] == [created["id"]]
    assert listed[0]["last_used_at"] is not None
    # A shorter life on request; longer than the cap is refused.
    short = await teacher.post("/api/tokens", json={"name": "one day", "expires_in_days": 1})
    assert short.status == 201 and abs(_days_from_now(short.json["expires_at"]) - 1) < 0.01, short
    cap = server.settings.token_max_days
    too_long = await teacher.post("/api/tokens", json={"name": "forever", "expires_in_days": cap + 1})
    assert too_long.status == 400 and too_long.error_code == "out_of_range", too_long
    assert (await teacher.post("/api/tokens", json={"name": "zero", "expires_in_days": 0})).status == 400


async def test_expired_token_is_refused(server: LiveServer, make_user) -> None:
    teacher = await make_user("teacher")
    created = (await teacher.post("/api/tokens", json={"name": "old script", "expires_in_days": 1})).json
    script = teacher.with_token(created["token"])
    assert (await script.get("/api/me")).status == 200
    expire = "UPDATE api_tokens SET expires_at = '2000-01-01T00:00:00.000000Z' WHERE id = ?"
    dbaccess.execute(server.settings, expire, (created["id"],))
    for reply in (await script.get("/api/me"), await script.post("/api/classes", json={"name": "late"})):
        assert reply.status == 401 and reply.error_code == "invalid_token", reply
    # Its owner still sees it (and why the script stopped).
    listed = (await teacher.get("/api/tokens")).json["tokens"]
    assert [(t["id"], t["expires_at"]) for t in listed] == [(created["id"], "2000-01-01T00:00:00Z")]


async def test_list_shows_only_own_tokens_and_never_secrets(server: LiveServer, make_user) -> None:
    teacher = await make_user("teacher")
    student = await make_user("student")
    admin = await make_user("admin")
    mine = [await teacher.create_token(name) for name in ("gradebook", "backup")]
    theirs = [await student.create_token("homework"), await admin.create_token("ops")]
    reply = await teacher.get("/api/tokens")
    assert reply.status == 200, reply
    tokens = reply.json["tokens"]
    assert [t["name"] for t in tokens] == ["gradebook", "backup"]
    assert all(set(t) == FIELDS for t in tokens)
    for secret in mine + theirs:
        assert secret not in reply.text
    assert "token_hash" not in reply.text and "homework" not in reply.text and "ops" not in reply.text
    # Admins see only their own here too; a token lists its owner's tokens.
    assert [t["name"] for t in (await admin.get("/api/tokens")).json["tokens"]] == ["ops"]
    assert [t["name"] for t in (await student.with_token(theirs[0]).get("/api/tokens")).json["tokens"]] == ["homework"]


async def test_revoke_own_token_and_not_anyone_elses(server: LiveServer, make_user) -> None:
    teacher = await make_user("teacher")
    student = await make_user("student")
    admin = await make_user("admin")
    secret = await teacher.create_token("gradebook")
    token_id = (await teacher.get("/api/tokens")).json["tokens"][0]["id"]
    script = teacher.with_token(secret)
    for other in (student, admin):  # not theirs: as if it did not exist
        reply = await other.delete(f"/api/tokens/{token_id}")
        assert reply.status == 404 and reply.error_code == "not_found", reply
    assert (await script.get("/api/me")).status == 200
    for missing in ("999999", "abc", "-1"):
        assert (await teacher.delete(f"/api/tokens/{missing}")).status == 404
    reply = await teacher.delete(f"/api/tokens/{token_id}")
    assert reply.status == 204, reply
    assert (await script.get("/api/me")).status == 401
    assert (await teacher.get("/api/tokens")).json["tokens"] == []
    assert (await teacher.delete(f"/api/tokens/{token_id}")).status == 404  # already revoked


async def test_logout_keeps_tokens_and_a_password_reset_revokes_them(server: LiveServer, make_user) -> None:
    admin = await make_user("admin")
    teacher = await make_user("teacher")
    script = teacher.with_token(await teacher.create_token("nightly export"))
    assert (await teacher.post("/api/auth/logout")).status == 200
    assert (await script.get("/api/me")).status == 200  # scripts outlive browser sessions
    reset = await admin.post(f"/api/users/{teacher.user_id}/reset-password", json={})
    assert reset.status == 200, reset
    reply = await script.get("/api/me")
    assert reply.status == 401 and reply.error_code == "invalid_token", reply
    assert (await script.get("/api/tokens")).status == 401


def test_tokens_made_before_the_upgrade_get_an_expiry(settings_factory) -> None:
    from appliance import migrations

    settings = settings_factory(empty_database=True)
    migrations.migrate(settings.database_location, settings.backup_dir, target=7)
    dbaccess.execute(
        settings,
        "INSERT INTO users (username, password_hash, role, created_at)"
        " VALUES ('old-timer', 'x', 'teacher', '2020-01-01T00:00:00Z')",
    )
    dbaccess.execute(
        settings,
        "INSERT INTO api_tokens (user_id, name, token_hash, created_at)"
        " VALUES (1, 'legacy', 'hash', '2020-01-01T00:00:00Z')",
    )
    migrations.migrate(settings.database_location, settings.backup_dir)
    [(expires_at,)] = dbaccess.query(settings, "SELECT expires_at FROM api_tokens")
    # Not "never", and not already expired: 90 days of grace from the upgrade.
    assert abs(_days_from_now(expires_at) - 90) < 0.01
