"""Problem sets through the command line, on separate data folders: publishing (versions, the
bundle kept), trusting publishers, and receiving by file (`labrunner import FILE` dispatches on the
bundle's kind), each refusal writing nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

from appliance import sync_bundle, sync_import
from appliance.blobs import BlobStore
from appliance.db import open_database
from appliance.settings import load_settings
from appliance.sync_bundle import BundleRefused
from tests.sync.conftest import cli, make_classroom, ok, sql
from tests.sync.problem_set_fixtures import SECRET_IN, make_publisher, make_receiver, state


def _refused(result: object, code: str) -> None:
    assert result.returncode == 1 and f"error ({code})" in result.stderr, (result.stdout, result.stderr)  # type: ignore[attr-defined]


def test_publishing_a_name_again_makes_its_next_version_with_every_test(tmp_path: Path) -> None:
    publisher = make_publisher(tmp_path / "central")
    first = publisher.publish("Week 1", publisher.sum_id, out=tmp_path / "v1.zip")
    second = publisher.publish("Week 1", publisher.sum_id, publisher.echo_id, out=tmp_path / "v2.zip")
    other = publisher.publish("Extra", publisher.echo_id)
    assert "'Week 1' version 1" in first and "'Week 1' version 2" in second and "'Extra' version 1" in other
    set_of = [text.split("(set ")[1].split(",")[0] for text in (first, second, other)]
    assert set_of[0] == set_of[1] != set_of[2]

    listed = ok(cli(publisher.data_dir, "publish", "--list")).splitlines()
    assert [line.split("  ")[:2] for line in listed] == [
        ["Extra", "version 1"],
        ["Week 1", "version 1"],
        ["Week 1", "version 2"],
    ]
    with sql(publisher.data_dir) as conn:
        kept = [row[0] for row in conn.execute("SELECT bundle_blob FROM published_problem_sets ORDER BY id")]
    blobs = BlobStore(publisher.data_dir / "blobs")
    assert blobs.get(kept[1]) == (tmp_path / "v2.zip").read_bytes()

    bundle = sync_bundle.read((tmp_path / "v2.zip").read_bytes(), 1 << 24)
    assert bundle.kind == "problem_set" and bundle.manifest["version"] == 2
    assert bundle.manifest["titles"] == ["Sum", "Echo"]
    (sum_record, echo_record) = bundle.records("problems.jsonl")
    assert [t["visibility"] for t in sum_record["test_cases"]] == ["visible", "hidden", "hidden"]
    assert sum_record["test_cases"][2]["stdin"] == SECRET_IN and "owner" not in sum_record
    assert [a["name"] for a in sum_record["assets"]] == ["data.csv"]
    assert echo_record["id"] == publisher.echo_id

    before = state(publisher.data_dir), blobs.digests()
    _refused(cli(publisher.data_dir, "publish", "--name", "Week 1", "999"), "unknown_problem")
    _refused(cli(publisher.data_dir, "publish", "--name", " ", str(publisher.sum_id)), "invalid_problem_set_name")
    _refused(cli(publisher.data_dir, "publish", "--name", "Week 1"), "no_problems_chosen")
    assert (state(publisher.data_dir), blobs.digests()) == before


def test_a_set_by_file_enters_the_inbox_once_and_refusals_write_nothing(tmp_path: Path) -> None:
    publisher = make_publisher(tmp_path / "central")
    publisher.publish("Week 1", publisher.sum_id, out=tmp_path / "v1.zip")
    publisher.publish("Week 1", publisher.sum_id, publisher.echo_id, out=tmp_path / "v2.zip")
    room, lonely = tmp_path / "room", tmp_path / "lonely"
    make_receiver(room, publisher)
    make_receiver(lonely, None)

    # A classroom that trusts nobody takes no set.
    before = state(lonely)
    _refused(cli(lonely, "import", str(tmp_path / "v2.zip")), "bundle_untrusted_publisher")
    assert state(lonely) == before
    # Nor does the publisher itself (it registers classrooms; it trusts no publisher).
    _refused(cli(publisher.data_dir, "import", str(tmp_path / "v2.zip")), "bundle_untrusted_publisher")

    received = ok(cli(room, "import", str(tmp_path / "v2.zip")))
    assert "received into the inbox" in received and "version 2" in received and "2 problems" in received
    before = state(room)
    assert "already in the inbox" in ok(cli(room, "import", str(tmp_path / "v2.zip")))
    _refused(cli(room, "import", str(tmp_path / "v1.zip")), "bundle_replayed")
    raw = (tmp_path / "v2.zip").read_bytes()
    (tmp_path / "cut.zip").write_bytes(raw[: len(raw) // 2])
    _refused(cli(room, "import", str(tmp_path / "cut.zip")), "bundle_malformed")
    assert state(room) == before

    # A classroom bundle still goes to the central import: here no appliance is registered.
    classroom = make_classroom(tmp_path / "other-room")
    classroom.export(tmp_path / "classroom.zip")
    _refused(cli(room, "import", str(tmp_path / "classroom.zip")), "bundle_unknown_key")
    assert state(room) == before


def test_an_asset_missing_from_the_blob_store_stops_the_publish_with_a_clear_error(tmp_path: Path) -> None:
    publisher = make_publisher(tmp_path / "central")
    for blob in (publisher.data_dir / "blobs").rglob("*"):
        if blob.is_file():
            blob.unlink()
    target = tmp_path / "v1.zip"
    refused = cli(publisher.data_dir, "publish", "--name", "Week 1", str(publisher.sum_id), "--out", str(target))
    _refused(refused, "asset_unreadable")
    assert "data.csv" in refused.stderr and "then publish again" in refused.stderr
    assert "Traceback" not in refused.stderr and not target.exists()


def test_trusting_and_untrusting_publishers(tmp_path: Path) -> None:
    publisher = make_publisher(tmp_path / "central")
    publisher.publish("Week 1", publisher.sum_id, out=tmp_path / "v1.zip")
    room = tmp_path / "room"
    make_receiver(room, None)
    assert "accepts no problem sets" in ok(cli(room, "publishers", "list"))
    assert publisher.fingerprint in ok(cli(room, "publishers", "add", "Central", publisher.public_key))
    _refused(cli(room, "publishers", "add", "Again", publisher.public_key), "publisher_already_trusted")
    _refused(cli(room, "publishers", "add", "Bad", publisher.public_key[:-2]), "invalid_public_key")
    ok(cli(room, "import", str(tmp_path / "v1.zip")))
    listed = ok(cli(room, "publishers", "list"))
    assert "Central" in listed and publisher.fingerprint in listed and "sets in the inbox: 1" in listed

    # Untrusting drops its sets from the inbox; their bundle is then the blob purge's.
    ok(cli(room, "publishers", "remove", "Central"))
    with sql(room) as conn:
        assert conn.execute("SELECT COUNT(*) FROM problem_set_inbox").fetchone()[0] == 0
    _refused(cli(room, "publishers", "remove", "Central"), "unknown_publisher")
    _refused(cli(room, "import", str(tmp_path / "v1.zip")), "bundle_untrusted_publisher")


def test_a_problem_set_is_not_taken_as_a_classroom_bundle_by_the_central_import(tmp_path: Path) -> None:
    """The push route and `import` of a classroom bundle share `sync_import.import_bundle`."""
    publisher = make_publisher(tmp_path / "central")
    publisher.publish("Week 1", publisher.sum_id, out=tmp_path / "v1.zip")
    settings = load_settings(environment="production", data_dir=str(publisher.data_dir), overrides={})

    async def attempt() -> str:
        db = open_database(settings.database_location)
        await db.open()
        try:
            await sync_import.import_bundle(
                db, BlobStore(settings.blob_dir), settings, (tmp_path / "v1.zip").read_bytes()
            )
        except BundleRefused as refused:
            return refused.code
        finally:
            await db.close()
        return "imported"

    before = state(publisher.data_dir)
    assert asyncio.run(attempt()) == "bundle_unsupported_kind"
    assert state(publisher.data_dir) == before
