"""Classroom -> central sync through the real command line (issue 13): export, import, refusals."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tests.sync.attack_bundles import Signer
from tests.sync.conftest import (
    ADULT_USERNAME,
    MINOR_BIRTHDATE,
    MINOR_USERNAME,
    Central,
    Classroom,
    cli,
    make_classroom,
    ok,
    sql,
    submit,
)

SYNCED = ("synced_users", "synced_classes", "synced_problems", "synced_submissions")


def _counts(central: Central) -> dict[str, int]:
    return {table: len(central.synced(table)) for table in SYNCED}


def _watermark(bundle: Path) -> int:
    with zipfile.ZipFile(bundle) as archive:
        return int(json.loads(archive.read("manifest.json"))["watermark"])


def test_export_then_import_twice_writes_no_duplicates(tmp_path: Path, classroom: Classroom, central: Central) -> None:
    first, again = tmp_path / "first.zip", tmp_path / "again.zip"
    classroom.export(first)
    imported = ok(central.import_(first))
    assert "users 3 new" in imported and "submissions 2 new" in imported, imported
    expected = {"synced_users": 3, "synced_classes": 1, "synced_problems": 1, "synced_submissions": 2}
    assert _counts(central) == expected
    after_first = central.state()

    # The same data exported again is the same bundle, byte for byte; importing it changes nothing.
    classroom.export(again)
    assert again.read_bytes() == first.read_bytes()
    for bundle in (first, again):
        assert "already imported" in ok(central.import_(bundle))
    assert central.state() == after_first

    # A full export with another --since that ends at the same watermark is applied, and still adds no row.
    partial = tmp_path / "partial.zip"
    classroom.export(partial, "--since", "1")
    assert _watermark(partial) == _watermark(first)
    ok(central.import_(partial))
    assert _counts(central) == expected

    # The central copy keeps the classroom's own ids, the class's members and the problem's tests and asset.
    with sql(central.data_dir) as conn:
        problem = json.loads(conn.execute("SELECT record FROM synced_problems").fetchone()[0])
        members = json.loads(conn.execute("SELECT record FROM synced_classes").fetchone()[0])["members"]
        assets = conn.execute("SELECT name, blob FROM synced_problem_assets").fetchall()
    assert problem["id"] == classroom.problem_id and len(problem["test_cases"]) == 2
    assert members == [classroom.minor_id, classroom.adult_id]
    assert [tuple(a) for a in assets] == [("data.csv", problem["assets"][0]["sha256"])]
    assert (central.data_dir / "blobs" / assets[0][1][:2] / assets[0][1][2:]).is_file()


def test_a_classroom_edit_updates_the_central_copy(tmp_path: Path, classroom: Classroom, central: Central) -> None:
    first, second = tmp_path / "first.zip", tmp_path / "second.zip"
    classroom.export(first)
    ok(central.import_(first))
    mark = _watermark(first)

    with sql(classroom.data_dir) as conn:
        conn.execute("UPDATE problems SET title = 'Sum of two' WHERE id = ?", (classroom.problem_id,))
        conn.execute("UPDATE test_cases SET expected_stdout = '11\n' WHERE position = 2")
        conn.execute("DELETE FROM class_members WHERE user_id = ?", (classroom.adult_id,))
        deleted, kept = classroom.submission_ids
        conn.execute("UPDATE jobs SET verdict = 'wrong_answer', score = 0 WHERE id = ?", (kept,))
        # Not the newest row: SQLite would give its id to the next insert.
        conn.execute("DELETE FROM jobs WHERE id = ?", (deleted,))
        added = submit(conn, classroom.adult_id, classroom.problem_id, "accepted", 1.0)

    out = classroom.export(second, "--since", str(mark))
    assert f"since {mark}" in out
    assert _watermark(second) > mark
    imported = ok(central.import_(second))
    assert "problems 0 new, 1 updated" in imported and "submissions 1 new, 1 updated, 1 removed" in imported, imported

    problems = central.synced("synced_problems")
    assert len(problems) == 1 and problems[0]["title"] == "Sum of two"
    assert json.loads(problems[0]["record"])["test_cases"][1]["expected_stdout"] == "11\n"
    assert json.loads(central.synced("synced_classes")[0]["record"])["members"] == [classroom.minor_id]
    submissions = {row["local_id"]: row for row in central.synced("synced_submissions")}
    assert set(submissions) == {kept, added}
    assert submissions[kept]["verdict"] == "wrong_answer"
    assert _counts(central)["synced_users"] == 3


def _flip_inside(bundle: Path, member: str, target: Path) -> None:
    """One byte changed in the middle of a member's stored bytes."""
    raw = bytearray(bundle.read_bytes())
    with zipfile.ZipFile(bundle) as archive:
        info = archive.getinfo(member)
    # Stored members: data follows the 30-byte local header, the name and the extra field.
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw[start + info.file_size // 2] ^= 0x01
    target.write_bytes(bytes(raw))


def test_altered_unknown_replayed_and_malformed_bundles_are_refused_and_write_nothing(
    tmp_path: Path, classroom: Classroom, central: Central
) -> None:
    older, newer = tmp_path / "older.zip", tmp_path / "newer.zip"
    classroom.export(older)
    with sql(classroom.data_dir) as conn:
        conn.execute("UPDATE problems SET title = 'Newer title' WHERE id = ?", (classroom.problem_id,))
    classroom.export(newer)
    ok(central.import_(newer))

    stranger = make_classroom(tmp_path / "stranger")  # an appliance the central never registered
    unknown = tmp_path / "unknown.zip"
    stranger.export(unknown)
    tampered, flipped_manifest = tmp_path / "tampered.zip", tmp_path / "manifest.zip"
    _flip_inside(newer, "users.jsonl", tampered)
    _flip_inside(newer, "manifest.json", flipped_manifest)
    not_a_zip = tmp_path / "junk.zip"
    not_a_zip.write_bytes(b"PK\x03\x04 not really a zip")
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(newer.read_bytes()[:-100])

    cases = {
        tampered: "bundle_tampered",
        flipped_manifest: "bundle_tampered",
        unknown: "bundle_unknown_key",
        older: "bundle_replayed",
        not_a_zip: "bundle_malformed",
        truncated: "bundle_malformed",
    }
    before = central.state()
    for bundle, code in cases.items():
        refused = central.import_(bundle)
        assert refused.returncode == 1, (bundle.name, refused.stdout)
        assert f"error ({code})" in refused.stderr, (bundle.name, refused.stderr)
        assert "nothing was imported" in refused.stderr and "Traceback" not in refused.stderr
        assert central.state() == before, bundle.name
    assert central.synced("synced_problems")[0]["title"] == "Newer title"


def test_a_bundle_starting_past_what_the_central_has_is_refused(
    tmp_path: Path, classroom: Classroom, central: Central
) -> None:
    first = tmp_path / "first.zip"
    classroom.export(first)
    with sql(classroom.data_dir) as conn:
        conn.execute("UPDATE problems SET title = 'Later' WHERE id = ?", (classroom.problem_id,))
    later = tmp_path / "later.zip"
    classroom.export(later, "--since", str(_watermark(first)))
    before = central.state()
    refused = central.import_(later)
    assert refused.returncode == 1 and "error (bundle_gap)" in refused.stderr and "--since 0" in refused.stderr
    assert central.state() == before


def _bundle_text(bundle: Path) -> bytes:
    with zipfile.ZipFile(bundle) as archive:
        return bundle.read_bytes() + b"".join(archive.read(name) for name in archive.namelist())


def test_by_default_no_bundle_holds_a_minors_username_or_birthdate(tmp_path: Path, classroom: Classroom) -> None:
    default = tmp_path / "default.zip"
    classroom.export(default)
    text = _bundle_text(default)
    for secret in (MINOR_USERNAME, ADULT_USERNAME, MINOR_BIRTHDATE, "JOIN7B", "print(sum"):
        assert secret.encode() not in text, secret
    with zipfile.ZipFile(default) as archive:
        names = [json.loads(line)["name"] for line in archive.read("users.jsonl").splitlines()]
    assert len(set(names)) == 3 and all(name.startswith("p-") for name in names)
    # The same user's pseudonym stays the same in every bundle of this appliance.
    again = tmp_path / "again.zip"
    classroom.export(again)
    assert again.read_bytes() == default.read_bytes()

    # The school's policy can allow names and code: then they travel (so the check above can see them);
    # birth dates and join codes still never do.
    allowed = tmp_path / "allowed.zip"
    classroom.export(allowed, env={"LABRUNNER_SYNC_REAL_NAMES": "true", "LABRUNNER_SYNC_SUBMISSION_CODE": "true"})
    text = _bundle_text(allowed)
    assert MINOR_USERNAME.encode() in text and b"print(sum" in text
    assert MINOR_BIRTHDATE.encode() not in text and b"JOIN7B" not in text


def test_identity_is_stable_and_its_private_parts_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "appliance"
    first = ok(cli(data_dir, "identity"))
    assert ok(cli(data_dir, "identity")) == first
    for name in ("sync-identity.key", "sync-pseudonym.key"):
        assert (data_dir / name).stat().st_mode & 0o777 == 0o600, name
    other = ok(cli(tmp_path / "other", "identity"))
    assert other != first


@pytest.mark.parametrize(
    ("key", "code"),
    [("not-a-key", "invalid_public_key"), ("ed25519:AAAA", "invalid_public_key")],
)
def test_registering_a_bad_key_is_refused(tmp_path: Path, key: str, code: str) -> None:
    refused = cli(tmp_path / "central", "appliances", "add", "Room 1", key)
    assert refused.returncode == 1 and f"error ({code})" in refused.stderr and "Traceback" not in refused.stderr


@pytest.mark.parametrize(
    ("command", "code"), [("appliances", "invalid_appliance_name"), ("publishers", "invalid_publisher_name")]
)
def test_a_key_under_a_blank_overlong_or_unprintable_name_is_refused(tmp_path: Path, command: str, code: str) -> None:
    for name in ("   ", "x" * 101, "Room\t12"):
        refused = cli(tmp_path / "appliance", command, "add", name, Signer().public_key)
        assert refused.returncode == 1 and f"error ({code})" in refused.stderr, (name, refused.stderr)
    assert "Traceback" not in refused.stderr


def test_registering_a_key_twice_is_refused(tmp_path: Path, classroom: Classroom, central: Central) -> None:
    again = cli(central.data_dir, "appliances", "add", "Room 13", classroom.public_key)
    assert again.returncode == 1 and "error (appliance_already_registered)" in again.stderr
    listed = ok(cli(central.data_dir, "appliances", "list"))
    assert "Room 12" in listed and "Room 13" not in listed and classroom.fingerprint in listed


def test_after_a_restore_on_the_classroom_a_full_bundle_brings_the_central_copy_back_in_step(
    tmp_path: Path, classroom: Classroom, central: Central
) -> None:
    ok(cli(classroom.data_dir, "backup"))
    (archive,) = (classroom.data_dir / "backups").glob("labrunner-backup-*")
    with sql(classroom.data_dir) as conn:
        conn.execute("UPDATE problems SET title = 'After the backup' WHERE id = ?", (classroom.problem_id,))
        added = submit(conn, classroom.adult_id, classroom.problem_id, "accepted", 1.0)
    before_restore = tmp_path / "before-restore.zip"
    classroom.export(before_restore)
    ok(central.import_(before_restore))
    assert added in {row["local_id"] for row in central.synced("synced_submissions")}

    # The restore takes the change counter back to the backup's; a new change reuses its numbers.
    ok(cli(classroom.data_dir, "restore", str(archive)))
    with sql(classroom.data_dir) as conn:
        conn.execute("UPDATE classes SET name = '7B after the restore' WHERE id = ?", (classroom.class_id,))
    incremental, full = tmp_path / "incremental.zip", tmp_path / "full.zip"
    assert "generation 2" in classroom.export(incremental, "--since", str(_watermark(before_restore) - 5))
    before = central.state()
    refused = central.import_(incremental)
    assert refused.returncode == 1 and "error (bundle_gap)" in refused.stderr and "--since 0" in refused.stderr
    assert central.state() == before

    classroom.export(full)
    imported = ok(central.import_(full))
    assert "submissions 0 new, 0 updated, 1 removed" in imported, imported
    assert central.synced("synced_problems")[0]["title"] == "Sum"
    assert central.synced("synced_classes")[0]["name"] == "7B after the restore"
    assert added not in {row["local_id"] for row in central.synced("synced_submissions")}
    # The bundle from before the restore is older now, whatever its watermark.
    before = central.state()
    replayed = central.import_(before_restore)
    assert replayed.returncode == 1 and "error (bundle_replayed)" in replayed.stderr
    assert central.state() == before


def test_an_asset_missing_from_the_blob_store_stops_the_export_with_a_clear_error(
    tmp_path: Path, classroom: Classroom
) -> None:
    for blob in (classroom.data_dir / "blobs").rglob("*"):
        if blob.is_file():
            blob.unlink()
    target = tmp_path / "bundle.zip"
    refused = cli(classroom.data_dir, "export", str(target))
    assert refused.returncode == 1 and "error (asset_unreadable)" in refused.stderr and "data.csv" in refused.stderr
    assert "Traceback" not in refused.stderr and not target.exists()


def test_the_registration_line_identity_prints_pins_the_appliance_id(tmp_path: Path, classroom: Classroom) -> None:
    printed = ok(cli(classroom.data_dir, "identity")).splitlines()
    line = printed[printed.index("register it on the central instance with:") + 1].split()
    assert line[:4] == ["labrunner", "appliances", "add", "NAME"] and line[4] == classroom.public_key
    central = tmp_path / "central"
    bad = cli(central, "appliances", "add", "Room 1", classroom.public_key, "--appliance-id", "not-an-id")
    assert bad.returncode == 1 and "error (invalid_appliance_id)" in bad.stderr
    ok(cli(central, "appliances", "add", "Room 12", *line[4:]))
    with sql(central) as conn:
        pinned = conn.execute("SELECT appliance_id FROM sync_appliances").fetchone()[0]
    assert pinned == line[-1] and len(pinned) == 32
    # The bundle names that id: it is taken.
    classroom.export(tmp_path / "b.zip")
    ok(cli(central, "import", str(tmp_path / "b.zip")))


def test_an_export_never_writes_through_a_link_planted_at_its_partial_name(
    tmp_path: Path, classroom: Classroom
) -> None:
    """A shared stick or /tmp: someone plants FILE.partial as a link to a file of the teacher's."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    target = tmp_path / "stick" / "bundle.zip"
    target.parent.mkdir()
    (target.parent / "bundle.zip.partial").symlink_to(victim)
    classroom.export(target)
    assert victim.read_text() == "keep me"
    assert target.read_bytes()[:2] == b"PK" and not (target.parent / "bundle.zip.partial").exists()
