"""The sync bundle: a zip of JSON-lines members and a manifest holding every member's SHA-256,
the manifest signed with the exporting appliance's Ed25519 key.

Deterministic by construction: canonical JSON (sorted keys, no spaces), members in name order,
fixed timestamps and attributes, stored uncompressed (no zlib version can change the bytes). So
the same data gives the same bytes, and a reader can rebuild the file from the members it verified
and compare: any byte changed anywhere, also in headers no hash covers, is refused.

`kind` says what a bundle carries: `classroom` (an appliance's classes, problems, pseudonymised
users and scores, for the central instance), or `problem_set` (problems a publisher, the central
instance or staging, hands down to classrooms that trust its key: appliance/problem_sets.py). Each
kind has its own member list and its own manifest fields.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance.blobs import BlobStore
from appliance.errors import Conflict, Invalid, TooLarge

FORMAT = "labrunner-sync-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
# Signed along with the manifest, so a signature made for anything else with the same key never
# passes for a bundle's.
_SIGNING_CONTEXT = b"labrunner-sync-bundle/v1\n"
# Members each kind must hold beside the manifest and signature (assets/<sha256> may come too).
KIND_MEMBERS: dict[str, tuple[str, ...]] = {
    "classroom": ("classes.jsonl", "problems.jsonl", "submissions.jsonl", "users.jsonl"),
    "problem_set": ("problems.jsonl",),
}
ASSET_PREFIX = "assets/"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_MANIFEST_MAX_BYTES = 1 << 20
# The central instance keys every synced row by it: appliance/appliance_id.py's form only.
APPLIANCE_ID = re.compile(r"^[0-9a-f]{32}\Z")
# A problem set's id: stable per publisher and set name (appliance/problem_sets.py makes it).
SET_ID = re.compile(r"^[0-9a-f]{32}\Z")
SET_NAME_MAX_CHARS = 100


class BundleRefused(Invalid):
    """A bundle that must not be imported; its code says why."""


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def json_lines(records: Iterable[Mapping[str, Any]]) -> bytes:
    return b"".join(canonical_json(record) + b"\n" for record in records)


def asset_members(blobs: BlobStore, problems: Iterable[Mapping[str, Any]], then: str) -> dict[str, bytes]:
    """The members carrying these problem records' assets. Content-addressed: the member's name is
    the hash the manifest vouches for, so an asset several problems share travels once. Conflict
    `asset_unreadable` when one is missing or damaged in the blob store (`then`: what to do again)."""
    members: dict[str, bytes] = {}
    for problem in problems:
        for asset in problem["assets"]:
            try:
                members[ASSET_PREFIX + asset["sha256"]] = blobs.get(asset["sha256"])
            except (OSError, ValueError):
                raise Conflict(
                    "asset_unreadable",
                    f"asset {asset['name']!r} of problem {problem['id']} is missing or damaged in the blob store;"
                    f" restore it (or remove the asset), then {then} again",
                ) from None
    return members


def _zip(members: Mapping[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            archive.writestr(info, members[name])
    return out.getvalue()


def write(head: Mapping[str, Any], members: Mapping[str, bytes], key: Ed25519PrivateKey) -> bytes:
    """The bundle's bytes: `head` (kind, appliance id, watermarks, ...) becomes the manifest with
    every member's hash and size added, signed with `key`."""
    manifest = {
        **head,
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "members": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)} for name, data in members.items()
        },
    }
    manifest_bytes = canonical_json(manifest)
    signature = key.sign(_SIGNING_CONTEXT + manifest_bytes)
    return _zip({**members, MANIFEST: manifest_bytes, SIGNATURE: signature})


