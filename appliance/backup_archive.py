"""The backup archive: a tar of the database copy and the blob files, ending with a manifest that
holds the SHA-256 of every member, optionally encrypted whole in the age format (passphrase).

Each archive is self-contained: it restores on its own, whatever became of the others. The
manifest comes last (the hashes are known once the members are written), followed by its own
hash, so a reader checks everything it unpacked against it before anything is used.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pyrage

from appliance.errors import Invalid

FORMAT = "labrunner-backup"
FORMAT_VERSION = 1
AGE_MAGIC = b"age-encryption.org/v1\n"
MANIFEST = "manifest.json"
MANIFEST_SUM = "manifest.json.sha256"
DB_MEMBER = "db/labrunner.sqlite3"
# A PostgreSQL database's export (see store/pg_snapshots.py): an index and one CSV file per table.
PG_PREFIX = "db/postgresql/"
PG_INDEX = PG_PREFIX + "tables.json"
ENGINES = ("sqlite", "postgresql")
_PG_TABLE_MEMBER = re.compile(r"^db/postgresql/[a-z][a-z0-9_]{0,62}\.csv$")
_BLOB_MEMBER = re.compile(r"^blobs/[0-9a-f]{2}/[0-9a-f]{62}$")
_MANIFEST_MAX_BYTES = 64 << 20
_CHUNK = 1 << 20


class ArchiveRefused(Invalid):
    """An archive that must not be restored: its code says why."""


@dataclass(frozen=True)
class Manifest:
    data: dict[str, Any]

    @property
    def appliance_id(self) -> str:
        return str(self.data["appliance_id"])

    @property
    def database(self) -> str:
        """The engine whose data the archive holds; archives from before PostgreSQL are SQLite's."""
        return str(self.data.get("database", "sqlite"))

    @property
    def schema_version(self) -> int:
        return int(self.data["schema_version"])

    @property
    def tables(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.data["tables"].items()}

    @property
    def members(self) -> dict[str, dict[str, Any]]:
        return dict(self.data["members"])


