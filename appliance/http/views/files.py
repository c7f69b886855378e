"""A user's own files: multipart upload, list, metadata, download, delete."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import BadHttpMessage

from appliance import user_files
from appliance.app_keys import BLOBS, DB, SETTINGS
from appliance.errors import Invalid, TooLarge, UnsupportedMedia
from appliance.file_kinds import KINDS
from appliance.http.jsonio import json_response
from appliance.http.middleware import current_user
from appliance.http.routing import Routes
from appliance.http.shapes import FILE, INTEGER, array, obj

# The quota an owner's files use.
QUOTA = obj(files=INTEGER, max_files=INTEGER, bytes=INTEGER, max_bytes=INTEGER)

routes = Routes()

# Room in a multipart body beyond the file itself: boundaries, part headers and the few short fields.
UPLOAD_OVERHEAD = 65_536
FIELD_MAX_BYTES = 1024
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class Upload:
    filename: str | None
    data: bytes
    fields: dict[str, str]


async def _read_part(part: BodyPartReader, limit: int, error: TooLarge | Invalid) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(65_536):
        size += len(chunk)
        if size > limit:
            raise error
        chunks.append(chunk)
    return b"".join(chunks)


async def read_upload(request: web.Request, limit: int, fields: tuple[str, ...]) -> Upload:
    """A multipart/form-data body: one part `file` (at most `limit` bytes) and the named short fields.

    Streamed with its own bounds (the app's body limit does not apply to multipart reading), and
    read entirely before anything is checked or stored.
    """
    if request.content_type != "multipart/form-data":
        raise UnsupportedMedia(
            "unsupported_media_type", "send the file as multipart/form-data, in a field named 'file'"
        )
    too_large = TooLarge("file_too_large", f"the file is larger than {limit} bytes", field="file")
    if request.content_length is not None and request.content_length > limit + UPLOAD_OVERHEAD:
        raise too_large
    upload: tuple[str | None, bytes] | None = None
    values: dict[str, str] = {}
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise Invalid("invalid_multipart", "nested multipart bodies are not accepted")
            name = part.name or ""
            if name in values or (name == "file" and upload is not None):
                raise Invalid(
                    "duplicate_field", f"field {name!r} was sent twice (one file per upload; zip several)", field=name
                )
            if name == "file":
                upload = (part.filename, await _read_part(part, limit, too_large))
            elif name in fields:
                long = Invalid("too_long", f"field {name!r} is longer than {FIELD_MAX_BYTES} bytes", field=name)
                raw = await _read_part(part, FIELD_MAX_BYTES, long)
                try:
                    values[name] = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise Invalid("invalid_encoding", f"field {name!r} is not UTF-8", field=name) from exc
            else:
                raise Invalid("unknown_field", f"unknown field {name!r}", field=name or None)
    except ValueError as exc:  # what aiohttp raises on a missing boundary or a broken body
        raise Invalid("invalid_multipart", f"the body is not valid multipart/form-data: {exc}") from exc
    except BadHttpMessage as exc:  # a part's headers: a control character (NUL) in a file name, too many
        raise Invalid(
            "invalid_multipart", f"a part of the multipart/form-data body has invalid headers: {exc.message}"
        ) from exc
    if upload is None:
        raise Invalid("missing_field", "field 'file' is required", field="file")
    return Upload(upload[0], upload[1], values)


def flag(upload: Upload, name: str, default: bool) -> bool:
    raw = upload.fields.get(name)
    if raw is None:
        return default
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise Invalid("invalid_value", f"field {name!r} must be true or false", field=name)


def content_disposition(kind: str, name: str) -> str:
    # An ASCII fallback for old clients, and the exact UTF-8 name (RFC 6266) for the rest.
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def content_type(media_type: str, kind: str) -> str:
    text = KINDS[kind].text if kind in KINDS else False
    return f"{media_type}; charset=utf-8" if text else media_type


@routes.route(
    "POST",
    "/api/files",
    access="user",
    summary="Upload a file (multipart field 'file'; optional name, replace, unpack for a ZIP): 201, or 200"
    " when the same file was there already (deduplicated)",
    status=(201, 200),
    request_type="multipart/form-data",
    # One file, or (a ZIP sent with unpack) {files: [...]}.
    response={"oneOf": [FILE, obj(files=array(FILE))]},
)
async def upload_file(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    upload = await read_upload(request, settings.file_max_bytes, ("name", "replace", "unpack"))
    uploaded = await user_files.upload(
        request.app[DB],
        request.app[BLOBS],
        settings,
        current_user(request),
        upload.fields.get("name") or upload.filename,
        upload.data,
        unpack=flag(upload, "unpack", False),
        replace=flag(upload, "replace", False),
    )
    status = 201 if uploaded.created else 200
    if uploaded.archive:
        return json_response({"files": uploaded.files}, status=status)
    return json_response(uploaded.files[0], status=status)


@routes.route(
    "GET",
    "/api/files",
    access="user",
    summary="The caller's files and how much of the quota they use",
    response=obj(files=array(FILE), quota=QUOTA),
)
async def list_files(request: web.Request) -> web.Response:
    return json_response(await user_files.list_for(request.app[DB], request.app[SETTINGS], current_user(request)))


@routes.route("GET", "/api/files/{id}", access="user", summary="A file's name, type, size and expiry", response=FILE)
async def get_file(request: web.Request) -> web.Response:
    return json_response(await user_files.get_for(request.app[DB], current_user(request), request.match_info["id"]))


@routes.route(
    "GET",
    "/api/files/{id}/content",
    access="user",
    summary="Download a file's bytes (with the file's own media type)",
    response_type="*/*",
)
async def download_file(request: web.Request) -> web.Response:
    row, data = await user_files.content_for(
        request.app[DB], request.app[BLOBS], current_user(request), request.match_info["id"]
    )
    return web.Response(
        body=data,
        headers={
            "Content-Type": content_type(row["media_type"], row["kind"]),
            # Never rendered in the appliance's origin: user content is always a download.
            "Content-Disposition": content_disposition("attachment", row["name"]),
        },
    )


@routes.route(
    "DELETE", "/api/files/{id}", access="user", summary="Delete a file (a submission using it keeps it)", status=204
)
async def delete_file(request: web.Request) -> web.Response:
    await user_files.delete(request.app[DB], request.app[BLOBS], current_user(request), request.match_info["id"])
    return web.Response(status=204)
