"""What kind of file a blob of bytes is, judged by its content (magic numbers, UTF-8 text), never
by its name or declared type; and whether this appliance accepts that kind.

The name only refines text (a .py file is Python, a .csv file CSV) and words the refusals.
"""

from __future__ import annotations

import json
import re

from appliance.errors import UnsupportedMedia
from appliance.file_kinds import KINDS, parse_allowed
from appliance.settings import Settings

# Text is UTF-8 without NUL or the control characters that only binary data holds: tab, newlines,
# vertical tab, form feed and escape (terminal colours in a saved log) are fine.
_TEXT_CONTROLS = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")
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
            raise archive_refused(name, label)
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
        raise archive_refused(name, "tar" if data[257:262] == b"ustar" else "bzip2")
    raise UnsupportedMedia(
        "unknown_file_type",
        f"{name}: this content is not a type Labrunner accepts (UTF-8 text, images, sounds)",
        field="file",
    )


def _executable_refused(name: str) -> UnsupportedMedia:
    return UnsupportedMedia(
        "executable_refused", f"{name}: programs and executables cannot be uploaded; upload source code", field="file"
    )


def archive_refused(name: str, label: str) -> UnsupportedMedia:
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
