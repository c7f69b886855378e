"""Red team of issue 12's HTTPS and the hardened push route, with real `serve` processes: a student
on the LAN with a laptop (old protocols, weak ciphers, the window's plain port, forwarded headers),
a local user of the classroom machine (the data folder, the TLS key and its temporary file), and a
man in the middle who captured a push (replays, swapped or endless bodies, spoofed addresses)."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import socket
import ssl
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance import central_client, sync_intake
from appliance.db import open_database
from appliance.identity import KEY_FILE
from appliance.lan import lan_addresses
from appliance.login_links import create_login_link
from appliance.server_record import read_file
from appliance.settings import SettingsError, load_settings
from appliance.sync_intake import DIGEST_HEADER, KEY_HEADER, SIGNATURE_HEADER
from tests.conftest import REPO_ROOT
from tests.runner.appliance_process import ApplianceProcess, create_account, free_port, serving
from tests.sync.conftest import Central, Classroom, cli, make_classroom, ok, sql, submit
from tests.sync.test_https import SELF_SIGNED, _answer, _certificate, _head, raw_post, stalled_push
from tests.sync.test_sync_push import local_ids, signed_by, synced_state

# --- a student on the LAN -------------------------------------------------------------------------


@pytest.fixture
def lan_server(tmp_path: Path) -> Iterator[tuple[Path, int, int]]:
    """A self-signed HTTPS appliance on every address (as a classroom runs it): its data folder,
    its served port and the window's plain loopback port."""
    data_dir = tmp_path / "appliance"
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LABRUNNER_")} | SELF_SIGNED
    log = tmp_path / "serve.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "appliance",
                "--data-dir",
                str(data_dir),
                "serve",
                "--host",
                "0.0.0.0",
                "--port",
                str(port),
            ],
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environ | {"LABRUNNER_LAN_ANNOUNCE": "false"},
        )
    try:
        deadline = time.monotonic() + 60
        record = None
        while record is None or record.window_port is None:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
            record = read_file(data_dir / "server.json")
        yield data_dir, port, record.window_port
    finally:
        process.terminate()
        process.wait(timeout=60)


def _handshake(port: int, context: ssl.SSLContext) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, context.wrap_socket(raw) as tls:
        return str(tls.version())


def _client(version: ssl.TLSVersion, ciphers: str = "ALL:@SECLEVEL=0") -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = context.maximum_version = version
    context.set_ciphers(ciphers)
    return context