@dataclass(frozen=True)
class Bundle:
    """A bundle whose structure was read; `verify` says whether its signer and bytes hold."""

    raw: bytes
    manifest: dict[str, Any]
    manifest_bytes: bytes
    signature: bytes
    members: dict[str, bytes]

    @property
    def kind(self) -> str:
        return str(self.manifest["kind"])

    @property
    def appliance_id(self) -> str:
        return str(self.manifest["appliance_id"])

    @property
    def public_key(self) -> str:
        return str(self.manifest["public_key"])

    @property
    def generation(self) -> int:
        return int(self.manifest["generation"])

    @property
    def since(self) -> int:
        return int(self.manifest["since"])

    @property
    def watermark(self) -> int:
        return int(self.manifest["watermark"])

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    def records(self, member: str) -> list[dict[str, Any]]:
        try:
            # Split on "\n" alone: canonical JSON escapes it inside strings, but not U+2028 or U+0085,
            # which str.splitlines() would also split a statement at.
            rows = [
                json.loads(line, parse_constant=_no_constant, parse_float=_finite)
                for line in self.members[member].decode("utf-8").split("\n")
                if line
            ]
        except (KeyError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            # RecursionError: nested deeper than the parser goes (a signer's crafted record).
            raise _malformed(f"member {member} is not JSON lines") from None
        if not all(isinstance(row, dict) for row in rows):
            raise _malformed(f"member {member} holds a line that is not an object")
        return rows


def _no_constant(name: str) -> float:
    """NaN and Infinity are no JSON (the writer never makes them): refused like any bad JSON."""
    raise json.JSONDecodeError(f"{name} is not a number", name, 0)


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400: beyond a float, and canonical JSON could not write it back
        raise json.JSONDecodeError("number out of range", text, 0)
    return value


def _malformed(detail: str) -> BundleRefused:
    return BundleRefused(
        "bundle_malformed", f"this is not a readable Labrunner sync bundle ({detail}); nothing was imported"
    )


def _tampered(detail: str) -> BundleRefused:
    return BundleRefused(
        "bundle_tampered", f"this bundle was changed after it was signed ({detail}); nothing was imported"
    )


# SQLite's integers are 64-bit: a larger number cannot be stored, so it cannot be a mark or version.
INT_LIMIT = 1 << 63


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < INT_LIMIT


def read(raw: bytes, max_bytes: int) -> Bundle:
    """The manifest, signature and members of `raw`, checked for shape (not yet for signer)."""
    if len(raw) > max_bytes:
        raise TooLarge("bundle_too_large", f"the bundle is larger than sync_bundle_max_bytes ({max_bytes} bytes)")
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError, NotImplementedError):
        raise _malformed("not a zip file") from None
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        raise _malformed("a member appears twice")
    # Counted before anything is read: the sizes come from the headers the rebuild compares later.
    if sum(info.file_size for info in infos) > max_bytes:
        raise TooLarge("bundle_too_large", f"the bundle unpacks to more than sync_bundle_max_bytes ({max_bytes} bytes)")
    if MANIFEST not in names or SIGNATURE not in names:
        raise _malformed("no signed manifest")
    members: dict[str, bytes] = {}
    try:
        for info in infos:
            if info.filename == MANIFEST and info.file_size > _MANIFEST_MAX_BYTES:
                raise _malformed("the manifest is too large")
            members[info.filename] = archive.read(info)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError, NotImplementedError):
        # A CRC or length that no longer matches its bytes, a flag or method this writer never sets
        # (encrypted: RuntimeError; another compression: NotImplementedError): the zip was altered.
        raise _tampered("a member's bytes do not match its checksum") from None
    manifest_bytes = members.pop(MANIFEST)
    signature = members.pop(SIGNATURE)
    try:
        manifest = json.loads(manifest_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        # RecursionError: nested deeper than the parser goes; read before any signature check.
        raise _malformed("the manifest is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _malformed("the manifest is not a sync bundle's")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleRefused(
            "bundle_unsupported_version",
            f"this bundle has format version {manifest.get('format_version')!r}; this Labrunner reads version"
            f" {FORMAT_VERSION}; update it, then import again",
        )
    kind = manifest.get("kind")
    if kind not in KIND_MEMBERS:
        raise BundleRefused("bundle_unsupported_kind", f"this Labrunner does not import bundles of kind {kind!r}")
    listed = manifest.get("members")
    if not (
        isinstance(manifest.get("appliance_id"), str)
        and APPLIANCE_ID.match(manifest["appliance_id"])
        and isinstance(manifest.get("public_key"), str)
        and isinstance(listed, dict)
        and all(isinstance(v, dict) and isinstance(v.get("sha256"), str) for v in listed.values())
        and _KIND_FIELDS_OK[kind](manifest)
    ):
        raise _malformed("the manifest lacks a field or has one of the wrong type")
    return Bundle(raw, manifest, manifest_bytes, signature, members)


def _classroom_fields_ok(manifest: dict[str, Any]) -> bool:
    return (
        _is_int(manifest.get("generation"))
        and manifest["generation"] >= 1
        and _is_int(manifest.get("since"))
        and _is_int(manifest.get("watermark"))
        and manifest["since"] <= manifest["watermark"]
    )


def _problem_set_fields_ok(manifest: dict[str, Any]) -> bool:
    """A set is named and versioned by its publisher; watermarks and generations are a classroom's."""
    name, titles = manifest.get("name"), manifest.get("titles")
    return (
        isinstance(manifest.get("set_id"), str)
        and bool(SET_ID.match(manifest["set_id"]))
        and isinstance(name, str)
        and 0 < len(name) <= SET_NAME_MAX_CHARS
        and name.isprintable()
        and _is_int(manifest.get("version"))
        and manifest["version"] >= 1
        and isinstance(titles, list)
        and all(isinstance(title, str) for title in titles)
    )


_KIND_FIELDS_OK = {"classroom": _classroom_fields_ok, "problem_set": _problem_set_fields_ok}


def verify(bundle: Bundle, key: Ed25519PublicKey, whose: str = "the registered key of the appliance it names") -> None:
    """Refuses unless `key` signed the manifest and every byte of the file is what it vouches for."""
    try:
        key.verify(bundle.signature, _SIGNING_CONTEXT + bundle.manifest_bytes)
    except InvalidSignature:
        raise BundleRefused(
            "bundle_bad_signature",
            f"the bundle's signature does not match {whose}; it was altered or signed by another key;"
            " nothing was imported",
        ) from None
    listed: dict[str, dict[str, Any]] = bundle.manifest["members"]
    if set(listed) != set(bundle.members):
        raise _tampered("its members are not those its manifest lists")
    for name, data in bundle.members.items():
        digest = hashlib.sha256(data).hexdigest()
        if digest != listed[name]["sha256"]:
            raise _tampered(f"{name} does not match its hash")
        # The name is the content's hash: asset rows take it as the blob they point to, so a name
        # standing for other bytes (or no hash at all: "assets/../x") would point them elsewhere.
        if name.startswith(ASSET_PREFIX) and name != ASSET_PREFIX + digest:
            raise _tampered(f"{name} is not named by its content's hash")
    required = KIND_MEMBERS[bundle.kind]
    extra = [n for n in bundle.members if n not in required and not n.startswith(ASSET_PREFIX)]
    if not set(required) <= set(bundle.members) or extra:
        raise _malformed(f"a {bundle.kind} bundle holds {', '.join(required)} and assets")
    rebuilt = _zip({**bundle.members, MANIFEST: bundle.manifest_bytes, SIGNATURE: bundle.signature})
    if rebuilt != bundle.raw:
        raise _tampered("its zip structure differs from the one it was written with")
