"""Ed25519-signed JSON messages between the server and its runner hosts.

The broker's password keeps strangers off the broker; these signatures keep anyone who does reach
it (a leaked password, a host that was not registered) from handing a host a plan the server did
not write, or the server a transcript or a heartbeat a registered host did not write. Each kind of
message signs under its own context, so one kind can never be replayed as another.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PLAN = "labrunner-plan-v1"
TRANSCRIPT = "labrunner-transcript-v1"
HEARTBEAT = "labrunner-heartbeat-v1"


class SignatureRefused(ValueError):
    """Not signed by the expected key, under the expected context, or not a message at all."""


def _signed_bytes(context: str, body: str) -> bytes:
    return context.encode("ascii") + b"\n" + body.encode("utf-8")


def seal(context: str, payload: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, str]:
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    signature = key.sign(_signed_bytes(context, body))
    return {"body": body, "sig": base64.b64encode(signature).decode("ascii")}


def open_sealed(context: str, message: object, key: Ed25519PublicKey) -> dict[str, Any]:
    """The payload, once its signature under `context` checks out with `key`."""
    if not isinstance(message, dict) or not isinstance(message.get("body"), str):
        raise SignatureRefused("not a signed message")
    body, signature = message["body"], message.get("sig")
    try:
        key.verify(base64.b64decode(str(signature), validate=True), _signed_bytes(context, body))
        payload = json.loads(body)
    except (InvalidSignature, binascii.Error, ValueError):
        raise SignatureRefused("the signature does not match") from None
    if not isinstance(payload, dict):
        raise SignatureRefused("a signed message holds an object")
    return payload


def unverified_payload(message: object) -> dict[str, Any] | None:
    """What a message says about itself before its key is known (to find which key to check
    with); nothing read here may be trusted until `open_sealed` checked it."""
    if not isinstance(message, dict) or not isinstance(message.get("body"), str):
        return None
    try:
        payload = json.loads(message["body"])
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None
