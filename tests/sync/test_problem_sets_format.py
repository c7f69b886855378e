"""The `problem_set` bundle kind on its own: its manifest names the set, not a classroom's
watermarks, and each kind's manifest is checked by its own rules."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance import sync_bundle
from appliance.problem_sets import set_id_for
from appliance.sync_bundle import BundleRefused

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
HEAD = {
    "kind": "problem_set",
    "appliance_id": "a" * 32,
    "public_key": "k",
    "set_id": set_id_for("a" * 32, "Week 1"),
    "name": "Week 1",
    "version": 3,
    "titles": ["Sum"],
}
MEMBERS = {"problems.jsonl": sync_bundle.json_lines([{"id": 4, "title": "Sum"}])}
MAX = 1 << 20


def test_a_problem_set_needs_no_watermarks_and_is_deterministic() -> None:
    raw = sync_bundle.write(HEAD, MEMBERS, KEY)
    assert raw == sync_bundle.write(dict(reversed(list(HEAD.items()))), MEMBERS, KEY)
    bundle = sync_bundle.read(raw, MAX)
    sync_bundle.verify(bundle, KEY.public_key())
    assert bundle.kind == "problem_set" and bundle.records("problems.jsonl") == [{"id": 4, "title": "Sum"}]
    assert set_id_for("a" * 32, "Week 1") != set_id_for("b" * 32, "Week 1") != set_id_for("a" * 32, "Week 2")


@pytest.mark.parametrize(
    "head",
    [
        {**HEAD, "set_id": "../" + "a" * 29},
        {**HEAD, "name": ""},
        {**HEAD, "name": "x" * 101},
        {**HEAD, "version": 0},
        {**HEAD, "version": True},
        {**HEAD, "titles": "Sum"},
        {**HEAD, "titles": [1]},
        {k: v for k, v in HEAD.items() if k != "set_id"},
    ],
)
def test_a_problem_set_manifest_lacking_what_names_the_set_is_refused(head: dict[str, object]) -> None:
    with pytest.raises(BundleRefused) as refused:
        sync_bundle.read(sync_bundle.write(head, MEMBERS, KEY), MAX)
    assert refused.value.code == "bundle_malformed"


def test_a_problem_set_holds_only_problems_and_assets() -> None:
    bundle = sync_bundle.read(sync_bundle.write(HEAD, {**MEMBERS, "users.jsonl": b""}, KEY), MAX)
    with pytest.raises(BundleRefused) as refused:
        sync_bundle.verify(bundle, KEY.public_key())
    assert refused.value.code == "bundle_malformed"