class _Hashing:
    """A file read through, hashed on the way (tar pulls exactly the member's size)."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self.sha = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self.sha.update(data)
        return data


class ArchiveWriter:
    """Streams members into a tar on `out`, keeping each member's hash and size for the manifest."""

    def __init__(self, out: BinaryIO) -> None:
        self._tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)
        self.members: dict[str, dict[str, Any]] = {}

    def add_file(self, name: str, path: Path) -> bool:
        """Add the file at `path`; False when it vanished first (a blob purged meanwhile)."""
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            return False
        with handle:
            info = tarfile.TarInfo(name)
            info.size = os.fstat(handle.fileno()).st_size
            info.mode = 0o600
            reader = _Hashing(handle)
            self._tar.addfile(info, reader)  # type: ignore[arg-type]
        self.members[name] = {"sha256": reader.sha.hexdigest(), "size": info.size}
        return True

    def _add_bytes(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o600
        self._tar.addfile(info, io.BytesIO(data))

    def finish(self, manifest: dict[str, Any]) -> None:
        body = json.dumps({**manifest, "members": self.members}, indent=1, sort_keys=True).encode()
        self._add_bytes(MANIFEST, body)
        self._add_bytes(MANIFEST_SUM, hashlib.sha256(body).hexdigest().encode())
        self._tar.close()


def encrypt(plain: bytes, passphrase: str) -> bytes:
    return pyrage.passphrase.encrypt(plain, passphrase)


def _member_allowed(name: str) -> bool:
    return (
        name in (MANIFEST, MANIFEST_SUM, DB_MEMBER, PG_INDEX)
        or bool(_BLOB_MEMBER.match(name))
        or bool(_PG_TABLE_MEMBER.match(name))
    )


def _open_plain(archive: Path, passphrase: str | None) -> BinaryIO:
    """The archive's tar stream, decrypted first when it is age-encrypted."""
    handle = archive.open("rb")
    if handle.read(len(AGE_MAGIC)) != AGE_MAGIC:
        handle.seek(0)
        return handle
    with handle:
        sealed = AGE_MAGIC + handle.read()
    if not passphrase:
        raise ArchiveRefused(
            "backup_passphrase_required", f"{archive.name} is encrypted: give its passphrase to restore it"
        )
    try:
        return io.BytesIO(pyrage.passphrase.decrypt(sealed, passphrase))
    except pyrage.DecryptError as exc:
        # age checks the passphrase against the header's MAC first ("Decryption failed"); a payload
        # chunk that fails its tag later means the body was damaged or cut short.
        if "failed" in str(exc).lower():
            raise ArchiveRefused(
                "backup_wrong_passphrase", f"the passphrase does not open {archive.name} (or its header is damaged)"
            ) from None
        raise ArchiveRefused(
            "backup_corrupt", f"{archive.name} is damaged or truncated: its encrypted content fails its check"
        ) from None


def unpack_verified(archive: Path, staging: Path, passphrase: str | None) -> Manifest:
    """Unpack `archive` into the empty folder `staging` and check every member against the manifest.

    Raises ArchiveRefused (nothing outside `staging` is touched) for anything short of a whole,
    untouched archive of a format this version reads.
    """
    found: dict[str, dict[str, Any]] = {}
    small: dict[str, bytes] = {}
    try:
        with _open_plain(archive, passphrase) as source, tarfile.open(fileobj=source, mode="r|") as tar:
            for info in tar:
                name = info.name
                # A sparse member unpacks to far more than it takes in the archive (a tar bomb); the
                # writer never makes one.
                if not info.isfile() or info.issparse() or not _member_allowed(name) or name in found or name in small:
                    raise ArchiveRefused(
                        "backup_corrupt", f"{archive.name} holds an unexpected member {name!r}: not an untouched backup"
                    )
                stream = tar.extractfile(info)
                assert stream is not None  # a regular file always has one
                if name in (MANIFEST, MANIFEST_SUM):
                    small[name] = stream.read(_MANIFEST_MAX_BYTES + 1)
                    continue
                target = staging / name
                target.parent.mkdir(parents=True, exist_ok=True)
                sha = hashlib.sha256()
                size = 0
                with target.open("wb") as out:
                    while chunk := stream.read(_CHUNK):
                        sha.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                found[name] = {"sha256": sha.hexdigest(), "size": size}
    except tarfile.ReadError as exc:
        if "unexpected end" in str(exc):
            raise ArchiveRefused("backup_truncated", f"{archive.name} ends early: it is truncated") from None
        raise ArchiveRefused("backup_corrupt", f"{archive.name} is not a Labrunner backup, or it is damaged") from None
    except EOFError:
        raise ArchiveRefused("backup_truncated", f"{archive.name} ends early: it is truncated") from None
    return _check_manifest(archive, small, found)


def _check_manifest(archive: Path, small: dict[str, bytes], found: dict[str, dict[str, Any]]) -> Manifest:
    body, digest = small.get(MANIFEST), small.get(MANIFEST_SUM)
    if body is None or digest is None:
        raise ArchiveRefused("backup_truncated", f"{archive.name} ends before its manifest: it is truncated or damaged")
    if hashlib.sha256(body).hexdigest().encode() != digest.strip():
        raise ArchiveRefused("backup_corrupt", f"{archive.name}: the manifest does not match its hash (damaged)")
    try:
        data = json.loads(body)
    except ValueError:
        raise ArchiveRefused("backup_corrupt", f"{archive.name}: the manifest is not readable") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ArchiveRefused("backup_corrupt", f"{archive.name} is not a Labrunner backup")
    if data.get("format_version") != FORMAT_VERSION:
        raise ArchiveRefused(
            "backup_format_unsupported",
            f"{archive.name} is in backup format {data.get('format_version')!r}; this version reads {FORMAT_VERSION}",
        )
    manifest = Manifest(data)
    if manifest.members != found:
        differ = sorted(set(manifest.members) ^ set(found)) or sorted(
            name for name in found if manifest.members[name] != found[name]
        )
        raise ArchiveRefused(
            "backup_corrupt",
            f"{archive.name} was changed or damaged: {len(differ)} member(s) differ from the manifest"
            f" (first: {differ[0]})",
        )
    if manifest.database not in ENGINES:
        raise ArchiveRefused("backup_corrupt", f"{archive.name} names an unknown database {manifest.database!r}")
    database_members = [name for name in found if name == DB_MEMBER or name.startswith(PG_PREFIX)]
    expected = DB_MEMBER if manifest.database == "sqlite" else PG_INDEX
    if expected not in found or any(
        name.startswith(PG_PREFIX) != (manifest.database == "postgresql") for name in database_members
    ):
        raise ArchiveRefused("backup_corrupt", f"{archive.name} holds no {manifest.database} database")
    return manifest


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (the directory entry, not only the file)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
