"""A minor's real username and birth date must not leave the classroom in a sync bundle with the
default settings, whatever a teacher named things: the real export of an in-process classroom
(on its real SQLite file) is searched byte for byte (the zip is stored, so every member's text is
in the file as is)."""

from __future__ import annotations

from appliance import identity, sync_bundle, sync_export
from appliance.app_keys import BLOBS, DB, SETTINGS
from tests.conftest import LiveServer, class_with, years_ago


async def test_a_default_bundle_holds_no_minors_username_or_birth_date(server: LiveServer) -> None:
    birthdate = years_ago(11)
    teacher = await server.make_user("teacher")
    minor = await server.make_user("student", username="mia-minor-7q", birthdate=birthdate)
    await class_with(teacher, [minor], "Class 5C")
    me = identity.ensure(server.settings.data_dir)
    exported = await sync_export.export(server.app[DB], server.app[BLOBS], server.app[SETTINGS], me, 0)
    for needle in ("mia-minor-7q", birthdate, birthdate.replace("-", "")):
        assert needle.encode() not in exported.data, needle
    bundle = sync_bundle.read(exported.data, 1 << 24)
    users = bundle.records("users.jsonl")
    assert {u["name"] for u in users if u["role"] == "student"} == {identity.pseudonym(me, minor.user_id)}
    assert all(set(u) == {"id", "role", "name", "created_at"} for u in users)
