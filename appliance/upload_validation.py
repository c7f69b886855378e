"""Validating an upload before anything is stored: its name, its kind judged by content, and for a ZIP
sent with unpack=true each file in it, within the archive limits.

Every check runs here, before a blob or a row is written, so a refused upload leaves nothing behind.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from appliance.archive_limits import ArchiveRefused, SafeZip, ZipLimits
from appliance.errors import AppError, Conflict, Invalid, TooLarge, UnsupportedMedia
from appliance.file_kinds import KINDS
from appliance.file_names import clean_name
from appliance.file_sniffing import check_allowed, sniff
from appliance.settings import Settings

# Files operating systems add to archives on their own; skipped rather than refused.
_ARCHIVE_JUNK = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})


@dataclass(frozen=True)
class Prepared:
    """One validated file, ready to store."""

    name: str
    kind: str
    data: bytes
    digest: str

    @classmethod
    def of(cls, name: str, kind: str, data: bytes) -> Prepared:
        return cls(name, kind, data, hashlib.sha256(data).hexdigest())

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def media_type(self) -> str:
        return KINDS[self.kind].media_type


def _refusal(refused: ArchiveRefused, settings: Settings) -> AppError:
    """An archive refusal in the words (and error codes) of the file upload API."""
    path = refused.path
    match refused.reason:
        case "unreadable":
            return Invalid("invalid_archive", "the upload looks like a ZIP archive but cannot be read", field="file")
        case "too_many_members":
            return TooLarge(
                "archive_too_many_members",
                f"the archive holds {refused.count} files; at most {settings.archive_max_members} are unpacked",
                field="file",
            )
        case "unsafe_path":
            return Invalid("invalid_file_name", f"{path!r} in the archive points outside it", field="file")
        case "encrypted":
            return Invalid("archive_encrypted", f"{path!r} in the archive is encrypted", field="file")
        case "symlink":
            return Invalid("invalid_archive", f"{path!r} in the archive is a symbolic link", field="file")
        case "member_too_large":
            return TooLarge(
                "file_too_large",
                f"{path!r} in the archive is larger than {settings.file_max_bytes} bytes",
                field="file",
            )
        case "too_large":
            return TooLarge(
                "archive_too_large",
                f"the archive unpacks to more than {settings.archive_max_bytes} bytes",
                field="file",
            )
        case "ratio":
            return TooLarge(
                "archive_ratio",
                f"{path!r} in the archive unpacks to more than {settings.archive_max_ratio} times its packed size",
                field="file",
            )
        case "damaged":
            return Invalid("invalid_archive", f"{path!r} in the archive is damaged", field="file")
        case _:  # wrong_size
            return Invalid("invalid_archive", f"{path!r} in the archive is not the size it declares", field="file")


def _unzip(data: bytes, settings: Settings) -> list[tuple[str, bytes]]:
    """(path, bytes) of every file in the archive, within the count, size and ratio limits."""
    limits = ZipLimits(
        max_members=settings.archive_max_members,
        max_bytes=settings.archive_max_bytes,
        max_member_bytes=settings.file_max_bytes,
        max_ratio=settings.archive_max_ratio,
    )
    try:
        with SafeZip(data, limits) as archive:
            members = [
                info
                for info in archive.infolist()
                if not info.is_dir()
                and not info.filename.startswith("__MACOSX/")
                and info.filename.rsplit("/", 1)[-1] not in _ARCHIVE_JUNK
            ]
            if not members:
                raise Invalid("invalid_archive", "the archive holds no files", field="file")
            archive.check_count(len(members))
            return [(info.filename, archive.read(info)) for info in members]
    except ArchiveRefused as refused:
        raise _refusal(refused, settings) from refused


def prepare_upload(
    settings: Settings, filename: str | None, data: bytes, *, unpack: bool
) -> tuple[list[Prepared], bool]:
    """Validate an upload: its files (an archive: each file in it) and whether it was an archive.
    Nothing is stored here."""
    name = clean_name(filename, settings.file_name_max_chars)
    kind = sniff(data, name)
    if kind != "zip":
        check_allowed(kind, settings, name)
        return [Prepared.of(name, kind, data)], False
    if not settings.archive_unpack:
        raise UnsupportedMedia(
            "archive_refused", f"{name}: archives are not accepted here; upload each file", field="file"
        )
    if not unpack:
        raise UnsupportedMedia(
            "archive_refused", f"{name}: to unpack a ZIP archive into its files, send unpack=true", field="file"
        )
    prepared: list[Prepared] = []
    seen: dict[str, str] = {}
    for path, content in _unzip(data, settings):
        try:
            member = clean_name(path.replace("\\", "/").rsplit("/", 1)[-1], settings.file_name_max_chars)
            member_kind = sniff(content, member)
            if member_kind == "zip":
                raise UnsupportedMedia("nested_archive", "archives inside archives are not unpacked", field="file")
            check_allowed(member_kind, settings, member)
        except AppError as error:
            error.message = f"in the archive, {path}: {error.message}"
            raise
        if member in seen:
            raise Conflict(
                "duplicate_name", f"the archive holds two files named {member!r} ({seen[member]}, {path})", field="file"
            )
        seen[member] = path
        prepared.append(Prepared.of(member, member_kind, content))
    return prepared, True
