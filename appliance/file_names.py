"""File names: what a user's file or a problem's asset may be called in a program's working directory."""

from __future__ import annotations

import unicodedata

from appliance.errors import Invalid
from runner.languages import LANGUAGES

# Names a program's own files take in its working directory (any language's source, the compiled
# program): an input file there would clash with them.
RESERVED_NAMES = frozenset({lang.source_name for lang in LANGUAGES.values()} | {"main", "Main.class"})
# Unicode categories refused in names: controls, invisible format characters (the right-to-left
# override makes "gpj.exe" look like "exe.jpg"), surrogates, private use, unassigned, line breaks.
_BAD_NAME_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


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
