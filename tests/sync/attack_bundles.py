"""Crafted bundles for the attack tests (tests/sync/test_attacks_*.py) and for tests that need a
received set (tests/ui/test_problem_sets_page.py): signed with keys the test holds, so each one
passes the signature check and reaches the code behind it."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance import identity, sync_bundle

SECRET_IN = "ATTACK-HIDDEN-IN-41c9"
SECRET_OUT = "ATTACK-HIDDEN-OUT-41c9"
NOW = "2026-01-05T10:00:00.000000Z"


@dataclass
class Signer:
    """A key the attacker (or the trusted publisher the test plays) holds."""

    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    appliance_id: str = "ab" * 16

    @property
    def public_key(self) -> str:
        return identity.public_key_text(self.key.public_key())


def problem(origin: int = 1, title: str = "Crafted", **changes: Any) -> dict[str, Any]:
    """A problem record as a set carries it: one visible test and one hidden test with the secrets."""
    record: dict[str, Any] = {
        "id": origin,
        "title": title,
        "statement": "Add two numbers.",
        "language": "python",
        "time_limit_ms": 2000,
        "memory_limit_mb": 256,
        "comparison": "exact",
        "tolerance": 0.0,
        "graphical": None,
        "hidden_feedback": "summary",
        "starter_code": "",
        "test_cases": [
            {
                "position": 1,
                "name": "shown",
                "stdin": "1 2\n",
                "expected_stdout": "3\n",
                "visibility": "visible",
                "reveal_at": None,
                "weight": 1.0,
            },
            {
                "position": 2,
                "name": "secret",
                "stdin": SECRET_IN,
                "expected_stdout": SECRET_OUT,
                "visibility": "hidden",
                "reveal_at": None,
                "weight": 1.0,
            },
        ],
        "assets": [],
    }
    record.update(changes)
    return record


def problem_set(
    signer: Signer,
    records: list[dict[str, Any]],
    members: Mapping[str, bytes] | None = None,
    *,
    set_id: str = "5e" * 16,
    version: int = 1,
    name: str = "Crafted set",
) -> bytes:
    """A `problem_set` bundle signed by `signer`; `members` adds (or, by name, replaces) members."""
    head = {
        "kind": "problem_set",
        "appliance_id": signer.appliance_id,
        "public_key": signer.public_key,
        "set_id": set_id,
        "name": name,
        "version": version,
        "titles": [str(r.get("title")) for r in records],
    }
    return sync_bundle.write(head, {"problems.jsonl": sync_bundle.json_lines(records), **(members or {})}, signer.key)


def classroom(
    signer: Signer,
    *,
    users: list[dict[str, Any]] = (),  # type: ignore[assignment]
    classes: list[dict[str, Any]] = (),  # type: ignore[assignment]
    problems: list[dict[str, Any]] = (),  # type: ignore[assignment]
    submissions: list[dict[str, Any]] = (),  # type: ignore[assignment]
    members: Mapping[str, bytes] | None = None,
    watermark: int = 10,
    since: int = 0,
    generation: int = 1,
) -> bytes:
    """A `classroom` bundle signed by `signer`, as a (possibly rogue) classroom appliance pushes it."""
    head = {
        "kind": "classroom",
        "appliance_id": signer.appliance_id,
        "public_key": signer.public_key,
        "generation": generation,
        "since": since,
        "watermark": watermark,
        "policy": {"real_names": False, "submission_code": False},
    }
    body = {
        "users.jsonl": sync_bundle.json_lines(users),
        "classes.jsonl": sync_bundle.json_lines(classes),
        "problems.jsonl": sync_bundle.json_lines(problems),
        "submissions.jsonl": sync_bundle.json_lines(submissions),
        **(members or {}),
    }
    return sync_bundle.write(head, body, signer.key)


def raw_zip(members: list[tuple[str, bytes]]) -> bytes:
    """A zip holding exactly these members in this order (duplicates allowed), as a forger writes it."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members:
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return out.getvalue()
