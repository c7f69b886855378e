"""The network push: a classroom appliance's outbox sends its bundles to a central instance's
`POST /api/sync/bundles`, both real server processes on loopback (tests/runner/appliance_process.py)."""

from __future__ import annotations

import io
import json
import os
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.blobs import BlobStore
from appliance.identity import KEY_FILE, public_key_text
from appliance.sync_intake import push_headers
from appliance.sync_outbox import ACK_FILE, Backoff
from tests.runner.appliance_process import ApplianceProcess, free_port
from tests.sync.conftest import Central, Classroom, cli, make_classroom, ok, sql, submit

SYNCED = ("synced_users", "synced_classes", "synced_problems", "synced_problem_assets", "synced_submissions")


def push_now(classroom: Classroom, url: str, central_key: str = "") -> Any:
    env = {"LABRUNNER_SYNC_CENTRAL_URL": url, "LABRUNNER_SYNC_CENTRAL_KEY": central_key}
    return cli(classroom.data_dir, "sync", "--now", env=env)


def acked(data_dir: Path) -> dict[str, Any] | None:
    path = data_dir / ACK_FILE
    return json.loads(path.read_text()) if path.exists() else None


def change_counter(data_dir: Path) -> int:
    with sql(data_dir) as conn:
        return int(conn.execute("SELECT seq FROM sync_counter").fetchone()[0])


