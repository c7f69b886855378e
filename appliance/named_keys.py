"""An admin's entry of another party's public key under a name they choose: a classroom's trusted
publisher (appliance/problem_sets_trust.py) or a central instance's registered appliance
(appliance/sync_appliances.py). One check for both: the two registers take the same entry."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.errors import Invalid
from appliance.identity import KeyTextError, fingerprint, parse_public_key, public_key_text

NAME_MAX_CHARS = 100


@dataclass(frozen=True)
class NamedKey:
    name: str
    key_text: str
    fingerprint: str


def checked(name: str, key_text: str, *, name_code: str, whose: str) -> NamedKey:
    """The name stripped, the key's canonical text and its fingerprint; otherwise Invalid with
    `name_code` (the message starts with `whose`) or `invalid_public_key`, the name checked first."""
    name = name.strip()
    if not name or len(name) > NAME_MAX_CHARS or not name.isprintable():
        raise Invalid(name_code, f"{whose} name is 1 to {NAME_MAX_CHARS} printable characters", field="name")
    try:
        key = parse_public_key(key_text)
    except KeyTextError as error:
        raise Invalid("invalid_public_key", str(error), field="public_key") from None
    return NamedKey(name, public_key_text(key), fingerprint(key))
