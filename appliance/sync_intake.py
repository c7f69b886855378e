"""What the central instance checks before it reads a pushed bundle's body (up to
`sync_bundle_max_bytes`) into memory: pushes per address within a window, the signing key the
push names in its `X-Labrunner-Key` header (registered here, else refused unread), the push's
signature by that key, and one import at a time.

A public key is public: naming one proves nothing. So the push also signs, with the appliance's
key, the SHA-256 and length of the body it is about to send (`X-Labrunner-Bundle`,
`X-Labrunner-Signature`); only a holder of a registered key gets its body read, and the body must
then be the one signed. No timestamp is signed, on purpose: classroom machines' clocks are not to
be trusted, and a replayed header only sends again a bundle the central instance already took
(answered "already"); over HTTPS no one else sees a header to replay.

Each appliance's pushes are received one at a time: a second push naming the same key while one is
being read or imported is answered at once with 503 `sync_busy` and a Retry-After
(`sync_push_busy_retry_s`), not queued. The outbox treats it like any failed attempt and retries
with its backoff. Reading is not under the one import slot: someone who saw a push go by over plain
HTTP can send its signed headers again and the body a byte at a time, and that must hold up only
the appliance whose push it was (for up to `sync_push_read_timeout_s`), not every classroom. Bodies
read wait for the import slot in memory: at most one per registered appliance.

The per-address window is in memory (the `limits` library, through `throttle.WindowCounter`), as
the login throttle's: a restart forgetting it is harmless. Refused pushes count too: they are what
an address hammering the route sends.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from limits.storage import MemoryStorage

from appliance.db import Database
from appliance.errors import Forbidden, Invalid, RateLimited, Unauthorized, Unavailable
from appliance.identity import KeyTextError, parse_public_key, public_key_text
from appliance.settings import Settings
from appliance.store import sync as store
from appliance.throttle import Clock, Throttled, WindowCounter

KEY_HEADER = "X-Labrunner-Key"
DIGEST_HEADER = "X-Labrunner-Bundle"
SIGNATURE_HEADER = "X-Labrunner-Signature"
# Signed before the digest, so a signature made with the appliance's key for anything else (its
# bundles' manifests have their own context) is never a push's.
_PUSH_CONTEXT = b"labrunner-push/1\n"
# The central instance's signature on its answer to a push, with its own key and context.
_ACK_CONTEXT = b"labrunner-push-ack/1\n"


def _push_message(digest: str, length: int) -> bytes:
    return _PUSH_CONTEXT + f"{digest}\n{length}".encode("ascii")


def _ack_message(generation: int, watermark: int, digest: str) -> bytes:
    return _ACK_CONTEXT + f"{generation}:{watermark}:{digest}".encode()


def sign_ack(key: Ed25519PrivateKey, generation: int, watermark: int, digest: str) -> str:
    """The central instance's signature on "the bundle with this SHA-256 is in, up to this mark"."""
    return base64.urlsafe_b64encode(key.sign(_ack_message(generation, watermark, digest))).decode().rstrip("=")


def ack_signed_by(key_text: str, signature: object, generation: int, watermark: int, digest: str) -> bool:
    """Whether the central instance holding `key_text` signed this acknowledgement of this bundle."""
    if not isinstance(signature, str):
        return False
    try:
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        parse_public_key(key_text).verify(raw, _ack_message(generation, watermark, digest))
    except (binascii.Error, ValueError, KeyTextError, InvalidSignature):
        return False
    return True


def push_headers(key: Ed25519PrivateKey, public_key: str, body: bytes) -> dict[str, str]:
    """What the outbox sends before a body, for `registered_signer` on the central instance."""
    digest = hashlib.sha256(body).hexdigest()
    signature = key.sign(_push_message(digest, len(body)))
    return {
        KEY_HEADER: public_key,
        DIGEST_HEADER: digest,
        SIGNATURE_HEADER: base64.urlsafe_b64encode(signature).decode("ascii").rstrip("="),
    }


