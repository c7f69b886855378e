"""The one set of zip-safety checks for every ZIP archive the appliance reads: uploads unpacked into
files, and problem imports.

An archive is hostile until read. Every check works from the archive's directory before a byte of
a member is inflated, and a member is read at most one byte past the size it declares, so a zip
bomb is refused without being unpacked. What is checked:

- the archive opens at all;
- its member count (the caller says which members count);
- each member read: its path stays inside the archive (no absolute path, drive letter or `..`), it
  is neither encrypted nor a symbolic link, its declared size is within the per-member limit, the
  declared sizes of all members read so far within the total limit, its unpacked/packed ratio
  within the limit (zip bombs), it inflates without error (bad CRC, broken stream, unsupported
  method) and to exactly the size it declares.

A refusal is an `ArchiveRefused` naming what is wrong; each caller words it for its users, because
their error codes differ and are part of the API.
"""

from __future__ import annotations

import io
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass
from typing import Literal

# What zipfile raises on a damaged archive or member (bad CRC, broken deflate stream), an encrypted
# one or an unsupported compression method: a bad upload, not a server error.
UNREADABLE = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError, OSError)
# Members small enough that their absolute size bounds them; a ratio says nothing useful there.
RATIO_MIN_BYTES = 65_536

Reason = Literal[
    "unreadable",  # not a ZIP archive that can be read
    "too_many_members",
    "unsafe_path",  # the member's path points outside the archive
    "encrypted",
    "symlink",
    "member_too_large",  # one member is larger than max_member_bytes
    "too_large",  # the members read so far unpack to more than max_bytes
    "ratio",
    "damaged",
    "wrong_size",  # the member does not inflate to the size it declares
]


class ArchiveRefused(Exception):
    """Why an archive, or one of its members (`path`), is refused."""

    def __init__(self, reason: Reason, path: str | None = None, *, count: int = 0, size: int = 0) -> None:
        super().__init__(reason if path is None else f"{reason}: {path!r}")
        self.reason: Reason = reason
        self.path = path
        self.count = count  # too_many_members: how many there are
        self.size = size  # wrong_size: how many bytes the member held (read up to one past its declared size)


@dataclass(frozen=True)
class ZipLimits:
    max_members: int
    max_bytes: int  # all members read, together, unpacked
    max_member_bytes: int | None = None  # one member, unpacked; None: only max_bytes bounds it
    max_ratio: float | None = None  # unpacked/packed size of a member of RATIO_MIN_BYTES or more; None: unchecked


def safe_path(path: str) -> bool:
    """Whether a member path stays inside the archive: not absolute, no drive letter, no `..` part."""
    parts = path.replace("\\", "/").split("/")
    return not (path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path) or ".." in parts)


class SafeZip:
    """A ZIP archive read under `ZipLimits`; a context manager."""

    def __init__(self, data: bytes, limits: ZipLimits) -> None:
        try:
            self._archive = zipfile.ZipFile(io.BytesIO(data))
        except UNREADABLE as exc:
            raise ArchiveRefused("unreadable") from exc
        self.limits = limits
        self._unpacked = 0

    def __enter__(self) -> SafeZip:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._archive.close()

    def infolist(self) -> list[zipfile.ZipInfo]:
        return self._archive.infolist()

    def getinfo(self, path: str) -> zipfile.ZipInfo | None:
        try:
            return self._archive.getinfo(path)
        except KeyError:
            return None

    def check_count(self, count: int) -> None:
        """Refuse an archive of more than `max_members` members (the caller counts what it unpacks)."""
        if count > self.limits.max_members:
            raise ArchiveRefused("too_many_members", count=count)

    def read(self, info: zipfile.ZipInfo) -> bytes:
        """The member's bytes. Its path, flags and declared sizes are checked first, and its declared
        size counts towards the archive's total before it is inflated."""
        path = info.filename
        limits = self.limits
        if not safe_path(path):
            raise ArchiveRefused("unsafe_path", path)
        if info.flag_bits & 0x1:
            raise ArchiveRefused("encrypted", path)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ArchiveRefused("symlink", path)
        if limits.max_member_bytes is not None and info.file_size > limits.max_member_bytes:
            raise ArchiveRefused("member_too_large", path)
        self._unpacked += info.file_size
        if self._unpacked > limits.max_bytes:
            raise ArchiveRefused("too_large", path)
        if (
            limits.max_ratio is not None
            and info.file_size >= RATIO_MIN_BYTES
            and info.file_size > limits.max_ratio * max(1, info.compress_size)
        ):
            raise ArchiveRefused("ratio", path)
        try:
            with self._archive.open(info) as handle:
                content = handle.read(info.file_size + 1)
        except UNREADABLE as exc:
            raise ArchiveRefused("damaged", path) from exc
        if len(content) != info.file_size:
            raise ArchiveRefused("wrong_size", path, size=len(content))
        return content