def synced_state(central: Central) -> tuple[Any, ...]:
    """What a push may write on the central instance: the synced rows, registrations and blob files."""
    with sql(central.data_dir) as conn:
        rows = tuple(
            tuple(tuple(row) for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2"))
            for table in (*SYNCED, "sync_appliances")
        )
    blobs = sorted(str(p.relative_to(central.data_dir)) for p in (central.data_dir / "blobs").rglob("*") if p.is_file())
    return rows, blobs


def local_ids(central: Central, table: str) -> list[int]:
    return [int(row["local_id"]) for row in central.synced(table)]


def central_mark(central: Central) -> tuple[int, int]:
    with sql(central.data_dir) as conn:
        row = conn.execute("SELECT last_generation, last_watermark FROM sync_appliances").fetchone()
    return int(row[0]), int(row[1])


def signed_by(data_dir: Path, body: bytes) -> dict[str, str]:
    """The headers the outbox of the appliance on `data_dir` sends before `body`."""
    key = serialization.load_pem_private_key((data_dir / KEY_FILE).read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return push_headers(key, public_key_text(key.public_key()), body)


def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/zip", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_push_lands_and_a_second_push_lands_nothing_new(
    classroom: Classroom, central: Central, central_server: ApplianceProcess
) -> None:
    # The central instance signs its acknowledgement; a classroom that knows its key checks it.
    central_key = dict(line.split(":", 1) for line in ok(cli(central.data_dir, "identity")).splitlines())["public key"]
    pushed = ok(push_now(classroom, central_server.url, central_key.strip()))
    assert "pushed to" in pushed and "acknowledged" in pushed, pushed
    assert local_ids(central, "synced_users") == [1, 2, 3]
    assert local_ids(central, "synced_submissions") == classroom.submission_ids
    mark = acked(classroom.data_dir)
    assert mark is not None and mark["watermark"] == change_counter(classroom.data_dir)
    assert central_mark(central) == (mark["generation"], mark["watermark"])

    before = synced_state(central)
    again = ok(push_now(classroom, central_server.url))
    assert "nothing new" in again, again
    assert synced_state(central) == before

    with sql(classroom.data_dir) as conn:
        later = submit(conn, classroom.adult_id, classroom.problem_id, "wrong_answer", 0.0)
    ok(push_now(classroom, central_server.url))
    assert local_ids(central, "synced_submissions") == [*classroom.submission_ids, later]
    mark = acked(classroom.data_dir)
    assert mark is not None and central_mark(central) == (mark["generation"], mark["watermark"])
    with sql(classroom.data_dir) as conn:
        runs = [tuple(r) for r in conn.execute("SELECT trigger, outcome FROM job_runs WHERE job = 'sync_push'")]
    assert runs == [("cli", "ok")] * 3


def _wait_for(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_central_killed_during_a_push_gets_every_change_exactly_once_after_it_returns(
    classroom: Classroom, central: Central, central_server: ApplianceProcess
) -> None:
    # A large asset makes the push take long enough to kill the central instance in its middle:
    # once the asset's blob file appears there, the bundle is verified and the import is under way.
    big = os.urandom(24 * 1024 * 1024)
    digest = BlobStore(classroom.data_dir / "blobs").put(big)
    with sql(classroom.data_dir) as conn:
        conn.execute(
            "INSERT INTO problem_assets (problem_id, name, kind, media_type, size, blob, created_at)"
            " VALUES (?, 'big.bin', 'binary', 'application/octet-stream', ?, ?, '2026-05-01T09:00:00.000000Z')",
            (classroom.problem_id, len(big), digest),
        )
    landed = BlobStore(central.data_dir / "blobs").path_for(digest)
    outbox = ApplianceProcess(
        classroom.data_dir,
        free_port(),
        env={
            "LABRUNNER_SYNC_CENTRAL_URL": central_server.url,
            "LABRUNNER_SYNC_EVERY_S": "1",
            "LABRUNNER_SYNC_BACKOFF_MAX_S": "2",
        },
    )
    outbox.start()
    try:
        _wait_for(landed.exists, 120, "the push to reach the central instance")
        central_server.kill9()
        # Changes made while the link is down go with the retry.
        with sql(classroom.data_dir) as conn:
            later = submit(conn, classroom.minor_id, classroom.problem_id, "wrong_answer", 0.0)

        def failed_attempts() -> int:
            with sql(classroom.data_dir) as conn:
                return int(
                    conn.execute(
                        "SELECT count(*) FROM job_runs WHERE job = 'sync_push' AND outcome = 'failed'"
                        " AND detail LIKE '%sync_unreachable%'"
                    ).fetchone()[0]
                )

        _wait_for(lambda: failed_attempts() >= 2, 60, "the outbox to retry while the central instance is down")
        assert acked(classroom.data_dir) is None, "acknowledged without the central instance's answer"
        central_server.start()

        def caught_up() -> bool:
            mark = acked(classroom.data_dir)
            return mark is not None and mark["watermark"] == change_counter(classroom.data_dir)

        _wait_for(caught_up, 120, "the outbox to push everything once the central instance is back")
    finally:
        outbox.stop()
    mark = acked(classroom.data_dir)
    assert mark is not None and central_mark(central) == (mark["generation"], mark["watermark"])
    # Keyed by (appliance, local id), a change can only land once: each row is there, none twice or missing.
    assert local_ids(central, "synced_users") == [1, 2, 3]
    assert local_ids(central, "synced_classes") == [classroom.class_id]
    assert local_ids(central, "synced_problems") == [classroom.problem_id]
    assert local_ids(central, "synced_submissions") == [*classroom.submission_ids, later]
    with sql(central.data_dir) as conn:
        assets = [row[0] for row in conn.execute("SELECT name FROM synced_problem_assets ORDER BY name")]
    assert assets == ["big.bin", "data.csv"]


def test_an_unregistered_appliance_is_refused_and_nothing_is_written(
    tmp_path: Path, central: Central, central_server: ApplianceProcess
) -> None:
    stranger = make_classroom(tmp_path / "stranger")
    before = synced_state(central)
    refused = push_now(stranger, central_server.url)
    assert refused.returncode == 1 and "(bundle_unknown_key)" in refused.stderr, refused.stderr
    assert synced_state(central) == before
    assert acked(stranger.data_dir) is None
    with sql(stranger.data_dir) as conn:
        (detail,) = conn.execute(
            "SELECT detail FROM job_runs WHERE job = 'sync_push' AND outcome = 'failed'"
        ).fetchone()
    assert json.loads(detail)["error"]["code"] == "bundle_unknown_key"


def test_a_tampered_bundle_is_refused_and_only_this_route_skips_the_cross_site_check(
    tmp_path: Path, classroom: Classroom, central: Central, central_server: ApplianceProcess
) -> None:
    bundle = tmp_path / "bundle.zip"
    classroom.export(bundle)
    genuine = bundle.read_bytes()
    # A well-formed zip (right CRCs) whose problem says something else than the signed manifest.
    packed = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(genuine)) as source, zipfile.ZipFile(packed, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info, data.replace(b"Add two numbers.", b"Add two numbers!"))
    tampered = packed.getvalue()
    assert tampered != genuine
    before = synced_state(central)
    url = central_server.url + "/api/sync/bundles"
    # Each push signed by the classroom's key (sync_intake.push_headers), as its outbox signs it.
    signer = signed_by(classroom.data_dir, genuine)
    status, answer = post(url, tampered, signed_by(classroom.data_dir, tampered))
    assert status == 400 and answer["error"]["code"] == "bundle_tampered", answer
    status, answer = post(url, genuine, {**signer, "Content-Type": "text/plain"})
    assert status == 415, answer
    assert synced_state(central) == before

    # Sent from a browser on another site with a (meaningless) cookie: the signature decides.
    cross_site = {"Origin": "http://elsewhere.example", "Cookie": "labrunner_session=x", **signer}
    status, answer = post(url, genuine, cross_site)
    assert status == 200 and answer["watermark"] == change_counter(classroom.data_dir), answer
    assert local_ids(central, "synced_submissions") == classroom.submission_ids
    # Sent again (its acknowledgement was lost): acknowledged as already there, nothing written.
    landed = synced_state(central)
    status, answer = post(url, genuine, signer)
    assert status == 200 and answer["already"] is True and answer["watermark"] == change_counter(classroom.data_dir)
    assert synced_state(central) == landed
    status, answer = post(
        central_server.url + "/api/auth/login", b"{}", {**cross_site, "Content-Type": "application/json"}
    )
    assert status == 403 and answer["error"]["code"] == "csrf_failed", answer


def test_retries_back_off_with_jitter_up_to_the_ceiling() -> None:
    draws = iter([0.0, 1.0, 0.5, 1.0, 1.0])
    backoff = Backoff(every_s=300, max_s=5, draw=lambda: next(draws))
    assert backoff.delay() == 300
    waits = []
    for failures in range(1, 6):
        backoff.failures = failures
        waits.append(backoff.delay())
    assert waits == [0.5, 2.0, 3.0, 5.0, 5.0]
    backoff.failures = 0
    assert backoff.delay() == 300


def test_a_push_needs_a_well_formed_central_url(classroom: Classroom) -> None:
    unset = cli(classroom.data_dir, "sync", "--now")
    assert unset.returncode == 1 and "(sync_not_configured)" in unset.stderr, unset.stderr
    for bad in ("ftp://central.example", "central.example", "https://central.example/?x=1"):
        refused = push_now(classroom, bad)
        assert refused.returncode == 2 and "sync_central_url" in refused.stderr, (bad, refused.stderr)
    assert acked(classroom.data_dir) is None
