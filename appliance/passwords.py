"""Password hashing with scrypt (memory-hard): 16 MiB and ~50 ms per guess on this class of machine."""

from __future__ import annotations

import base64
import hmac
import os

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

N, R, P = 2**14, 8, 1
SALT_BYTES = 16
KEY_BYTES = 32


def _kdf(salt: bytes, n: int, r: int, p: int) -> Scrypt:
    return Scrypt(salt=salt, length=KEY_BYTES, n=n, r=r, p=p)


def hash_password(password: str) -> str:
    salt = os.urandom(SALT_BYTES)
    key = _kdf(salt, N, R, P).derive(password.encode("utf-8"))
    return f"scrypt${N}${R}${P}${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, n, r, p, salt_b64, key_b64 = encoded.split("$")
        if scheme != "scrypt":
            return False
        _kdf(base64.b64decode(salt_b64), int(n), int(r), int(p)).verify(
            password.encode("utf-8"), base64.b64decode(key_b64)
        )
        return True
    except (ValueError, InvalidKey):
        return False


# Compared against when the username does not exist, so both paths cost the same time.
DUMMY_HASH = hash_password(base64.b64encode(os.urandom(12)).decode())


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
