"""The bundle format on its own (appliance/sync_bundle.py): deterministic bytes, and no byte of a
bundle can change without the bundle being refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance import erasure, identity, sync_bundle
from appliance.errors import AppError
from appliance.sync_bundle import BundleRefused

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
ASSET = b"\x89PNG not really"
HEAD = {"kind": "classroom", "appliance_id": "a" * 32, "public_key": "k", "generation": 1, "since": 0, "watermark": 7}
MAX = 1 << 20


def _members() -> dict[str, bytes]:
    return {
        "users.jsonl": sync_bundle.json_lines([{"id": 1, "name": "p-x", "role": "student"}]),
        "classes.jsonl": sync_bundle.json_lines([{"id": 1, "name": "7B", "members": [1]}]),
        # Line and paragraph separators other than "\n" stay inside their record.
        "problems.jsonl": sync_bundle.json_lines([{"id": 1, "title": "Sum\u2028of\x85two\r"}]),
        "submissions.jsonl": b"",
        "assets/" + hashlib.sha256(ASSET).hexdigest(): ASSET,
    }


def test_the_same_content_gives_the_same_bytes_whatever_the_order() -> None:
    members = _members()
    reordered = dict(reversed(list(members.items())))
    head = dict(reversed(list(HEAD.items())))
    assert sync_bundle.write(HEAD, members, KEY) == sync_bundle.write(head, reordered, KEY)
    bundle = sync_bundle.read(sync_bundle.write(HEAD, members, KEY), MAX)
    sync_bundle.verify(bundle, KEY.public_key())
    assert bundle.members == members and bundle.watermark == 7
    assert bundle.records("problems.jsonl") == [{"id": 1, "title": "Sum\u2028of\x85two\r"}]


def test_every_single_byte_changed_is_refused() -> None:
    raw = sync_bundle.write(HEAD, _members(), KEY)
    codes: set[str] = set()
    for position in range(len(raw)):
        altered = bytearray(raw)
        altered[position] ^= 0x01
        with pytest.raises(AppError) as refused:
            sync_bundle.verify(sync_bundle.read(bytes(altered), MAX), KEY.public_key())
        codes.add(refused.value.code)
    # Header bytes no hash covers (times, attributes) are caught by rebuilding the zip.
    assert codes <= {"bundle_tampered", "bundle_malformed", "bundle_bad_signature", "bundle_too_large"}, codes
    assert "bundle_tampered" in codes


def test_a_bundle_signed_by_another_key_is_refused() -> None:
    other = Ed25519PrivateKey.generate()
    bundle = sync_bundle.read(sync_bundle.write(HEAD, _members(), other), MAX)
    with pytest.raises(BundleRefused) as refused:
        sync_bundle.verify(bundle, KEY.public_key())
    assert refused.value.code == "bundle_bad_signature"


def test_a_member_the_manifest_does_not_list_is_refused() -> None:
    """The genuine signed manifest with one more member slipped in beside it."""
    raw = sync_bundle.write(HEAD, _members(), KEY)
    bundle = sync_bundle.read(raw, MAX)
    smuggled = sync_bundle._zip(
        {
            **bundle.members,
            "extra.jsonl": b"{}\n",
            sync_bundle.MANIFEST: bundle.manifest_bytes,
            sync_bundle.SIGNATURE: bundle.signature,
        }
    )
    with pytest.raises(BundleRefused) as refused:
        sync_bundle.verify(sync_bundle.read(smuggled, MAX), KEY.public_key())
    assert refused.value.code == "bundle_tampered"


def test_a_bundle_larger_than_the_limit_is_refused_before_it_is_unpacked() -> None:
    raw = sync_bundle.write(HEAD, _members(), KEY)
    with pytest.raises(AppError) as refused:
        sync_bundle.read(raw, len(raw) - 1)
    assert refused.value.code == "bundle_too_large"


def test_pseudonyms_are_stable_per_appliance_and_not_the_erasure_name(tmp_path: Path) -> None:
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
    one, two = identity.ensure(tmp_path / "one"), identity.ensure(tmp_path / "two")
    assert identity.pseudonym(one, 7) == identity.pseudonym(identity.ensure(tmp_path / "one"), 7)
    assert identity.pseudonym(one, 7) != identity.pseudonym(two, 7)
    assert identity.pseudonym(one, 7) != identity.pseudonym(one, 8)
    assert identity.pseudonym(one, 7) != erasure.pseudonym(7)


def test_public_key_text_round_trips_and_refuses_look_alikes() -> None:
    text = identity.public_key_text(KEY.public_key())
    assert identity.public_key_text(identity.parse_public_key(text)) == text
    # The last of 43 base64 characters carries two unused bits: another text for the same key bytes,
    # which would register one key twice under two spellings.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    look_alike = text[:-1] + alphabet[alphabet.index(text[-1]) ^ 1]
    for bad in ("", text[len(identity.KEY_PREFIX) :], text + "A", text[:-1], "ed25519:!!!!", look_alike):
        with pytest.raises(identity.KeyTextError):
            identity.parse_public_key(bad)


@pytest.mark.parametrize(
    ("head", "code"),
    [
        ({**HEAD, "kind": "lesson_plan"}, "bundle_unsupported_kind"),
        ({**HEAD, "kind": "problem_set"}, "bundle_malformed"),
        ({**HEAD, "since": 8}, "bundle_malformed"),
        ({**HEAD, "watermark": "7"}, "bundle_malformed"),
        ({**HEAD, "generation": 0}, "bundle_malformed"),
        ({**HEAD, "appliance_id": "../" + "a" * 29}, "bundle_malformed"),
    ],
)
def test_a_manifest_this_version_cannot_take_is_refused(head: dict[str, object], code: str) -> None:
    with pytest.raises(BundleRefused) as refused:
        sync_bundle.read(sync_bundle.write(head, _members(), KEY), MAX)
    assert refused.value.code == code
