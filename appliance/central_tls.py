"""How this appliance checks the central instance's certificate on an https `sync_central_url`:
its pinned SHA-256 fingerprint alone (`sync_central_fingerprint`; self-signed too, the name not
checked: the pin says more), the certificate authorities of `sync_ca_file`, or the system's.
Every client session to the central instance (the push, and whatever else fetches from it) takes
its connector from here, and turns a refused certificate into a stable code with `refusal`."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp

from appliance.errors import Unavailable
from appliance.settings import Settings


def check(settings: Settings) -> ssl.SSLContext | aiohttp.Fingerprint | bool:
    if settings.sync_central_fingerprint:
        return aiohttp.Fingerprint(bytes.fromhex(settings.sync_central_fingerprint.replace(":", "").strip()))
    if settings.sync_ca_file:
        return ssl.create_default_context(cafile=str(Path(settings.sync_ca_file).expanduser()))
    return True


def connector(settings: Settings) -> aiohttp.TCPConnector:
    return aiohttp.TCPConnector(ssl=check(settings))


def _colons(digest: bytes) -> str:
    return ":".join(f"{b:02X}" for b in digest)


def refusal(error: aiohttp.ClientError, central: str) -> Unavailable | None:
    """The stable error for a certificate the check refused; None for any other client error."""
    if isinstance(error, aiohttp.ServerFingerprintMismatch):
        return Unavailable(
            "sync_tls_mismatch",
            f"the central instance {central} showed a certificate with SHA-256 {_colons(error.got)}, not the pinned"
            " sync_central_fingerprint: nothing was sent (another machine answers, or its certificate changed)",
        )
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        return Unavailable(
            "sync_tls_untrusted",
            f"the central instance {central} showed a certificate this appliance does not trust:"
            f" {error.certificate_error}; nothing was sent"
            " (pin it with sync_central_fingerprint or name its CA in sync_ca_file)",
        )
    return None
