"""Job plans and transcripts as JSON, for the trip between the server and a runner host.

A plan is an `ExecRequest` (the program, the tests' inputs, the limits: never an expected output,
which the request does not carry), a transcript an `ExecResult`. Bytes travel as base64. Decoding
checks every field's type, because a transcript comes from another machine: whatever a host sends
either decodes into the same dataclasses the local executor returns, or is refused with
`PlanError`, never half-read.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from runner.executor import (
    CompileOutcome,
    ExecRequest,
    ExecResult,
    Image,
    InputFile,
    TestInput,
    TestOutcome,
)

_STATUSES = frozenset({"ok", "time_limit", "memory_limit", "output_limit", "runtime_error"})


class PlanError(ValueError):
    """A plan or transcript that is not what the other side would have sent."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: object, where: str) -> bytes:
    if not isinstance(value, str):
        raise PlanError(f"{where}: expected base64 text")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise PlanError(f"{where}: not base64") from None


def _get(record: object, key: str, kind: type | tuple[type, ...], where: str, optional: bool = False) -> Any:
    if not isinstance(record, dict):
        raise PlanError(f"{where}: expected an object")
    value = record.get(key)
    if value is None and optional:
        return None
    # bool is an int in Python: a count must not be `true`.
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
        raise PlanError(f"{where}.{key}: wrong type")
    return value


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _list(record: object, key: str, where: str) -> list[Any]:
    return list(_get(record, key, list, where))


def request_to_json(request: ExecRequest) -> dict[str, Any]:
    return {
        "language": request.language,
        "code": request.code,
        "tests": [{"name": test.name, "stdin": _b64(test.stdin)} for test in request.tests],
        "files": [{"name": file.name, "data": _b64(file.data)} for file in request.files],
        "time_limit_ms": request.time_limit_ms,
        "memory_limit_mb": request.memory_limit_mb,
        "graphical": request.graphical,
        "graphical_time": request.graphical_time,
        "owner": request.owner,
        "hidden_tests": request.hidden_tests,
    }


def request_from_json(record: object) -> ExecRequest:
    where = "plan"
    return ExecRequest(
        language=_get(record, "language", str, where),
        code=_get(record, "code", str, where),
        tests=[
            TestInput(_get(test, "name", str, "plan.tests"), _unb64(_get(test, "stdin", str, "plan.tests"), "stdin"))
            for test in _list(record, "tests", where)
        ],
        files=[
            InputFile(_get(file, "name", str, "plan.files"), _unb64(_get(file, "data", str, "plan.files"), "data"))
            for file in _list(record, "files", where)
        ],
        time_limit_ms=_get(record, "time_limit_ms", int, where),
        memory_limit_mb=_get(record, "memory_limit_mb", int, where),
        graphical=_get(record, "graphical", bool, where),
        graphical_time=_get(record, "graphical_time", bool, where),
        owner=_get(record, "owner", str, where, optional=True),
        hidden_tests=_get(record, "hidden_tests", bool, where),
    )


def result_to_json(result: ExecResult) -> dict[str, Any]:
    compiled = result.compile
    return {
        "compile": None
        if compiled is None
        else {"ok": compiled.ok, "output": compiled.output, "time_ms": compiled.time_ms},
        "tests": [
            {
                "name": test.name,
                "status": test.status,
                "exit_code": test.exit_code,
                "stdout": _b64(test.stdout),
                "stderr": _b64(test.stderr),
                "time_ms": test.time_ms,
                "truncated": test.truncated,
                "signal": test.signal,
                "images": [
                    {
                        "media_type": image.media_type,
                        "label": image.label,
                        "width": image.width,
                        "height": image.height,
                        "data": _b64(image.data),
                    }
                    for image in test.images
                ],
            }
            for test in result.tests
        ],
        "sandbox_id": result.sandbox_id,
    }


def _image(record: object) -> Image:
    where = "transcript.images"
    return Image(
        media_type=_get(record, "media_type", str, where),
        label=_get(record, "label", str, where),
        width=_get(record, "width", int, where),
        height=_get(record, "height", int, where),
        data=_unb64(_get(record, "data", str, where), where),
    )


def _test(record: object) -> TestOutcome:
    where = "transcript.tests"
    status = _get(record, "status", str, where)
    if status not in _STATUSES:
        raise PlanError(f"{where}.status: unknown status")
    return TestOutcome(
        name=_get(record, "name", str, where),
        status=status,
        exit_code=_get(record, "exit_code", int, where, optional=True),
        stdout=_unb64(_get(record, "stdout", str, where), where),
        stderr=_unb64(_get(record, "stderr", str, where), where),
        time_ms=_get(record, "time_ms", int, where),
        truncated=_get(record, "truncated", bool, where),
        signal=_get(record, "signal", int, where, optional=True),
        images=[_image(image) for image in _list(record, "images", where)],
    )


def result_from_json(record: object) -> ExecResult:
    where = "transcript"
    compiled = _get(record, "compile", dict, where, optional=True)
    return ExecResult(
        compile=None
        if compiled is None
        else CompileOutcome(
            ok=_get(compiled, "ok", bool, "transcript.compile"),
            output=_get(compiled, "output", str, "transcript.compile"),
            time_ms=_get(compiled, "time_ms", int, "transcript.compile"),
        ),
        tests=[_test(test) for test in _list(record, "tests", where)],
        sandbox_id=_get(record, "sandbox_id", str, where, optional=True),
    )
