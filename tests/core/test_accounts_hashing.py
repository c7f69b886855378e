"""Passwords: scrypt at production cost, never stored or returned in clear."""

from __future__ import annotations

import pytest

from appliance import passwords

PRODUCTION_N = 2**14


def test_production_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the core suite lowers N for speed (tests/conftest.py `fast_passwords`)
    assert passwords.N == PRODUCTION_N
    encoded = passwords.hash_password("correct horse")
    scheme, n, r, p, _salt, _key = encoded.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", PRODUCTION_N, 8, 1)
    assert passwords.verify_password("correct horse", encoded)
    assert not passwords.verify_password("correct horsE", encoded)
    assert passwords.hash_password("correct horse") != encoded  # salted
    # Unknown usernames are checked against a hash of the same cost, so both take as long.
    assert passwords.DUMMY_HASH.split("$")[1] == str(PRODUCTION_N)


@pytest.mark.parametrize(
    "encoded", ["", "plain", "bcrypt$1$2$3$4$5", "scrypt$x$8$1$AAAA$AAAA", "scrypt$16384$8$1$!!$!!"]
)
def test_malformed_hashes_never_verify(encoded: str) -> None:
    assert passwords.verify_password("anything", encoded) is False