class SyncIntake:
    """The central instance's gate for pushes (one per app)."""

    def __init__(self, settings: Settings, clock: Clock = time.monotonic) -> None:
        self._storage = MemoryStorage()
        self._pushes = WindowCounter(
            self._storage, "sync-push-address", settings.sync_push_max_per_address, settings.sync_push_window_s, clock
        )
        self._busy_retry_s = settings.sync_push_busy_retry_s
        self._receiving: set[str] = set()
        self._import = asyncio.Lock()
        self._clock = clock
        self._next_sweep = clock() + settings.sync_push_window_s

    def count(self, address: str) -> None:
        """Count one push from `address`, or raise RateLimited (429 with Retry-After)."""
        if self._clock() >= self._next_sweep:
            self._next_sweep = self._clock() + self._pushes.window_s
            self._pushes.sweep()
        try:
            self._pushes.take(address)
        except Throttled as exc:
            raise RateLimited(
                "sync_push_rate_limited",
                f"too many pushes from this address; try again in {exc.retry_after} s",
                retry_after=exc.retry_after,
            ) from None

    @asynccontextmanager
    async def receiving(self, signer: str) -> AsyncIterator[None]:
        """Held while one push of the appliance `signer` is read and imported; a second one of it
        meanwhile is refused, unread. Taken with no await before it is set, so two cannot both take it."""
        if signer in self._receiving:
            raise Unavailable(
                "sync_busy",
                f"another push from this appliance is being received; try again in {self._busy_retry_s} s",
                retry_after=self._busy_retry_s,
            )
        self._receiving.add(signer)
        try:
            yield
        finally:
            self._receiving.discard(signer)

    @asynccontextmanager
    async def importing(self) -> AsyncIterator[None]:
        """One import at a time (they write the same tables); a body already read waits its turn."""
        async with self._import:
            yield


async def registered_signer(db: Database, headers: Mapping[str, str], length: int | None) -> tuple[str, str]:
    """The registered public key (canonical text) that signed this push of `length` bytes, and the
    SHA-256 the body must have; refused otherwise, before the body is read."""
    header, digest = headers.get(KEY_HEADER), headers.get(DIGEST_HEADER, "")
    if not header:
        raise Unauthorized(
            "bundle_key_required",
            f"name the bundle's signing key in the {KEY_HEADER} header"
            " (ed25519:..., as `labrunner identity` prints it)",
        )
    try:
        public_key = parse_public_key(header)
    except KeyTextError as error:
        raise Unauthorized("bundle_key_required", f"the {KEY_HEADER} header holds no public key: {error}") from None
    key = public_key_text(public_key)
    async with db.snapshot() as conn:
        registered = await store.appliance_by_key(conn, key)
    if registered is None:
        raise Forbidden(
            "bundle_unknown_key",
            "no appliance was registered here with the key this push names; if you trust the appliance, register"
            " its key with `labrunner appliances add NAME PUBLIC-KEY`; nothing was read or imported",
        )
    if length is None:
        raise Invalid("bundle_length_required", "send the bundle with a Content-Length (not chunked)")
    encoded = headers.get(SIGNATURE_HEADER, "")
    try:
        signature = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        public_key.verify(signature, _push_message(digest, length))
    except (binascii.Error, ValueError, InvalidSignature):
        raise Unauthorized(
            "push_signature_invalid",
            f"the push is not signed by the key it names ({DIGEST_HEADER} and {SIGNATURE_HEADER}); nothing was read",
        ) from None
    return key, digest


def check_digest(raw: bytes, digest: str) -> None:
    if hashlib.sha256(raw).hexdigest() != digest:
        raise Invalid(
            "bundle_digest_mismatch",
            f"the body is not the bundle the push signed (its {DIGEST_HEADER}); nothing was imported",
        )
