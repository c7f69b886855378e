"""Optional HTTPS (issue 12) and the push over it (issue 13): real `serve` processes on loopback
(tests/runner/appliance_process.py), a self-made or a supplied certificate, clients that pin its
fingerprint, and the central route's checks made before a pushed body is read."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import select
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance.lan import lan_addresses
from appliance.server_record import read_file
from appliance.sync_intake import KEY_HEADER
from appliance.tls import fingerprint
from tests.conftest import DEFAULT_PASSWORD, REPO_ROOT
from tests.runner.appliance_process import ApplianceProcess, create_account, free_port, serving
from tests.sync.conftest import NOW, Central, Classroom, cli, make_classroom, ok, sql
from tests.sync.test_sync_push import acked, change_counter, local_ids, signed_by, synced_state

SELF_SIGNED = {"LABRUNNER_TLS": "self-signed"}


def shown_fingerprint(data_dir: Path, env: dict[str, str]) -> str:
    lines = dict(line.split(":", 1) for line in ok(cli(data_dir, "tls", env=env)).splitlines())
    return lines["fingerprint"].strip()


def pin(text: str) -> aiohttp.Fingerprint:
    return aiohttp.Fingerprint(bytes.fromhex(text.replace(":", "")))


async def _get(url: str, check: ssl.SSLContext | aiohttp.Fingerprint | bool) -> tuple[int, aiohttp.ClientResponse]:
    async with aiohttp.ClientSession() as session, session.get(url, ssl=check) as response:
        await response.read()
        return response.status, response


def get(url: str, check: ssl.SSLContext | aiohttp.Fingerprint | bool) -> int:
    return asyncio.run(_get(url, check))[0]


def logged_in_pages(url: str, check: aiohttp.Fingerprint | bool, username: str, *paths: str) -> tuple[str, list[str]]:
    """The login's Set-Cookie header, then each page's HTML as that user sees it."""

    async def visit() -> tuple[str, list[str]]:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            login = {"username": username, "password": DEFAULT_PASSWORD}
            async with session.post(url + "/api/auth/login", json=login, ssl=check) as response:
                assert response.status == 200, await response.text()
                cookie = response.headers["Set-Cookie"]
            versions = {}
            for kind in ("terms", "privacy"):
                async with session.get(f"{url}/api/legal/{kind}", ssl=check) as response:
                    versions[f"accept_{kind}"] = (await response.json())["version"]
            accept = session.post(url + "/api/me/accept-legal", json=versions, ssl=check, headers={"Origin": url})
            async with accept as response:
                assert response.status == 200, await response.text()
            pages = []
            for path in paths:
                async with session.get(url + path, ssl=check, headers={"Accept": "text/html"}) as response:
                    assert response.status == 200, (path, response.status)
                    pages.append(await response.text())
            return cookie, pages

    return asyncio.run(visit())


@pytest.fixture
def tls_central(central: Central) -> Iterator[ApplianceProcess]:
    with serving(central.data_dir, env=SELF_SIGNED) as server:
        yield server


def test_a_client_pinning_the_shown_fingerprint_connects_and_another_is_refused(
    central: Central, tls_central: ApplianceProcess
) -> None:
    shown = shown_fingerprint(central.data_dir, SELF_SIGNED)
    banner = tls_central.log.read_text()
    assert f"Certificate fingerprint (SHA-256): {shown}" in banner, banner
    assert f"https://127.0.0.1:{tls_central.port}/" in banner, banner
    health = tls_central.url + "/healthz"
    assert get(health, pin(shown)) == 200
    other = "AB:" * 31 + "CD"
    with pytest.raises(aiohttp.ServerFingerprintMismatch):
        get(health, pin(other))
    # No certificate authority vouches for it; a client trusting just this certificate connects
    # (its names cover 127.0.0.1).
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        get(health, True)
    assert get(health, ssl.create_default_context(cafile=str(central.data_dir / "tls-cert.pem"))) == 200
    # The key is the owner's only; the fingerprint is what the certificate served says.
    assert (central.data_dir / "tls-key.pem").stat().st_mode & 0o777 == 0o600
    pem = (central.data_dir / "tls-cert.pem").read_bytes()
    assert fingerprint(x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)) == shown
    # Plain HTTP on the served port gets no page.
    with pytest.raises(aiohttp.ClientError):
        get(f"http://127.0.0.1:{tls_central.port}/healthz", False)
    # The window's link: plain HTTP on a loopback port of its own, recorded for `labrunner desktop`.
    record = read_file(central.data_dir / "server.json")
    assert record is not None and record.window_port is not None and record.window_port != tls_central.port
    assert record.local_url == f"http://127.0.0.1:{record.window_port}"
    assert get(record.local_url + "/healthz", False) == 200

    # Session cookies over HTTPS are Secure; the dashboard and the Classroom view show the fingerprint.
    create_account(central.data_dir, "admin", "it-admin")
    cookie, pages = logged_in_pages(tls_central.url, pin(shown), "it-admin", "/admin", "/teach/classroom")
    assert "Secure" in cookie, cookie
    # The window's Classroom view (over its plain loopback link) lists the https addresses students open.
    _, window_pages = logged_in_pages(record.local_url, False, "it-admin", "/teach/classroom")
    for html in [*pages, *window_pages]:
        assert f"Certificate fingerprint (SHA-256): <code>{shown}</code>" in html
    assert lan_addresses(), "this machine has no LAN address for the Classroom view to list"
    for address in lan_addresses():
        assert f"https://{address}:{tls_central.port}/" in window_pages[0]
    # Made once: a restart serves the same certificate.
    tls_central.stop()
    tls_central.start()
    assert shown_fingerprint(central.data_dir, SELF_SIGNED) == shown
    assert get(health, pin(shown)) == 200


def _certificate(path: Path, *, days: int = 30, key: ec.EllipticCurvePrivateKey | None = None) -> Path:
    """A certificate for 127.0.0.1 as school IT might supply it; returns its key's file."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "labrunner.school.example")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=60))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("labrunner.school.example")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file = path.with_suffix(".key")
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return key_file


