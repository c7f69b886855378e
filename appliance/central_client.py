"""This appliance as a client of its central instance (`sync_central_url`): the push and the
problem-set fetch both open their session here and turn what went wrong into one stable code.

On https the certificate is checked against its pinned SHA-256 fingerprint alone
(`sync_central_fingerprint`; self-signed too, the name not checked: the pin says more), the
certificate authorities of `sync_ca_file`, or the system's."""

from __future__ import annotations

import ipaddress
import json
import ssl
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from appliance.errors import AppError, Conflict, Unavailable
from appliance.settings import Settings


def check(settings: Settings) -> ssl.SSLContext | aiohttp.Fingerprint | bool:
    if settings.sync_central_fingerprint:
        return aiohttp.Fingerprint(bytes.fromhex(settings.sync_central_fingerprint.replace(":", "").strip()))
    if settings.sync_ca_file:
        return ssl.create_default_context(cafile=str(Path(settings.sync_ca_file).expanduser()))
    return True


def plain_http_warning(settings: Settings) -> str | None:
    """What anyone between this classroom and a central instance reached over plain HTTP reads: the
    pushed bundles and the fetched problem sets, hidden tests included (signatures stop changes, not
    reading). Loopback never leaves the machine."""
    parts = urlsplit(settings.sync_central_url)
    if parts.scheme != "http" or parts.hostname in ("localhost", None) or _is_loopback(parts.hostname):
        return None
    return (
        f"sync_central_url {settings.sync_central_url} is plain HTTP: anyone on the way reads the pushed"
        " bundles (students' work) and the fetched problem sets (hidden tests included); serve the central"
        " instance over HTTPS (tls = self-signed) and pin it with sync_central_fingerprint"
    )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SyncRefused(Conflict):
    """The central instance refused what was sent or asked for; its code is the central's own."""


def session(settings: Settings) -> aiohttp.ClientSession:
    timeout = aiohttp.ClientTimeout(total=settings.sync_timeout_s, connect=settings.sync_connect_timeout_s)
    return aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(ssl=check(settings)))


def _colons(digest: bytes) -> str:
    return ":".join(f"{b:02X}" for b in digest)


def unreachable(error: aiohttp.ClientError | TimeoutError, central: str) -> Unavailable:
    """The stable error for a request that got no answer: a refused certificate, or no connection."""
    refused = _certificate_refused(error, central) if isinstance(error, aiohttp.ClientError) else None
    if refused is not None:
        return refused
    return Unavailable(
        "sync_unreachable", f"the central instance {central} did not answer: {type(error).__name__} {error}".strip()
    )


def answer_error(status: int, body: bytes, central: str, what: str) -> AppError:
    """The stable error for a central instance's answer that is not a success: its own refusal
    (4xx with an error code), busy importing another push, or anything else."""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    error = answer.get("error") if isinstance(answer, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    if 400 <= status < 500 and isinstance(code, str):
        return SyncRefused(code, f"the central instance refused {what}: {error.get('message')}")
    if status == 503 and code == "sync_busy":
        # It imports one push at a time: this attempt is retried with the backoff, like any failed one.
        return Unavailable("sync_busy", f"the central instance {central} is importing another push; retried later")
    return Unavailable("sync_central_error", f"the central instance {central} answered HTTP {status}")


def _certificate_refused(error: aiohttp.ClientError, central: str) -> Unavailable | None:
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