def test_old_protocols_and_weak_ciphers_are_refused_on_the_https_port(lan_server: tuple[Path, int, int]) -> None:
    _, port, _ = lan_server
    # The client here can speak them all; the positive controls show the refusals are the server's.
    assert _handshake(port, _client(ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-GCM-SHA256")) == "TLSv1.2"
    assert _handshake(port, _client(ssl.TLSVersion.TLSv1_3)) == "TLSv1.3"
    for old in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            _handshake(port, _client(old))
    # No forward secrecy (RSA key exchange), SHA-1 MACs, 3DES, RC4, no encryption, no authentication.
    for weak in ("AES128-SHA", "AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-SHA", "DES-CBC3-SHA", "RC4-SHA", "NULL-SHA"):
        try:
            context = _client(ssl.TLSVersion.TLSv1_2, f"{weak}:@SECLEVEL=0")
        except ssl.SSLError:
            continue  # this OpenSSL cannot even offer it
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            _handshake(port, context)
    for anonymous in ("aNULL:@SECLEVEL=0", "eNULL:@SECLEVEL=0"):
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            _handshake(port, _client(ssl.TLSVersion.TLSv1_2, anonymous))
    # Plain HTTP to the TLS port gets no page (and no redirect that would invite plain HTTP).
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        sock.settimeout(10)
        answer = b""
        try:
            while chunk := sock.recv(4096):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    assert b"HTTP/1.1 " not in answer


def test_the_windows_plain_port_answers_loopback_only_and_no_header_makes_a_lan_client_local(
    lan_server: tuple[Path, int, int],
) -> None:
    data_dir, port, window_port = lan_server
    addresses = lan_addresses()
    assert addresses, "this machine has no LAN address to attack from"
    for address in addresses:
        with pytest.raises(OSError):
            socket.create_connection((address, window_port), timeout=5).close()
    with pytest.raises(OSError):
        socket.create_connection(("::1", window_port), timeout=5).close()
    assert urllib.request.urlopen(f"http://127.0.0.1:{window_port}/healthz", timeout=10).status == 200

    # A login link reached over HTTPS from a LAN address, claiming loopback in every header a proxy sets.
    create_account(data_dir, "teacher", "ms-lee")
    settings = load_settings(data_dir=data_dir, environ={})

    async def link() -> str:
        db = open_database(settings.database_location)
        await db.open()
        try:
            return (await create_login_link(db, settings, None))[0]
        finally:
            await db.close()

    token = asyncio.run(link())
    context = _client(ssl.TLSVersion.TLSv1_3)
    with socket.create_connection((addresses[0], port), timeout=10) as raw, context.wrap_socket(raw) as tls:
        tls.sendall(
            f"GET /desktop/login/{token} HTTP/1.1\r\nHost: 127.0.0.1:{window_port}\r\n"
            "X-Forwarded-For: 127.0.0.1\r\nForwarded: for=127.0.0.1;proto=http\r\nX-Real-IP: 127.0.0.1\r\n"
            "User-Agent: LabrunnerDesktop\r\nConnection: close\r\n\r\n".encode()
        )
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    head = answer.partition(b"\r\n\r\n")[0].decode()
    assert head.startswith("HTTP/1.1 403"), head
    assert "set-cookie" not in head.lower(), head
    assert b"link_not_local" in answer


# --- a local user of the classroom machine ----------------------------------------------------------


def test_a_new_data_folder_is_the_owners_alone(tmp_path: Path) -> None:
    """Before the fix it was made 0755 and the database 0644: any user of the machine could copy the
    accounts, the hidden tests and the students' work."""
    data_dir = tmp_path / "fresh" / "appliance"
    ok(cli(data_dir, "migrate"))
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700


def test_a_data_folder_or_tls_key_open_to_everyone_is_said_at_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "appliance"
    ok(cli(data_dir, "migrate"))
    cert = tmp_path / "school.pem"
    key = _certificate(cert)
    supplied = {"LABRUNNER_TLS": "files", "LABRUNNER_TLS_CERT_FILE": str(cert), "LABRUNNER_TLS_KEY_FILE": str(key)}
    key.chmod(0o600)
    assert "warning" not in ok(cli(data_dir, "tls", env=supplied)).lower()
    key.chmod(0o644)
    shown = ok(cli(data_dir, "tls", env=supplied))
    assert f"the TLS key {key} is readable by every user of this machine (mode 0644)" in shown, shown

    data_dir.chmod(0o755)
    server = ApplianceProcess(data_dir, free_port(), env=supplied)
    server.start()
    try:
        banner = server.log.read_text()
    finally:
        server.stop()
    assert f"Warning: the TLS key {key} is readable by every user" in banner, banner
    assert f"Warning: the data folder {data_dir} is open to every user of this machine (mode 0755)" in banner


def test_the_self_made_key_is_written_owner_only_and_never_through_a_planted_link(tmp_path: Path) -> None:
    data_dir = tmp_path / "appliance"
    data_dir.mkdir(mode=0o777)
    data_dir.chmod(0o777)  # as careless as it gets: anyone may plant files in it
    victim = tmp_path / "teacher-notes.txt"
    victim.write_text("precious\n")
    (data_dir / "tls-key.pem.tmp").symlink_to(victim)
    (data_dir / "tls-cert.pem.tmp").symlink_to(victim)
    shown = ok(cli(data_dir, "tls", env=SELF_SIGNED))
    assert victim.read_text() == "precious\n"
    key = data_dir / "tls-key.pem"
    assert not key.is_symlink() and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not (data_dir / "tls-key.pem.tmp").exists()
    # The certificate names this machine only: no folder, user or other detail of it.
    cert = x509.load_pem_x509_certificate((data_dir / "tls-cert.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    allowed = {"localhost", socket.gethostname(), "127.0.0.1", "::1", *lan_addresses()}
    assert {str(n.value) for n in names} <= allowed, names
    assert "fingerprint:" in shown and str(tmp_path) not in cert.subject.rfc4514_string()


# --- a man in the middle of a push ------------------------------------------------------------------


@pytest.fixture
def strict_central(central: Central) -> Iterator[ApplianceProcess]:
    with serving(central.data_dir, env={"LABRUNNER_SYNC_PUSH_MAX_PER_ADDRESS": "4"}) as server:
        yield server


def test_forwarded_headers_do_not_reset_the_per_address_push_limit(
    central: Central, strict_central: ApplianceProcess
) -> None:
    port = strict_central.port
    for n in range(4):
        spoofed = {"X-Forwarded-For": f"10.9.8.{n}", "Forwarded": f"for=10.9.8.{n}", "X-Real-IP": f"10.9.8.{n}"}
        status, _, answer = raw_post(port, spoofed, b"")
        assert (status, answer["error"]["code"]) == (401, "bundle_key_required"), answer
    status, _, answer = raw_post(port, {"X-Forwarded-For": "10.200.0.1"}, b"")
    assert (status, answer["error"]["code"]) == (429, "sync_push_rate_limited"), answer


def _raw(port: int, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + body)
        data = b""
        sock.settimeout(30)
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    return int(data.split(b" ", 2)[1]), data


def test_chunked_endless_and_smuggled_bodies_are_refused_unread(
    tmp_path: Path, classroom: Classroom, central: Central, strict_central: ApplianceProcess
) -> None:
    port = strict_central.port
    bundle = tmp_path / "bundle.zip"
    classroom.export(bundle)
    genuine = bundle.read_bytes()
    headers = signed_by(classroom.data_dir, genuine)
    before = synced_state(central)
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())

    # Chunked, no length: the signature covers a length, so there is none to check against.
    chunked = (
        f"POST /api/sync/bundles HTTP/1.1\r\nHost: x\r\nContent-Type: application/zip\r\n{lines}"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode()
    status, data = _raw(port, chunked, f"{len(genuine):x}\r\n".encode() + genuine + b"\r\n0\r\n\r\n")
    assert status == 400 and b"bundle_length_required" in data, data[:400]

    # Both a length and chunked (request smuggling): refused by the HTTP parser, nothing imported.
    both = (
        f"POST /api/sync/bundles HTTP/1.1\r\nHost: x\r\nContent-Type: application/zip\r\n{lines}"
        f"Content-Length: {len(genuine)}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode()
    status, data = _raw(port, both, f"{len(genuine):x}\r\n".encode() + genuine + b"\r\n0\r\n\r\n")
    assert status == 400, data[:400]
    assert synced_state(central) == before

    # A signed push announcing 10 GB, of which 10 bytes come: refused on its length alone, at once.
    huge = 10 * 1024**3
    key = serialization.load_pem_private_key((classroom.data_dir / KEY_FILE).read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    signature = key.sign(sync_intake._push_message("0" * 64, huge))
    announced = {
        **headers,
        SIGNATURE_HEADER: base64.urlsafe_b64encode(signature).decode().rstrip("="),
        DIGEST_HEADER: "0" * 64,
    }
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(_head(port, announced, huge) + b"0123456789")
        status, _, answer = _answer(sock)
    assert (status, answer["error"]["code"]) == (413, "bundle_too_large"), answer
    # The slot it held is free again: the genuine push goes through.
    status, _, answer = raw_post(port, headers, genuine)
    assert status == 200 and answer["already"] is False, answer


def test_a_captured_push_replayed_later_or_elsewhere_changes_nothing(
    tmp_path: Path, classroom: Classroom, central: Central, strict_central: ApplianceProcess
) -> None:
    port = strict_central.port
    first = tmp_path / "first.zip"
    classroom.export(first)
    with sql(classroom.data_dir) as conn:
        later = submit(conn, classroom.adult_id, classroom.problem_id, "accepted", 1.0)
        conn.execute("UPDATE jobs SET score = 0.5 WHERE id = ?", (classroom.submission_ids[0],))
    second = tmp_path / "second.zip"
    classroom.export(second)
    body = second.read_bytes()
    status, _, answer = raw_post(port, signed_by(classroom.data_dir, body), body)
    assert status == 200 and answer["already"] is False, answer
    assert later in local_ids(central, "synced_submissions")
    after = synced_state(central)
    # The older capture, replayed after the newer push, is refused and rolls nothing back.
    body = first.read_bytes()
    status, _, answer = raw_post(port, signed_by(classroom.data_dir, body), body)
    assert (status, answer["error"]["code"]) == (400, "bundle_replayed"), answer
    assert synced_state(central) == after

    # Replayed to a central instance that never registered the appliance: refused unread.
    other = tmp_path / "other-central"
    ok(cli(other, "migrate"))
    elsewhere = ApplianceProcess(other, free_port())
    elsewhere.start()
    try:
        body = second.read_bytes()
        status, _, answer = raw_post(elsewhere.port, signed_by(classroom.data_dir, body), body)
    finally:
        elsewhere.stop()
    assert (status, answer["error"]["code"]) == (403, "bundle_unknown_key"), answer
    with sql(other) as conn:
        assert conn.execute("SELECT count(*) FROM synced_submissions").fetchone()[0] == 0

    # Another registered appliance's key naming this push, and the import slot: a stalled push of a
    # stranger cannot hold it (refused before the slot is taken).
    stranger = make_classroom(tmp_path / "stranger")
    with stalled_push(port, {KEY_HEADER: stranger.public_key}, b"\0" * 10_000_000, 10) as sock:
        status, _, answer = _answer(sock)
    assert (status, answer["error"]["code"]) == (403, "bundle_unknown_key"), answer


def test_a_replayed_push_trickling_its_body_holds_up_its_own_appliance_only(
    tmp_path: Path, classroom: Classroom, central: Central, strict_central: ApplianceProcess
) -> None:
    """Whoever saw one push go by over plain HTTP can send its signed headers again and then the body
    a byte at a time: before the fix that held the central's one import slot for
    sync_push_read_timeout_s (10 minutes), again and again, and every classroom's push was refused
    (503 sync_busy) meanwhile. A push is now read outside the import slot, one at a time per appliance."""
    port = strict_central.port
    captured = tmp_path / "captured.zip"
    classroom.export(captured)
    body = captured.read_bytes()
    other = make_classroom(tmp_path / "room13")
    ok(cli(central.data_dir, "appliances", "add", "Room 13", other.public_key))
    theirs = tmp_path / "room13.zip"
    other.export(theirs)
    with stalled_push(port, signed_by(classroom.data_dir, body), body, 10) as held:
        time.sleep(0.5)  # the stalled push is being read
        status, _, answer = raw_post(port, signed_by(other.data_dir, theirs.read_bytes()), theirs.read_bytes())
        assert status == 200 and answer["already"] is False, answer
        assert set(local_ids(central, "synced_submissions")) >= set(other.submission_ids)
        # The appliance whose push is replayed waits until the trickle ends (use HTTPS: no one sees it).
        status, _, answer = raw_post(port, signed_by(classroom.data_dir, body), body)
        assert (status, answer["error"]["code"]) == (503, "sync_busy"), answer
        held.sendall(body[10:])
        status, _, answer = _answer(held)
    assert status == 200, answer


PIN = "AB:" * 31 + "CD"


@pytest.mark.parametrize(
    "pin",
    [PIN, PIN.lower(), PIN.replace(":", ""), f"  {PIN}\n"],
    ids=["colons", "lower-case", "no-colons", "spaces-around"],
)
def test_a_pin_in_any_usual_spelling_pins_those_32_bytes(tmp_path: Path, pin: str) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        overrides={"sync_central_url": "https://central.example", "sync_central_fingerprint": pin},
        environ={},
    )
    check = central_client.check(settings)
    assert isinstance(check, aiohttp.Fingerprint)
    assert check.fingerprint == bytes.fromhex(PIN.replace(":", ""))


@pytest.mark.parametrize(
    ("url", "pin", "ca"),
    [
        ("https://central.example", "AB:" * 19 + "CD", ""),  # SHA-1's length
        ("https://central.example", PIN + ":EF", ""),
        ("https://central.example", PIN[:-1], ""),
        ("https://central.example", PIN.replace("AB", "A B", 1), ""),
        ("https://central.example", PIN.replace("A", "\uff21"), ""),  # full-width letters
        ("https://central.example", PIN.replace("CD", "CG"), ""),
        ("http://central.example", PIN, ""),  # a pin means nothing without TLS
        ("https://central.example", PIN, "/etc/ssl/certs/ca-certificates.crt"),  # both: which one?
    ],
    ids=["sha1", "too-long", "too-short", "inner-space", "full-width", "not-hex", "plain-http", "with-ca"],
)
def test_a_pin_that_is_not_one_sha256_over_https_is_refused_at_start(
    tmp_path: Path, url: str, pin: str, ca: str
) -> None:
    with pytest.raises(SettingsError, match=r"sync_central_fingerprint|sync_ca_file"):
        load_settings(
            data_dir=tmp_path,
            overrides={"sync_central_url": url, "sync_central_fingerprint": pin, "sync_ca_file": ca},
            environ={},
        )


def test_a_body_left_unread_is_never_taken_for_the_next_request(
    central: Central, strict_central: ApplianceProcess
) -> None:
    """A refused push's body is not read; on a kept-alive connection it must not be parsed as a
    request of its own (smuggling a second request past the checks)."""
    port = strict_central.port
    smuggled = b"GET /api/admin/appliances HTTP/1.1\r\nHost: x\r\n\r\n"
    head = (
        f"POST /api/sync/bundles HTTP/1.1\r\nHost: x\r\nContent-Type: application/zip\r\n"
        f"Content-Length: {len(smuggled)}\r\n\r\n"
    ).encode()
    status, data = _raw(port, head + smuggled + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 401 and b"bundle_key_required" in data, data[:400]
    # Two answers: the refusal, then the honest request after the body; never one to the body itself.
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", data)
    assert statuses == [b"401", b"200"], data.decode(errors="replace")


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("http://192.0.2.10:8080", True),
        ("http://central.school.example", True),
        ("https://central.school.example", False),
        ("http://127.0.0.1:9", False),
        ("http://localhost:9", False),
    ],
)
def test_a_classroom_syncing_over_plain_http_is_told_what_anyone_on_the_way_reads(
    classroom: Classroom, url: str, warned: bool
) -> None:
    """A man in the middle of plain HTTP cannot change a push or a problem set (both signed), but he
    reads them: students' work one way, hidden tests the other. That is said at start."""
    server = ApplianceProcess(
        classroom.data_dir, free_port(), env={"LABRUNNER_SYNC_CENTRAL_URL": url, "LABRUNNER_SYNC_EVERY_S": "3600"}
    )
    server.start()
    try:
        banner = server.log.read_text()
    finally:
        server.stop()
    assert ("Warning: sync_central_url" in banner and "hidden tests included" in banner) == warned, banner
