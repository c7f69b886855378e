"""Optional HTTPS (setting `tls`): the certificate the appliance serves and its fingerprint.

`self-signed`: a certificate made once with `cryptography` at first start in the data folder (a
P-256 key written owner-only and atomically, SANs for this machine's LAN addresses, its hostname
and loopback, ten years valid), regenerated only when missing: its fingerprint is what a teacher
or a classroom pins, so it must not change under them. `files`: a certificate and key from school
IT, checked at start (readable, key matching, valid now), with a message naming what is wrong.

No certificate authority vouches for a self-signed certificate: a browser warns once, and a
classroom's outbox pins its SHA-256 fingerprint (`sync_central_fingerprint`) instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance.atomic_files import replace_with
from appliance.lan import lan_addresses
from appliance.settings import Settings, SettingsError

CERT_FILE = "tls-cert.pem"
KEY_FILE = "tls-key.pem"
VALID_DAYS = 3650


class TlsError(SettingsError):
    """The certificate or key cannot be served; the message says which file and why."""


@dataclass(frozen=True)
class Tls:
    mode: str
    cert_file: Path
    key_file: Path
    fingerprint: str
    not_after: dt.datetime
    names: tuple[str, ...]

    @property
    def short_fingerprint(self) -> str:
        """The first 8 bytes, for reading aloud; compare the whole one before pinning it."""
        return self.fingerprint[:23]

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise TlsError(f"the TLS certificate {self.cert_file} and key cannot be served: {exc}") from None
        return context


def fingerprint(der: bytes) -> str:
    """SHA-256 of a certificate's DER in the usual `AB:CD:…` form (what browsers show)."""
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def load(settings: Settings) -> Tls | None:
    """The certificate to serve (made now when self-signed and missing), or None when tls is off."""
    if settings.tls == "off":
        return None
    if settings.tls == "self-signed":
        cert_file, key_file = settings.data_dir / CERT_FILE, settings.data_dir / KEY_FILE
        if not (cert_file.exists() and key_file.exists()):
            _make_self_signed(cert_file, key_file, _names(settings.host))
    else:
        cert_file, key_file = Path(settings.tls_cert_file).expanduser(), Path(settings.tls_key_file).expanduser()
    checked = _checked(settings.tls, cert_file, key_file)
    checked.server_context()  # what the ssl module refuses is told now, not at the first connection
    return checked


def _names(host: str) -> list[str]:
    names = ["localhost", socket.gethostname(), "127.0.0.1", "::1", *lan_addresses()]
    if host not in ("", "0.0.0.0", "::"):
        names.append(host)
    return list(dict.fromkeys(n for n in names if n))


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _make_self_signed(cert_file: Path, key_file: Path, names: list[str]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Labrunner on {socket.gethostname()}"[:64])])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # The key first, so a crash between the two leaves a key without a certificate: both are made anew.
    replace_with(key_file, pem_key, 0o600)
    replace_with(cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsError(f"the TLS {what} {path} cannot be read: {exc.strerror or exc}") from None


def _checked(mode: str, cert_file: Path, key_file: Path) -> Tls:
    try:
        cert = x509.load_pem_x509_certificates(_read(cert_file, "certificate"))[0]
    except ValueError:
        raise TlsError(f"the TLS certificate {cert_file} is not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(_read(key_file, "key"), password=None)
    except (ValueError, TypeError) as exc:
        raise TlsError(f"the TLS key {key_file} is not an unencrypted PEM private key ({exc})") from None
    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*raw) != cert.public_key().public_bytes(*raw):
        raise TlsError(f"the TLS key {key_file} does not belong to the certificate {cert_file}")
    now = dt.datetime.now(dt.UTC)
    if cert.not_valid_after_utc < now:
        raise TlsError(f"the TLS certificate {cert_file} expired on {cert.not_valid_after_utc:%Y-%m-%d}")
    if cert.not_valid_before_utc > now:
        raise TlsError(f"the TLS certificate {cert_file} is not valid before {cert.not_valid_before_utc:%Y-%m-%d}")
    try:
        names = tuple(str(n.value) for n in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        names = ()
    der = cert.public_bytes(serialization.Encoding.DER)
    return Tls(mode, cert_file, key_file, fingerprint(der), cert.not_valid_after_utc, names)
