"""This appliance's signing identity for sync: an Ed25519 key pair, and the secret its pseudonyms
are made with, both kept in the data folder beside `appliance-id` (not in the database, for the
same reason: restoring another machine's database must not change who signs this machine's
bundles). The private key and the secret are written owner-only before they hold anything.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance import appliance_id
from appliance.atomic_files import replace_with

KEY_FILE = "sync-identity.key"
PSEUDONYM_FILE = "sync-pseudonym.key"
GENERATION_FILE = "sync-generation"
# The public key as text, as `labrunner identity` prints it and `labrunner appliances add` takes it.
KEY_PREFIX = "ed25519:"


class KeyTextError(ValueError):
    """Text that is not a public key in this program's form."""


@dataclass(frozen=True)
class Identity:
    appliance_id: str
    private_key: Ed25519PrivateKey
    pseudonym_secret: bytes
    # Which life of this appliance's database its change counter counts in (see `bump_generation`).
    generation: int

    @property
    def public_key_text(self) -> str:
        return public_key_text(self.private_key.public_key())

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.private_key.public_key())


def public_key_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return KEY_PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def parse_public_key(text: str) -> Ed25519PublicKey:
    body = text.strip()
    if not body.startswith(KEY_PREFIX):
        raise KeyTextError(f"a public key starts with {KEY_PREFIX!r} (copy it from `labrunner identity`)")
    encoded = body[len(KEY_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        raise KeyTextError("the public key is not valid base64") from None
    if len(raw) != 32 or public_key_text(Ed25519PublicKey.from_public_bytes(raw)) != body:
        raise KeyTextError("the public key is not 32 bytes of Ed25519 key in canonical form")
    return Ed25519PublicKey.from_public_bytes(raw)


def fingerprint(key: Ed25519PublicKey) -> str:
    """64 bits of the key's SHA-256 in four groups: short enough to read out over the phone when
    the central admin registers a classroom's key."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    digest = hashlib.sha256(raw).hexdigest()[:16]
    return "-".join(digest[i : i + 4] for i in range(0, 16, 4))


def _write_private(path: Path, data: bytes) -> None:
    # Atomic: a crash leaves either no key or the whole key, never a half one that a start would refuse.
    replace_with(path, data, 0o600)


def _load_or_create_key(data_dir: Path) -> Ed25519PrivateKey:
    path = data_dir / KEY_FILE
    if not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write_private(path, pem)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key


def _load_or_create_secret(data_dir: Path) -> bytes:
    path = data_dir / PSEUDONYM_FILE
    if not path.exists():
        _write_private(path, secrets.token_hex(32).encode("ascii") + b"\n")
    return bytes.fromhex(path.read_text(encoding="ascii").strip())


def ensure_keys(data_dir: Path) -> None:
    """The key pair and pseudonym secret, made at the server's first start. Not the appliance id:
    that stays made at its first need (backup, export), so a fresh data folder still takes over a
    restored backup's id."""
    _load_or_create_key(data_dir)
    _load_or_create_secret(data_dir)


def signing_key(data_dir: Path) -> Ed25519PrivateKey:
    """This appliance's private key, without making its appliance id (see `ensure_keys`)."""
    return _load_or_create_key(data_dir)


def public_key_of(data_dir: Path) -> Ed25519PublicKey:
    """This appliance's public key, without making its appliance id (see `ensure_keys`)."""
    return signing_key(data_dir).public_key()


def generation(data_dir: Path) -> int:
    path = data_dir / GENERATION_FILE
    if not path.exists():
        return 1
    value = path.read_text(encoding="ascii").strip()
    if not value.isdigit() or not value.isascii():
        raise ValueError(f"{path} does not hold a generation number")
    return int(value)


def bump_generation(data_dir: Path) -> int:
    """After a restore: the database's change counter went back to the backup's, so its watermarks
    would repeat numbers the central instance already took for other changes. A new generation
    orders every later bundle after all earlier ones and makes the central instance ask for a full
    export (which then replaces its copy). Kept beside the key, not in the database the restore
    brought back."""
    value = generation(data_dir) + 1
    tmp = data_dir / (GENERATION_FILE + ".tmp")
    tmp.write_text(f"{value}\n", encoding="ascii")
    os.replace(tmp, data_dir / GENERATION_FILE)
    return value


def ensure(data_dir: Path) -> Identity:
    """The whole identity, made at the first need (`labrunner identity`, an export)."""
    return Identity(
        appliance_id.ensure(data_dir),
        _load_or_create_key(data_dir),
        _load_or_create_secret(data_dir),
        generation(data_dir),
    )


def pseudonym(identity: Identity, user_id: int) -> str:
    """A user's stable name in this appliance's bundles: an HMAC of the local id under the
    appliance's own secret, so the central instance (or anyone holding bundles) cannot walk ids back
    to accounts, and two appliances' user 7 get different names. Not the erasure pseudonym
    ("erased #<id>"), which is a local, readable marker."""
    mac = hmac.new(identity.pseudonym_secret, f"user:{user_id}".encode("ascii"), hashlib.sha256).digest()
    return "p-" + base64.b32encode(mac[:10]).decode("ascii").lower()
