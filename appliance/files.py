"""Files users upload and assets teachers give a problem: validation, ownership, storage, expiry.

Who may touch a file is decided here, from the caller's account, on every call: a file id alone
grants nothing. Another user's file, a malformed id, an expired or a deleted file all get the same
404, so ids cannot be probed. Content is judged by its bytes (magic numbers, UTF-8 text), never by
its name or declared type, and every check runs before anything is written, so a refused upload
leaves no row and no blob behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
import secrets
import stat
import time
import unicodedata
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiosqlite

from appliance import problems
from appliance.accounts import User
from appliance.blobs import BlobStore
from appliance.classes import require_staff
from appliance.clock import iso
from appliance.db import Database, Row
from appliance.errors import AppError, Conflict, Forbidden, Invalid, NotFound, TooLarge, UnsupportedMedia
from appliance.settings import Settings, SettingsError
from appliance.store import files as file_store
from runner.languages import LANGUAGES

DAY_S = 86_400
FILE_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")  # secrets.token_urlsafe(16)
DIGEST = re.compile(r"^[0-9a-f]{64}$")
# A purge deletes at most this many rows (and unlinks their blobs) per transaction, so it never
# holds the single writer for long; each run stops after MAX_BATCHES and the next run goes on.
PURGE_BATCH = 500
PURGE_MAX_BATCHES = 100
# A blob on disk that no row names yet may be in the middle of being stored (written before its row
# commits: an upload, a job's full output). Only blobs older than this count as orphans.
ORPHAN_GRACE_S = 3600.0
# Names a program's own files take in its working directory (any language's source, the compiled
# program): an input file there would clash with them.
RESERVED_NAMES = frozenset({lang.source_name for lang in LANGUAGES.values()} | {"main", "Main.class"})
# Unicode categories refused in names: controls, invisible format characters (the right-to-left
# override makes "gpj.exe" look like "exe.jpg"), surrogates, private use, unassigned, line breaks.
_BAD_NAME_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# Text is UTF-8 without NUL or the control characters that only binary data holds: tab, newlines,
# vertical tab, form feed and escape (terminal colours in a saved log) are fine.
_TEXT_CONTROLS = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")
# What zipfile raises on a damaged member (bad CRC, broken deflate stream) or an unsupported method.
_UNREADABLE = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError, OSError)
# Members small enough that their absolute size bounds them; a ratio says nothing useful there.
_RATIO_MIN_BYTES = 65_536
# Files operating systems add to archives on their own; skipped rather than refused.
_ARCHIVE_JUNK = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})


@dataclass(frozen=True)
class Kind:
    id: str
    media_type: str
    text: bool


KINDS: dict[str, Kind] = {
    k.id: k
    for k in (
        Kind("text", "text/plain", True),
        Kind("csv", "text/csv", True),
        Kind("json", "application/json", True),
        Kind("python", "text/x-python", True),
        Kind("source", "text/plain", True),
        Kind("png", "image/png", False),
        Kind("jpeg", "image/jpeg", False),
        Kind("gif", "image/gif", False),
        Kind("bmp", "image/bmp", False),
        Kind("wav", "audio/wav", False),
        Kind("ogg", "audio/ogg", False),
        Kind("mp3", "audio/mpeg", False),
    )
}
_PYTHON_EXT = frozenset({".py", ".pyw"})
_CSV_EXT = frozenset({".csv", ".tsv"})
_SOURCE_EXT = frozenset(
    {".c", ".h", ".cpp", ".cc", ".cxx", ".hpp", ".hh", ".java", ".js", ".mjs", ".cjs", ".ts", ".rb", ".go", ".rs"}
    | {".kt", ".cs", ".lua", ".sh", ".sql", ".r", ".pl", ".php", ".swift", ".scala", ".hs", ".pas", ".bas"}
)
# Unambiguous signatures, checked before the text test.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"OggS", "ogg"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),  # an empty archive
)
_EXECUTABLES = (
    b"\x7fELF",  # Linux
    b"\xfe\xed\xfa\xce",  # macOS (Mach-O, both byte orders, 32 and 64 bit)
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",  # Java class files and macOS universal binaries
    b"\x00asm",  # WebAssembly
)
_OTHER_ARCHIVES = (
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip"),
    (b"Rar!\x1a\x07", "RAR"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


def parse_allowed(spec: str) -> frozenset[str]:
    names = {part.strip().lower() for part in spec.split(",") if part.strip()}
    return frozenset() if names == {"none"} else frozenset(names)


def check_file_settings(settings: Settings) -> None:
    """Called by the settings loader: a typo in the allow-list must stop start-up, not refuse uploads."""
    unknown = sorted(parse_allowed(settings.file_types_allowed) - set(KINDS))
    if unknown:
        raise SettingsError(
            f"setting 'file_types_allowed': unknown type(s) {', '.join(unknown)}; known: {', '.join(KINDS)}, none"
        )
    base = settings.asset_base_url
    if base and not base.startswith(("http://", "https://", "/")):
        raise SettingsError(f"setting 'asset_base_url' must be an http(s) URL or a path starting with / (got {base!r})")


# --- names and content -----------------------------------------------------------------------------


def clean_name(raw: str | None, max_chars: int) -> str:
    """A name safe to create in a program's working directory, or a clear refusal."""
    if raw is None:
        raise Invalid("invalid_file_name", "the upload has no file name; send one with the file", field="file")
    name = unicodedata.normalize("NFC", raw).strip()
    if not name:
        raise Invalid("invalid_file_name", "the file name is empty", field="file")
    if "/" in name or "\\" in name:
        raise Invalid("invalid_file_name", f"{name!r}: a file name must not contain / or \\ (no folders)", field="file")
    if name.startswith("."):
        raise Invalid("invalid_file_name", f"{name!r}: a file name must not start with a dot", field="file")
    for char in name:
        if unicodedata.category(char) in _BAD_NAME_CATEGORIES:
            raise Invalid(
                "invalid_file_name",
                f"{name!r}: the file name contains the control or invisible character U+{ord(char):04X}",
                field="file",
            )
    if len(name) > max_chars or len(name.encode("utf-8")) > 255:
        raise Invalid("invalid_file_name", f"the file name is longer than {max_chars} characters", field="file")
    if name in RESERVED_NAMES:
        raise Invalid(
            "reserved_file_name",
            f"{name!r} is the name your program's own source or compiled program gets; rename the file",
            field="file",
        )
    return name


