"""Attacks on the bundle format itself (appliance/sync_bundle.py), as a forger with a zip tool or a
publisher's stolen key would make them: every one must end in a `BundleRefused` with a stable code,
never another exception (a traceback in the CLI, a 500 on the push route)."""

from __future__ import annotations

import hashlib
import json
import struct

import pytest

from appliance import sync_bundle
from appliance.errors import TooLarge
from appliance.sync_bundle import MANIFEST, SIGNATURE, BundleRefused
from tests.sync.attack_bundles import Signer, problem, problem_set, raw_zip

LIMIT = 1 << 24


def _read_and_verify(raw: bytes, signer: Signer) -> sync_bundle.Bundle:
    bundle = sync_bundle.read(raw, LIMIT)
    sync_bundle.verify(bundle, signer.key.public_key())
    return bundle


@pytest.mark.parametrize("nested", ["[" * 100_000, '{"a":' * 100_000])
def test_a_manifest_nested_past_the_parsers_depth_is_refused_as_malformed(nested: str) -> None:
    """Read before any signature check, so anyone can send it: it must be a refusal, not a crash."""
    raw = raw_zip([(MANIFEST, nested.encode()), (SIGNATURE, b"\0" * 64)])
    with pytest.raises(BundleRefused) as refused:
        sync_bundle.read(raw, LIMIT)
    assert refused.value.code == "bundle_malformed"


def test_a_record_nested_past_the_parsers_depth_is_refused_as_malformed() -> None:
    signer = Signer()
    raw = problem_set(signer, [problem()], {"problems.jsonl": b"[" * 100_000 + b"\n"})
    bundle = _read_and_verify(raw, signer)
    with pytest.raises(BundleRefused) as refused:
        bundle.records("problems.jsonl")
    assert refused.value.code == "bundle_malformed"


def test_an_asset_member_whose_bytes_are_not_the_file_its_name_hashes_is_refused() -> None:
    """assets/<sha256> names content: a signer must not make one name stand for other bytes (the
    asset rows take the name as the blob they point to)."""
    signer = Signer()
    genuine = b"id,value\n1,2\n"
    other = b"something else entirely\n"
    digest = hashlib.sha256(genuine).hexdigest()
    asset = {"name": "data.csv", "kind": "csv", "media_type": "text/csv", "size": len(other), "sha256": digest}
    record = problem(assets=[{**asset, "in_workdir": True}])
    raw = problem_set(signer, [record], {f"assets/{digest}": other})
    with pytest.raises(BundleRefused) as refused:
        _read_and_verify(raw, signer)
    assert refused.value.code == "bundle_tampered"


@pytest.mark.parametrize(
    "name",
    [
        "assets/../../../etc/passwd",
        "assets/" + "A" * 64,
        "assets/",
        "assets/sub/" + "a" * 64,
        "assets/" + "a" * 64 + "\x00",
        "../problems.jsonl",
        "/problems.jsonl",
        "problems.jsonl\u202e",
    ],
)
def test_odd_member_names_are_refused_even_when_signed(name: str) -> None:
    signer = Signer()
    raw = problem_set(signer, [problem()], {name: b"x"})
    with pytest.raises(BundleRefused) as refused:
        _read_and_verify(raw, signer)
    assert refused.value.code in ("bundle_malformed", "bundle_tampered")


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_a_member_listed_twice_is_refused() -> None:
    signer = Signer()
    genuine = problem_set(signer, [problem()])
    bundle = _read_and_verify(genuine, signer)
    raw = raw_zip(
        [
            ("problems.jsonl", bundle.members["problems.jsonl"]),
            ("problems.jsonl", b'{"id":1}\n'),
            (MANIFEST, bundle.manifest_bytes),
            (SIGNATURE, bundle.signature),
        ]
    )
    with pytest.raises(BundleRefused) as refused:
        sync_bundle.read(raw, LIMIT)
    assert refused.value.code == "bundle_malformed"


def test_declared_sizes_past_the_limit_are_refused_before_anything_is_read() -> None:
    """A zip64 bomb's headers claim far more than the file holds: counted from the headers first."""
    signer = Signer()
    raw = bytearray(problem_set(signer, [problem()]))
    # Patch the central directory's uncompressed size of the first member to 4 GiB - 1.
    at = raw.index(b"PK\x01\x02")
    raw[at + 24 : at + 28] = struct.pack("<I", 0xFFFFFFFF)
    with pytest.raises((TooLarge, BundleRefused)) as refused:
        sync_bundle.read(bytes(raw), LIMIT)
    assert refused.value.code == "bundle_too_large"


def test_a_huge_manifest_is_refused() -> None:
    """The manifest is parsed before the signature can be checked: its size is capped first."""
    signer = Signer()
    bundle = _read_and_verify(problem_set(signer, [problem()]), signer)
    padded = json.dumps({**bundle.manifest, "pad": "x" * (2 << 20)}).encode()
    raw = raw_zip([("problems.jsonl", bundle.members["problems.jsonl"]), (MANIFEST, padded), (SIGNATURE, b"\0" * 64)])
    with pytest.raises(BundleRefused) as refused:
        sync_bundle.read(raw, LIMIT)
    assert refused.value.code == "bundle_malformed"
