"""Attacks on the admin routes of issue 10 (backups, job history, purge audit, /healthz detail),
and on erasure surviving a restore."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from appliance.restore import restore
from tests.conftest import LiveServer, dump_db
from tests.ops.conftest import Classroom, picture_sandbox, populate

ADMIN_ROUTES = (
    ("POST", "/api/admin/backups"),
    ("GET", "/api/admin/jobs/history"),
    ("GET", "/api/admin/purges"),
)


def _archives(classroom: Classroom) -> list[Path]:
    return sorted(classroom.server.settings.backup_dir.glob("*.tar*"))


async def test_only_admins_reach_the_admin_routes(classroom: Classroom) -> None:
    student_script = classroom.student.with_token(await classroom.student.create_token())
    teacher_script = classroom.teacher.with_token(await classroom.teacher.create_token())
    for client in (classroom.student, classroom.teacher, student_script, teacher_script):
        for method, path in ADMIN_ROUTES:
            reply = await client.request(method, path)
            assert reply.status == 403 and reply.error_code == "forbidden", (client.username, path, reply)
    for method, path in ADMIN_ROUTES:
        assert (await classroom.server.client().request(method, path)).status == 401
    assert _archives(classroom) == []


async def test_an_admins_cookie_cannot_take_a_backup_cross_site(classroom: Classroom) -> None:
    """A page elsewhere making the admin's browser POST (with a foreign Origin, or none at all)."""
    for headers in ({}, {"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "same-site"}):
        forged = classroom.server.client(origin=None)
        forged.use_session(classroom.admin.session_cookie or "")
        reply = await forged.post("/api/admin/backups", headers=headers)
        assert reply.status == 403 and reply.error_code == "csrf_failed", (headers, reply)
    assert _archives(classroom) == []
    # The admin's own page, and an admin's script, may.
    assert (await classroom.admin.post("/api/admin/backups")).status == 201
    script = classroom.admin.with_token(await classroom.admin.create_token())
    assert (await script.post("/api/admin/backups")).status == 201


async def test_healthz_shows_backups_to_admins_only(classroom: Classroom) -> None:
    made = await classroom.admin.post("/api/admin/backups")
    assert made.status == 201, made
    archive = made.json["archive"]
    backup_dir = str(classroom.server.settings.backup_dir)
    student_script = classroom.student.with_token(await classroom.student.create_token())
    for client in (classroom.server.client(), classroom.student, classroom.teacher, student_script):
        reply = await client.get("/healthz")
        assert "backup" not in reply.json, reply
        assert archive not in reply.text and backup_dir not in reply.text
    assert (await classroom.admin.get("/healthz")).json["backup"]["detail"]["archive"] == archive


async def test_a_restore_does_not_bring_an_erased_student_back(
    server_factory: Callable[..., Awaitable[LiveServer]], fast_passwords: None
) -> None:
    server = await server_factory(app_options={"sandbox": picture_sandbox()}, backup_time="")
    classroom = await populate(server)
    settings = server.settings
    backup = await classroom.admin.post("/api/admin/backups")
    assert backup.status == 201, backup
    student = classroom.student
    erased = await classroom.teacher.post(
        f"/api/users/{student.user_id}/erase", json={"confirm_username": student.username}
    )
    assert erased.status == 200, erased
    await server.close()
    result = await restore(settings, settings.backup_dir / backup.json["archive"], passphrase=None)
    assert result.erased_again == [student.user_id]
    again = await server_factory(data_dir=settings.data_dir, backup_time="", app_options={"sandbox": picture_sandbox()})
    assert (await again.client().login(student.username, student.password)).status == 401
    # Erased again, not only locked out: nothing of theirs is back in the restored database, and
    # the erasure keeps its first date.
    rows = dump_db(settings.db_path)
    assert student.username not in repr(rows)
    [erasure] = rows["erasures"]
    assert erasure[1] == student.user_id
