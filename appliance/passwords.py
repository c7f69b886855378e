"""Password hashing with scrypt (memory-hard): 16 MiB and ~50 ms per guess on this class of machine.

The server hashes and verifies only through `hash_password_async` and `verify_password_async`:
they run scrypt on a small thread pool of its own (scrypt releases the GIL), so a burst of logins
neither stalls the event loop for everyone else nor takes the threads other work relies on.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import os
from concurrent.futures import ThreadPoolExecutor

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


# At most this many hashes at once (16 MiB each): enough to keep the cores busy, bounded in memory.
_POOL = ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 1)), thread_name_prefix="labrunner-scrypt")


async def hash_password_async(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_POOL, hash_password, password)


async def verify_password_async(password: str, encoded: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(_POOL, verify_password, password, encoded)


# Compared against when the username does not exist, so both paths cost the same time.
DUMMY_HASH = hash_password(base64.b64encode(os.urandom(12)).decode())


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