def serve_once(data_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`serve` expected to refuse to start (a hang, i.e. a server that started, fails the test)."""
    return subprocess.run(
        [sys.executable, "-m", "appliance", "--data-dir", str(data_dir), "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        check=False,
    )


def test_supplied_files_are_served_and_a_bad_pair_is_refused_at_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "appliance"
    ok(cli(data_dir, "migrate"))
    cert = tmp_path / "school.pem"
    key = _certificate(cert)
    supplied = {"LABRUNNER_TLS": "files", "LABRUNNER_TLS_CERT_FILE": str(cert), "LABRUNNER_TLS_KEY_FILE": str(key)}
    expected = fingerprint(x509.load_pem_x509_certificate(cert.read_bytes()).public_bytes(serialization.Encoding.DER))
    assert shown_fingerprint(data_dir, supplied) == expected
    server = ApplianceProcess(data_dir, free_port(), env=supplied)
    server.start()
    try:
        assert get(server.url + "/healthz", pin(expected)) == 200
    finally:
        server.stop()
    assert not (data_dir / "tls-cert.pem").exists(), "a supplied certificate is not replaced by a self-made one"

    other_cert = tmp_path / "other.pem"
    other_key = _certificate(other_cert)
    refused = serve_once(data_dir, {**supplied, "LABRUNNER_TLS_KEY_FILE": str(other_key)})
    assert refused.returncode == 2, refused.stderr
    assert f"the TLS key {other_key} does not belong to the certificate {cert}" in refused.stderr, refused.stderr

    expired = tmp_path / "expired.pem"
    expired_key = _certificate(expired, days=-1)
    refused = serve_once(
        data_dir, {**supplied, "LABRUNNER_TLS_CERT_FILE": str(expired), "LABRUNNER_TLS_KEY_FILE": str(expired_key)}
    )
    assert refused.returncode == 2 and f"the TLS certificate {expired} expired on" in refused.stderr, refused.stderr

    refused = serve_once(data_dir, {**supplied, "LABRUNNER_TLS_CERT_FILE": str(tmp_path / "missing.pem")})
    assert refused.returncode == 2 and "cannot be read" in refused.stderr, refused.stderr


def push(classroom: Classroom, url: str, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {"LABRUNNER_SYNC_CENTRAL_URL": url} | {f"LABRUNNER_{k.upper()}": v for k, v in settings.items()}
    return cli(classroom.data_dir, "sync", "--now", env=env)


def failed_codes(classroom: Classroom, job: str) -> list[str]:
    """The error codes of the classroom's failed runs of the scheduler job `job`."""
    with sql(classroom.data_dir) as conn:
        rows = conn.execute("SELECT detail FROM job_runs WHERE job = ? AND outcome = 'failed'", (job,))
        return [json.loads(row[0])["error"]["code"] for row in rows]


def test_a_classroom_pushes_over_https_to_the_pinned_central_only(
    classroom: Classroom, central: Central, tls_central: ApplianceProcess
) -> None:
    shown = shown_fingerprint(central.data_dir, SELF_SIGNED)
    before = synced_state(central)
    # A man in the middle (here: any other certificate) gets nothing.
    wrong = push(classroom, tls_central.url, sync_central_fingerprint="AB:" * 31 + "CD")
    assert wrong.returncode == 1 and "(sync_tls_mismatch)" in wrong.stderr, wrong.stderr
    assert shown in wrong.stderr, "the message names the certificate the central showed"
    # Without a pin the system's authorities decide: a self-signed certificate is not trusted.
    untrusted = push(classroom, tls_central.url)
    assert untrusted.returncode == 1 and "(sync_tls_untrusted)" in untrusted.stderr, untrusted.stderr
    assert synced_state(central) == before
    assert acked(classroom.data_dir) is None
    assert failed_codes(classroom, "sync_push") == ["sync_tls_mismatch", "sync_tls_untrusted"]

    pushed = ok(push(classroom, tls_central.url, sync_central_fingerprint=shown.lower().replace(":", "")))
    assert "acknowledged" in pushed, pushed
    assert local_ids(central, "synced_submissions") == classroom.submission_ids
    mark = acked(classroom.data_dir)
    assert mark is not None and mark["watermark"] == change_counter(classroom.data_dir)
    # A school's own CA file (here the certificate itself) works as well.
    again = ok(push(classroom, tls_central.url, sync_ca_file=str(central.data_dir / "tls-cert.pem")))
    assert "nothing new" in again, again


def test_a_pin_needs_an_https_central(classroom: Classroom) -> None:
    refused = push(classroom, "http://127.0.0.1:1", sync_central_fingerprint="AB:" * 31 + "CD")
    assert refused.returncode == 2 and "need an https sync_central_url" in refused.stderr, refused.stderr
    refused = push(classroom, "https://127.0.0.1:1", sync_central_fingerprint="AB:CD")
    assert refused.returncode == 2 and "64 hex digits" in refused.stderr, refused.stderr


def _head(port: int, headers: dict[str, str], length: int) -> bytes:
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (
        f"POST /api/sync/bundles HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/zip\r\n"
        f"Content-Length: {length}\r\n{lines}Connection: close\r\n\r\n"
    ).encode()


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Read one whole HTTP answer (not waiting for the server to drain what a stalled push announced)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed without an answer"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "the server closed before its whole answer"
        body += chunk
    return int(status_line.split()[1]), headers, json.loads(body)


def stalled_push(port: int, headers: dict[str, str], body: bytes, sent: int) -> socket.socket:
    """A push that announces `body` but sends only its first `sent` bytes, then waits."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(_head(port, headers, len(body)) + body[:sent])
    return sock


def raw_post(port: int, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(_head(port, headers, len(body)) + body)
        return _answer(sock)


PUSHES_PER_ADDRESS = 200
PROBES = 120


@pytest.fixture
def central_server(central: Central) -> Iterator[ApplianceProcess]:
    env = {"LABRUNNER_SYNC_PUSH_MAX_PER_ADDRESS": str(PUSHES_PER_ADDRESS)}
    with serving(central.data_dir, env=env) as server:
        yield server


def test_the_push_route_reads_no_body_before_the_push_is_signed_by_a_registered_key(
    tmp_path: Path, classroom: Classroom, central: Central, central_server: ApplianceProcess
) -> None:
    port = central_server.port
    bundle = tmp_path / "bundle.zip"
    classroom.export(bundle)
    genuine = bundle.read_bytes()
    stranger = make_classroom(tmp_path / "stranger")
    stranger_bundle = tmp_path / "stranger.zip"
    stranger.export(stranger_bundle)
    before = synced_state(central)
    huge = b"\0" * 200_000_000
    pushes = 0

    def refused(answer: tuple[int, dict[str, str], dict[str, Any]], status: int, code: str) -> None:
        nonlocal pushes
        pushes += 1
        assert (answer[0], answer[2]["error"]["code"]) == (status, code), answer

    # Pushes announcing 200 MB and sending 10 bytes are answered without the body: an unregistered
    # key; a registered (public) key named by someone who cannot sign with it.
    with stalled_push(port, {KEY_HEADER: stranger.public_key}, huge, 10) as sock:
        refused(_answer(sock), 403, "bundle_unknown_key")
    forged = {**signed_by(stranger.data_dir, huge), KEY_HEADER: classroom.public_key}
    with stalled_push(port, forged, huge, 10) as sock:
        refused(_answer(sock), 401, "push_signature_invalid")
    refused(raw_post(port, {}, genuine), 401, "bundle_key_required")
    # Signed by the classroom's key, but another appliance's bundle; and not the body it signed.
    mismatched = signed_by(classroom.data_dir, stranger_bundle.read_bytes())
    refused(raw_post(port, mismatched, stranger_bundle.read_bytes()), 400, "bundle_key_mismatch")
    altered = genuine[:-1] + bytes([genuine[-1] ^ 1])
    refused(raw_post(port, signed_by(classroom.data_dir, genuine), altered), 400, "bundle_digest_mismatch")
    assert synced_state(central) == before

    # While one push is being read, a second is answered at once: 503 with Retry-After. (The second
    # is one that writes nothing if it came first: sent until the first push holds the import.)
    headers = signed_by(classroom.data_dir, genuine)
    first = stalled_push(port, headers, genuine, 100)
    try:
        # Up to 30 s for the stalled push to hold the slot (a loaded CI machine took longer than
        # 5 s), in probes few enough to stay under the address's push limit (PROBES < the limit).
        for _ in range(PROBES):
            time.sleep(0.25)
            status, answered, answer = raw_post(port, mismatched, stranger_bundle.read_bytes())
            pushes += 1
            if status != 400:
                break
            if select.select([first], [], [], 0)[0]:
                # A probe held the slot when the stalled push arrived, which was answered busy: anew.
                _answer(first)
                pushes += 1
                first.close()
                first = stalled_push(port, headers, genuine, 100)
        assert (status, answer["error"]["code"]) == (503, "sync_busy"), answer
        assert answered["retry-after"] == "5"
        # The classroom's own outbox meanwhile: a failed attempt it retries, no acknowledgement.
        busy = push(classroom, central_server.url)
        pushes += 1
        assert busy.returncode == 1 and "(sync_busy)" in busy.stderr, busy.stderr
        assert acked(classroom.data_dir) is None and failed_codes(classroom, "sync_push") == ["sync_busy"]
        assert synced_state(central) == before
        first.sendall(genuine[100:])
        status, _, answer = _answer(first)
        pushes += 1
    finally:
        first.close()
    assert status == 200 and answer["already"] is False, answer
    assert local_ids(central, "synced_submissions") == classroom.submission_ids
    status, _, answer = raw_post(port, headers, genuine)
    pushes += 1
    assert status == 200 and answer["already"] is True, answer

    # Every push from an address counts, refused ones too: the one past the limit gets 429.
    while pushes < PUSHES_PER_ADDRESS:
        refused(raw_post(port, {}, b""), 401, "bundle_key_required")
    status, answered, answer = raw_post(port, headers, genuine)
    assert status == 429 and answer["error"]["code"] == "sync_push_rate_limited", answer
    assert int(answered["retry-after"]) >= 1


def test_a_push_whose_body_stops_coming_frees_the_import_slot(
    tmp_path: Path, classroom: Classroom, central: Central
) -> None:
    server = ApplianceProcess(central.data_dir, free_port(), env={"LABRUNNER_SYNC_PUSH_READ_TIMEOUT_S": "1"})
    server.start()
    try:
        bundle = tmp_path / "bundle.zip"
        classroom.export(bundle)
        genuine = bundle.read_bytes()
        headers = signed_by(classroom.data_dir, genuine)
        # A dropped link: signed, announced, and then nothing more.
        with stalled_push(server.port, headers, genuine, 100) as sock:
            status, _, answer = _answer(sock)
        assert (status, answer["error"]["code"]) == (408, "bundle_read_timeout"), answer
        status, _, answer = raw_post(server.port, headers, genuine)
        assert status == 200 and answer["already"] is False, answer
    finally:
        server.stop()


def test_the_problem_set_fetch_takes_the_pinned_central_only(
    classroom: Classroom, central: Central, tls_central: ApplianceProcess
) -> None:
    """The fetch carries hidden tests down: it checks the central's certificate as the push does."""
    subprocess.run(
        [sys.executable, "-m", "appliance", "--data-dir", str(central.data_dir), "users", "create", "--role",
         "teacher", "--username", "curriculum", "--password-stdin"],
        input=DEFAULT_PASSWORD, text=True, check=True, capture_output=True, cwd=REPO_ROOT,
    )  # fmt: skip
    with sql(central.data_dir) as conn:
        owner = conn.execute("SELECT id FROM users WHERE username = 'curriculum'").fetchone()[0]
        problem = conn.execute(
            "INSERT INTO problems (owner_id, title, statement, language, time_limit_ms, memory_limit_mb, comparison,"
            " created_at, updated_at) VALUES (?, 'Loops', 'Count.', 'python', 2000, 256, 'exact', ?, ?)",
            (owner, NOW, NOW),
        ).lastrowid
    ok(cli(central.data_dir, "publish", "--name", "Loops", str(problem)))
    key = dict(line.split(":", 1) for line in ok(cli(central.data_dir, "identity")).splitlines())["public key"]
    ok(cli(classroom.data_dir, "publishers", "add", "Central", key.strip()))

    wrong = push(classroom, tls_central.url, sync_central_fingerprint="AB:" * 31 + "CD")
    assert wrong.returncode == 1, wrong.stderr
    assert failed_codes(classroom, "problem_sets_fetch") == ["sync_tls_mismatch"]
    with sql(classroom.data_dir) as conn:
        assert conn.execute("SELECT count(*) FROM problem_set_inbox").fetchone()[0] == 0

    ok(push(classroom, tls_central.url, sync_central_fingerprint=shown_fingerprint(central.data_dir, SELF_SIGNED)))
    with sql(classroom.data_dir) as conn:
        assert [row[0] for row in conn.execute("SELECT name FROM problem_set_inbox")] == ["Loops"]
