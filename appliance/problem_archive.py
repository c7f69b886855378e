"""A problem as a plain zip a teacher can keep in git: problem.json, statement.md, tests/NN.in|.out.

Import reads only the members problem.json names, under the shared zip-safety checks
(`appliance.archive_limits`: member count, unpacked size, path traversal, damaged members), so a
hostile archive (zip bomb, path traversal) is refused before anything is stored.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from appliance.archive_limits import ArchiveRefused, SafeZip, ZipLimits, safe_path
from appliance.errors import AppError, Invalid, TooLarge
from appliance.settings import Settings
from appliance.store import problems as problem_store

FORMAT = "labrunner-problem/1"
MAX_MEMBERS_SLACK = 4  # problem.json, statement.md and directory entries beside the tests
# What problem.json carries: every field a teacher edits but the statement (statement.md).
_META_FIELDS = tuple(name for name in problem_store.EDITABLE_FIELDS if name != "statement")


def pack(problem: dict[str, Any]) -> bytes:
    """Zip a problem as returned to its teacher (all test cases included)."""
    meta: dict[str, Any] = {"format": FORMAT, **{k: problem[k] for k in _META_FIELDS}, "tests": []}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("statement.md", problem["statement"])
        for index, test in enumerate(problem["test_cases"], start=1):
            stem = f"tests/{index:02d}"
            archive.writestr(f"{stem}.in", test["stdin"])
            archive.writestr(f"{stem}.out", test["expected_stdout"])
            meta["tests"].append(
                {
                    "name": test["name"],
                    "visibility": test["visibility"],
                    "reveal_at": test["reveal_at"],
                    "weight": test["weight"],
                    "input": f"{stem}.in",
                    "output": f"{stem}.out",
                }
            )
        archive.writestr("problem.json", json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return buffer.getvalue()


def _refusal(refused: ArchiveRefused, what: str, name: str, declared: int) -> AppError:
    """An archive refusal in the words (and error codes) of the problem import API."""
    match refused.reason:
        case "too_large":
            return TooLarge("archive_too_large", "the archive unpacks to more than the import limit")
        case "unsafe_path":
            return Invalid("invalid_archive", f"{what}: {name!r} is not a safe path inside the archive")
        case "symlink":
            return Invalid("invalid_archive", f"{what}: {name!r} is a symbolic link, not a file")
        case "wrong_size":
            larger = "larger" if refused.size > declared else "smaller"
            return Invalid("invalid_archive", f"{what}: {name!r} is {larger} than its header says")
        case _:  # damaged or encrypted (no member size or ratio limit is set here)
            return Invalid("invalid_archive", f"{what}: {name!r} is damaged, encrypted or compressed oddly")


def _read_text(archive: SafeZip, name: Any, what: str) -> str:
    if not isinstance(name, str) or not safe_path(name):
        raise Invalid("invalid_archive", f"{what}: {name!r} is not a safe path inside the archive")
    info = archive.getinfo(name)
    if info is None:
        raise Invalid("invalid_archive", f"{what}: the archive has no {name!r}")
    try:
        data = archive.read(info)  # counts towards the import's unpacked-size limit
    except ArchiveRefused as refused:
        raise _refusal(refused, what, name, info.file_size) from refused
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid("invalid_encoding", f"{what}: {name!r} is not UTF-8 text") from exc


def unpack(raw: bytes, settings: Settings) -> dict[str, Any]:
    """Turn an archive into a problem body for `problems.create` (classes left empty)."""
    limits = ZipLimits(
        max_members=2 * settings.max_test_cases + MAX_MEMBERS_SLACK, max_bytes=settings.max_import_bytes * 4
    )
    try:
        archive = SafeZip(raw, limits)
    except ArchiveRefused as exc:
        raise Invalid("invalid_archive", "the upload is not a zip archive") from exc
    with archive:
        try:
            archive.check_count(len(archive.infolist()))
        except ArchiveRefused as exc:
            raise Invalid("invalid_archive", "the archive has more files than a problem can hold") from exc
        try:
            meta = json.loads(_read_text(archive, "problem.json", "problem.json"))
        except json.JSONDecodeError as exc:
            raise Invalid("invalid_archive", f"problem.json is not valid JSON: {exc}") from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise Invalid("invalid_archive", f'problem.json must say "format": "{FORMAT}"')
        tests = meta.get("tests")
        if not isinstance(tests, list):
            raise Invalid("invalid_archive", "problem.json needs a list of tests")
        body: dict[str, Any] = {k: meta[k] for k in _META_FIELDS if k in meta}
        body["statement"] = _read_text(archive, "statement.md", "statement")
        body["test_cases"] = []
        for index, test in enumerate(tests):
            if not isinstance(test, dict):
                raise Invalid("invalid_archive", f"tests[{index}] must be an object")
            entry = {k: test[k] for k in ("name", "visibility", "reveal_at", "weight") if test.get(k) is not None}
            entry["stdin"] = _read_text(archive, test.get("input"), f"tests[{index}].input")
            entry["expected_stdout"] = _read_text(archive, test.get("output"), f"tests[{index}].output")
            body["test_cases"].append(entry)
    return body