def _extension(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def _text_kind(data: bytes, name: str) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if _TEXT_CONTROLS.search(text):
        return None
    ext = _extension(name)
    if ext in _PYTHON_EXT:
        return "python"
    if ext in _SOURCE_EXT:
        return "source"
    if ext in _CSV_EXT:
        return "csv"
    if ext == ".json":
        try:
            json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
            return "text"  # named .json but not JSON: still text, never served as JSON
        return "json"
    return "text"


def _is_bmp(data: bytes) -> bool:
    # "BM" alone is too weak (text can start with it): check the header's fixed fields too.
    return (
        len(data) >= 26
        and data[:2] == b"BM"
        and data[6:10] == b"\0\0\0\0"
        and int.from_bytes(data[14:18], "little") in (12, 40, 52, 56, 64, 108, 124)
    )


def _is_mp3(data: bytes) -> bool:
    if data[:3] == b"ID3" and len(data) >= 10:
        return True
    # A bare MPEG Layer III frame header: 11 sync bits, a valid version, layer III, and a bitrate
    # and sample rate that exist. Anything looser also matches e.g. a UTF-16 byte-order mark.
    return (
        len(data) >= 4
        and data[0] == 0xFF
        and data[1] & 0xE0 == 0xE0
        and (data[1] >> 3) & 3 != 1
        and (data[1] >> 1) & 3 == 1
        and data[2] >> 4 not in (0, 15)
        and (data[2] >> 2) & 3 != 3
    )


def sniff(data: bytes, name: str) -> str:
    """The kind of `data` from its bytes ('zip' for a ZIP archive); refuses what is never accepted."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data.startswith(_EXECUTABLES):
        raise _executable_refused(name)
    for magic, label in _OTHER_ARCHIVES:
        if data.startswith(magic):
            raise _archive_refused(name, label)
    text = _text_kind(data, name)
    if text is not None:
        return text
    # Weak signatures last: these bytes could also begin a text file, which was accepted above.
    if data[:2] == b"MZ":
        raise _executable_refused(name)
    if _is_bmp(data):
        return "bmp"
    if _is_mp3(data):
        return "mp3"
    if data[257:262] == b"ustar" or data[:3] == b"BZh":
        raise _archive_refused(name, "tar" if data[257:262] == b"ustar" else "bzip2")
    raise UnsupportedMedia(
        "unknown_file_type",
        f"{name}: this content is not a type Labrunner accepts (UTF-8 text, images, sounds)",
        field="file",
    )


def _executable_refused(name: str) -> UnsupportedMedia:
    return UnsupportedMedia(
        "executable_refused", f"{name}: programs and executables cannot be uploaded; upload source code", field="file"
    )


def _archive_refused(name: str, label: str) -> UnsupportedMedia:
    return UnsupportedMedia(
        "archive_refused",
        f"{name}: {label} archives are not accepted; upload the files themselves, or a ZIP with unpack=true",
        field="file",
    )


def check_allowed(kind: str, settings: Settings, name: str) -> None:
    allowed = parse_allowed(settings.file_types_allowed)
    if kind not in allowed:
        accepted = ", ".join(k for k in KINDS if k in allowed) or "nothing"
        raise UnsupportedMedia(
            "file_type_not_allowed",
            f"{name}: {kind} files are not accepted on this appliance (accepted: {accepted})",
            field="file",
        )


@dataclass(frozen=True)
class Prepared:
    """One validated file, ready to store."""

    name: str
    kind: str
    data: bytes
    digest: str

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def media_type(self) -> str:
        return KINDS[self.kind].media_type


def _prepared(name: str, kind: str, data: bytes) -> Prepared:
    return Prepared(name, kind, data, hashlib.sha256(data).hexdigest())


def _member_path_ok(path: str) -> bool:
    parts = path.replace("\\", "/").split("/")
    return not (path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path) or ".." in parts)


def _unzip(data: bytes, settings: Settings) -> list[tuple[str, bytes]]:
    """(path, bytes) of every file in the archive, within the count, size and ratio limits."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _UNREADABLE as exc:
        raise Invalid(
            "invalid_archive", "the upload looks like a ZIP archive but cannot be read", field="file"
        ) from exc
    out: list[tuple[str, bytes]] = []
    with archive:
        members = [
            info
            for info in archive.infolist()
            if not info.is_dir()
            and not info.filename.startswith("__MACOSX/")
            and info.filename.rsplit("/", 1)[-1] not in _ARCHIVE_JUNK
        ]
        if not members:
            raise Invalid("invalid_archive", "the archive holds no files", field="file")
        if len(members) > settings.archive_max_members:
            raise TooLarge(
                "archive_too_many_members",
                f"the archive holds {len(members)} files; at most {settings.archive_max_members} are unpacked",
                field="file",
            )
        total = 0
        for info in members:
            path = info.filename
            if not _member_path_ok(path):
                raise Invalid("invalid_file_name", f"{path!r} in the archive points outside it", field="file")
            if info.flag_bits & 0x1:
                raise Invalid("archive_encrypted", f"{path!r} in the archive is encrypted", field="file")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise Invalid("invalid_archive", f"{path!r} in the archive is a symbolic link", field="file")
            if info.file_size > settings.file_max_bytes:
                raise TooLarge(
                    "file_too_large",
                    f"{path!r} in the archive is larger than {settings.file_max_bytes} bytes",
                    field="file",
                )
            total += info.file_size
            if total > settings.archive_max_bytes:
                raise TooLarge(
                    "archive_too_large",
                    f"the archive unpacks to more than {settings.archive_max_bytes} bytes",
                    field="file",
                )
            if info.file_size >= _RATIO_MIN_BYTES and info.file_size > settings.archive_max_ratio * max(
                1, info.compress_size
            ):
                raise TooLarge(
                    "archive_ratio",
                    f"{path!r} in the archive unpacks to more than {settings.archive_max_ratio} times its packed size",
                    field="file",
                )
            try:
                with archive.open(info) as handle:
                    content = handle.read(info.file_size + 1)
            except _UNREADABLE as exc:
                raise Invalid("invalid_archive", f"{path!r} in the archive is damaged", field="file") from exc
            if len(content) != info.file_size:
                raise Invalid("invalid_archive", f"{path!r} in the archive is not the size it declares", field="file")
            out.append((path, content))
    return out


def prepare_upload(
    settings: Settings, filename: str | None, data: bytes, *, unpack: bool
) -> tuple[list[Prepared], bool]:
    """Validate an upload: its files (an archive: each file in it) and whether it was an archive.
    Nothing is stored here."""
    name = clean_name(filename, settings.file_name_max_chars)
    kind = sniff(data, name)
    if kind != "zip":
        check_allowed(kind, settings, name)
        return [_prepared(name, kind, data)], False
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
        prepared.append(_prepared(member, member_kind, content))
    return prepared, True


# --- user files ------------------------------------------------------------------------------------


def _missing(field: str | None = None) -> NotFound:
    # One answer for every file the caller may not have: missing, someone else's, expired, malformed.
    return NotFound("not_found", "no such file", field=field)


def _alive(row: Row, now: float) -> bool:
    return row["deleted_at"] is None and (row["expires_at"] > now or bool(row["pinned"]))


def file_json(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "owner_id": row["owner_id"],
        "name": row["name"],
        "kind": row["kind"],
        "media_type": row["media_type"],
        "size": row["size"],
        "created_at": iso_epoch(row["created_at"]),
        "expires_at": iso_epoch(row["expires_at"]),
        # A submission uses it: kept as long as that submission, whatever expires_at says.
        "kept_for_submission": bool(row["pinned"]),
    }


def iso_epoch(seconds: float) -> str:
    return iso(datetime.fromtimestamp(seconds, UTC))


@dataclass(frozen=True)
class _Step:
    item: Prepared
    action: str  # new | same (identical file already there) | replace
    old: Row | None


async def _plan(
    src: Database | aiosqlite.Connection,
    settings: Settings,
    user: User,
    items: Sequence[Prepared],
    replace: bool,
    now: float,
) -> list[_Step]:
    """What storing `items` would do, or the refusal: duplicates, then the count and byte quotas."""
    existing = {row["name"]: row for row in await file_store.alive_named(src, user.id, [i.name for i in items], now)}
    steps: list[_Step] = []
    for item in items:
        old = existing.get(item.name)
        if old is None:
            steps.append(_Step(item, "new", None))
        elif old["blob"] == item.digest:
            steps.append(_Step(item, "same", old))
        elif replace:
            steps.append(_Step(item, "replace", old))
        else:
            raise Conflict(
                "duplicate_name",
                f"you already have a file named {item.name!r}; delete it first or send replace=true to replace it",
                field="file",
            )
    count, used = await file_store.usage(src, user.id, now)
    count += sum(1 for s in steps if s.action == "new")
    used += sum(s.item.size - (s.old["size"] if s.old is not None else 0) for s in steps if s.action != "same")
    if count > settings.files_max_per_user:
        raise Conflict(
            "too_many_files",
            f"you may keep at most {settings.files_max_per_user} files; delete some before uploading more",
            field="file",
        )
    if used > settings.files_max_bytes_per_user:
        raise TooLarge(
            "quota_exceeded",
            f"your files would take {used} bytes; the limit is {settings.files_max_bytes_per_user} bytes."
            " Delete some first",
            field="file",
        )
    return steps


async def _discard(conn: aiosqlite.Connection, blobs: BlobStore, digests: Sequence[str]) -> int:
    """Unlink those of `digests` no row uses. Runs inside a write transaction: a row naming one of
    them cannot be committed between the check and the unlink."""
    unused = set(digests) - await file_store.referenced_blobs(conn, digests)
    for digest in unused:
        blobs.delete(digest)
    return len(unused)


async def discard_unused_blobs(conn: aiosqlite.Connection, blobs: BlobStore, digests: Sequence[str]) -> int:
    """`_discard` for other purges (expired job outputs): the same reference check, same lock."""
    return await _discard(conn, blobs, digests)


async def _ensure_blobs(blobs: BlobStore, items: Sequence[Prepared]) -> None:
    # Inside the write transaction: a purge may have unlinked an identical orphan blob after our
    # put found it already there; restore it before a row names it.
    for item in items:
        if not blobs.exists(item.digest):
            await asyncio.to_thread(blobs.put, item.data)


@dataclass(frozen=True)
class Uploaded:
    files: list[dict[str, Any]]  # each with `deduplicated`: an identical file of that name was there
    created: bool  # anything new was stored
    archive: bool  # the upload was an archive, unpacked into `files`


async def upload(
    db: Database,
    blobs: BlobStore,
    settings: Settings,
    user: User,
    filename: str | None,
    data: bytes,
    *,
    unpack: bool = False,
    replace: bool = False,
) -> Uploaded:
    """Store an upload for `user`: one file, or each file of an archive sent with unpack."""
    items, archive = prepare_upload(settings, filename, data, unpack=unpack)
    now = time.time()
    await _plan(db, settings, user, items, replace, now)  # refuse before any blob is written
    for item in items:
        await asyncio.to_thread(blobs.put, item.data)
    expires_at = now + settings.file_expiry_days * DAY_S
    ids: list[tuple[str, bool]] = []
    async with db.transaction() as conn:
        try:
            # Again under the writer lock: a concurrent upload may have used the quota meanwhile.
            steps = await _plan(conn, settings, user, items, replace, now)
        except AppError:
            await _discard(conn, blobs, [i.digest for i in items])
            raise
        await _ensure_blobs(blobs, items)
        for step in steps:
            if step.action == "same":
                assert step.old is not None
                await file_store.extend_expiry(conn, step.old["id"], expires_at)
                ids.append((step.old["id"], True))
                continue
            if step.action == "replace":
                assert step.old is not None
                gone = await file_store.remove(conn, step.old["id"], now)
                if gone is not None:
                    await _discard(conn, blobs, [gone])
            file_id = secrets.token_urlsafe(16)
            await file_store.insert(
                conn,
                {
                    "id": file_id,
                    "owner_id": user.id,
                    "name": step.item.name,
                    "kind": step.item.kind,
                    "media_type": step.item.media_type,
                    "size": step.item.size,
                    "blob": step.item.digest,
                    "created_at": now,
                    "expires_at": expires_at,
                },
            )
            ids.append((file_id, False))
    out = []
    for file_id, deduplicated in ids:
        row = await file_store.get(db, file_id)
        assert row is not None
        out.append({**file_json(row), "deduplicated": deduplicated})
    return Uploaded(out, created=not all(dedup for _, dedup in ids), archive=archive)


async def readable(db: Database, user: User, file_id: str) -> Row:
    """The file if `user` may read it: its owner, a teacher of a submission using it, an admin."""
    if not FILE_ID.match(file_id):
        raise _missing()
    row = await file_store.get(db, file_id)
    if row is None:
        raise _missing()
    alive = _alive(row, time.time())
    if row["owner_id"] == user.id and alive:
        return row
    if user.role == "admin" and (alive or row["pinned"]):
        return row
    if user.role == "teacher" and row["pinned"] and await file_store.teacher_can_read(db, file_id, user.id):
        return row
    raise _missing()


async def list_for(db: Database, settings: Settings, user: User) -> dict[str, Any]:
    now = time.time()
    rows = await file_store.alive_of(db, user.id, now)
    count, used = await file_store.usage(db, user.id, now)
    return {
        "files": [file_json(row) for row in rows],
        "quota": {
            "files": count,
            "max_files": settings.files_max_per_user,
            "bytes": used,
            "max_bytes": settings.files_max_bytes_per_user,
        },
    }


async def get_for(db: Database, user: User, file_id: str) -> dict[str, Any]:
    return file_json(await readable(db, user, file_id))


async def content_for(db: Database, blobs: BlobStore, user: User, file_id: str) -> tuple[Row, bytes]:
    row = await readable(db, user, file_id)
    return row, await asyncio.to_thread(blobs.get, row["blob"])


async def delete(db: Database, blobs: BlobStore, user: User, file_id: str) -> None:
    row = await readable(db, user, file_id)
    if row["owner_id"] != user.id and user.role != "admin":
        raise Forbidden("forbidden", "only the file's owner can delete it")
    if row["deleted_at"] is not None:
        raise _missing()
    async with db.transaction() as conn:
        gone = await file_store.remove(conn, file_id, time.time())
        if gone is not None:
            await _discard(conn, blobs, [gone])


async def check_job_files(
    db: Database, settings: Settings, user: User, file_ids: Sequence[str], problem_id: int | None
) -> list[str]:
    """The ids a run or submission may be queued with: only the caller's own files (staff too)."""
    now = time.time()
    rows: list[Row] = []
    for index, file_id in enumerate(file_ids):
        field = f"files[{index}]"
        if file_id in file_ids[:index]:
            raise Invalid("duplicate_file", f"file {file_id} is listed twice", field=field)
        row = await file_store.get(db, file_id) if FILE_ID.match(file_id) else None
        if row is None or row["owner_id"] != user.id or not _alive(row, now):
            raise _missing(field)
        rows.append(row)
    assets = await file_store.workdir_assets(db, problem_id) if problem_id is not None else []
    given = {asset["name"] for asset in assets}
    for index, row in enumerate(rows):
        if row["name"] in given:
            raise Conflict(
                "file_name_conflict",
                f"the problem already gives every student a file named {row['name']!r}; rename yours",
                field=f"files[{index}]",
            )
    if len(rows) + len(assets) > settings.job_files_max:
        raise Invalid(
            "too_many_job_files",
            f"a program gets at most {settings.job_files_max} files"
            + (f", and the problem already gives {len(assets)}" if assets else ""),
            field="files",
        )
    total = sum(row["size"] for row in rows) + sum(asset["size"] for asset in assets)
    if total > settings.job_files_max_bytes:
        raise TooLarge(
            "job_files_too_large",
            f"the files for one program may total at most {settings.job_files_max_bytes} bytes",
            field="files",
        )
    return [row["id"] for row in rows]


async def files_of_job(db: Database, job_id: int) -> list[dict[str, Any]]:
    return [
        {"id": row["file_id"], "name": row["name"], "size": row["size"]}
        for row in await file_store.files_of_job(db, job_id)
    ]


# --- problem assets --------------------------------------------------------------------------------


def asset_url(settings: Settings, digest: str, name: str) -> str:
    return f"{settings.asset_base_url.rstrip('/')}/assets/{digest}/{quote(name, safe='')}"


def asset_json(settings: Settings, row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "problem_id": row["problem_id"],
        "name": row["name"],
        "kind": row["kind"],
        "media_type": row["media_type"],
        "size": row["size"],
        "sha256": row["blob"],
        "in_workdir": bool(row["in_workdir"]),
        "url": asset_url(settings, row["blob"], row["name"]),
        "created_at": row["created_at"],
    }


async def _asset_plan(
    src: Database | aiosqlite.Connection,
    settings: Settings,
    problem_id: int,
    item: Prepared,
    in_workdir: bool,
    replace: bool,
) -> tuple[str, Row | None]:
    old = await file_store.asset_named(src, problem_id, item.name)
    if old is not None and old["blob"] == item.digest:
        action = "same"
    elif old is not None and not replace:
        raise Conflict(
            "duplicate_name",
            f"the problem already has an asset named {item.name!r}; delete it first or send replace=true",
            field="file",
        )
    else:
        action = "replace" if old is not None else "new"
    if action == "new" and await file_store.asset_count(src, problem_id) >= settings.assets_max_per_problem:
        raise Conflict(
            "too_many_assets", f"a problem may have at most {settings.assets_max_per_problem} assets", field="file"
        )
    if in_workdir:
        others = [a for a in await file_store.workdir_assets(src, problem_id) if a["name"] != item.name]
        if len(others) + 1 > settings.job_files_max:
            raise Invalid(
                "too_many_job_files",
                f"a program gets at most {settings.job_files_max} files; this would be one more",
                field="in_workdir",
            )
        if sum(a["size"] for a in others) + item.size > settings.job_files_max_bytes:
            raise TooLarge(
                "job_files_too_large",
                f"the files given to every submission may total at most {settings.job_files_max_bytes} bytes",
                field="file",
            )
    return action, old


async def upload_asset(
    db: Database,
    blobs: BlobStore,
    settings: Settings,
    user: User,
    problem_id: int,
    filename: str | None,
    data: bytes,
    *,
    in_workdir: bool = True,
    replace: bool = False,
) -> tuple[dict[str, Any], bool]:
    """Attach an asset to a problem the teacher owns. Returns it and whether anything new was stored."""
    require_staff(user)
    await problems.readable_row(db, user, problem_id)  # staff: their own problems only (admins: all)
    name = clean_name(filename, settings.file_name_max_chars)
    kind = sniff(data, name)
    if kind == "zip":
        raise _archive_refused(name, "ZIP")
    check_allowed(kind, settings, name)
    item = _prepared(name, kind, data)
    await _asset_plan(db, settings, problem_id, item, in_workdir, replace)
    await asyncio.to_thread(blobs.put, item.data)
    values = {
        "problem_id": problem_id,
        "name": name,
        "kind": kind,
        "media_type": item.media_type,
        "size": item.size,
        "blob": item.digest,
        "in_workdir": int(in_workdir),
        "uploaded_by": user.id,
    }
    async with db.transaction() as conn:
        try:
            action, old = await _asset_plan(conn, settings, problem_id, item, in_workdir, replace)
        except AppError:
            await _discard(conn, blobs, [item.digest])
            raise
        await _ensure_blobs(blobs, [item])
        if old is None:
            asset_id = await file_store.insert_asset(conn, values)
        else:
            asset_id = old["id"]
            await file_store.update_asset(conn, asset_id, values)
            if action == "replace":
                await _discard(conn, blobs, [old["blob"]])
    row = await file_store.asset(db, problem_id, asset_id)
    assert row is not None
    return asset_json(settings, row), action != "same"


async def list_assets(db: Database, settings: Settings, user: User, problem_id: int) -> list[dict[str, Any]]:
    await problems.readable_row(db, user, problem_id)
    return [asset_json(settings, row) for row in await file_store.assets_of(db, problem_id)]


async def delete_asset(db: Database, blobs: BlobStore, user: User, problem_id: int, asset_id: int) -> None:
    require_staff(user)
    await problems.readable_row(db, user, problem_id)
    async with db.transaction() as conn:
        row = await file_store.asset(conn, problem_id, asset_id)
        if row is None:
            raise NotFound("not_found", "no such asset")
        await file_store.delete_asset(conn, asset_id)
        await _discard(conn, blobs, [row["blob"]])


async def asset_content(db: Database, blobs: BlobStore, digest: str, name: str) -> tuple[Row, bytes]:
    """The bytes behind a content-hashed asset URL. Only blobs that are problem assets are served:
    the URL names content, and a user's file or a hidden output must never be reachable by hash."""
    row = await file_store.asset_by_content(db, digest, name) if DIGEST.match(digest) else None
    if row is None:
        raise NotFound("not_found", "no such asset")
    return row, await asyncio.to_thread(blobs.get, digest)


# --- expiry and purges ------------------------------------------------------------------------------


async def purge_expired_files(db: Database, blobs: BlobStore, now: float | None = None) -> dict[str, int]:
    """Delete expired (and owner-deleted) files no submission keeps, then their unused blobs."""
    now = time.time() if now is None else now
    files = removed = 0
    for _ in range(PURGE_MAX_BATCHES):
        async with db.transaction() as conn:
            digests = await file_store.delete_expired(conn, now, PURGE_BATCH)
            removed += await _discard(conn, blobs, digests)
        files += len(digests)
        if len(digests) < PURGE_BATCH:
            break
    return {"files": files, "blobs": removed}


def _old_blobs(blobs: BlobStore, cutoff: float) -> list[str]:
    old = []
    for digest in blobs.digests():
        try:
            if blobs.path_for(digest).stat().st_mtime < cutoff:
                old.append(digest)
        except (FileNotFoundError, ValueError):
            continue  # deleted meanwhile, or a stray file that is not a blob
    return old


async def purge_orphan_blobs(db: Database, blobs: BlobStore, grace_s: float = ORPHAN_GRACE_S) -> int:
    """Unlink blobs no row uses any more (left by deleted problems, jobs, users), in batches."""
    candidates = await asyncio.to_thread(_old_blobs, blobs, time.time() - grace_s)
    removed = 0
    for start in range(0, min(len(candidates), PURGE_BATCH * PURGE_MAX_BATCHES), PURGE_BATCH):
        async with db.transaction() as conn:
            removed += await _discard(conn, blobs, candidates[start : start + PURGE_BATCH])
    return removed
