"""A student's data: exported as a zip, or erased (teachers of theirs and admins; see
`appliance.student_access`)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from appliance import erasure, student_export
from appliance.app_keys import BLOBS, DB, SETTINGS
from appliance.http.jsonio import body, json_response, path_id
from appliance.http.middleware import current_user
from appliance.http.routing import Routes
from appliance.http.shapes import BOOLEAN, INTEGER, STRING, TIMESTAMP, obj

routes = Routes()

ERASED = obj(
    user_id=INTEGER,
    username=STRING,
    erased_at=TIMESTAMP,
    removed={"type": "object", "additionalProperties": INTEGER},
    storage_scrubbed=BOOLEAN,
)
CHUNK = 65536


@routes.route(
    "GET",
    "/api/users/{id}/export",
    access="user",
    summary="A student's data as a zip (profile, submissions, runs, drafts, files, pictures): "
    "for the student, their teacher or an admin; 403 exam_export_refused while the student is in an exam",
    response_type="application/zip",
)
async def export_student(request: web.Request) -> web.StreamResponse:
    student, data = await student_export.export(
        request.app[DB], request.app[BLOBS], request.app[SETTINGS], current_user(request), path_id(request)
    )
    with data:
        size = data.seek(0, 2)
        data.seek(0)
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/zip",
                "Content-Disposition": f'attachment; filename="labrunner-student-{student["id"]}.zip"',
            }
        )
        response.content_length = size
        await response.prepare(request)
        while chunk := await asyncio.to_thread(data.read, CHUNK):
            await response.write(chunk)
        await response.write_eof()
    return response


@routes.route(
    "POST",
    "/api/users/{id}/erase",
    access="staff",
    summary="Erase a student's personal data (their username typed again to confirm); the gradebook keeps "
    "their scores under a pseudonym",
    body=erasure.ERASE,
    response=ERASED,
)
async def erase_student(request: web.Request) -> web.Response:
    data = await body(request)
    return json_response(
        await erasure.erase(
            request.app[DB], request.app[BLOBS], current_user(request), path_id(request), data["confirm_username"]
        )
    )
