"""One student's data as a zip: what a school hands over when a student (or their parents) asks
what is kept about them.

Every result is shown as the student sees it, whoever asks: a hidden test's input and expected
output, and the program's output and pictures on it, are the teacher's test data (and would give
them away), so the zip can be handed to the student as it is. Nobody else's rows are in it.

Layout: README.txt; profile.json; drafts.json; files.json with files/<id>/<name>;
submissions.json and runs.json, with <kind>/<id>/<source file>, <kind>/<id>/files/<name>,
<kind>/<id>/outputs/<test>-<stream>.txt (full outputs too long for the JSON) and
<kind>/<id>/pictures/<test>-<n>.png.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import zipfile
from dataclasses import dataclass, field
from typing import IO, Any

from appliance import comments, exams, jobs
from appliance.accounts import User
from appliance.blobs import BlobStore
from appliance.clock import api_iso, db_now
from appliance.db import Database, Row
from appliance.settings import Settings
from appliance.store import files as file_store
from appliance.store import jobs as job_store
from appliance.store import student_data
from appliance.student_access import managed_student
from runner.languages import LANGUAGES

README = """\
This archive holds the data Labrunner keeps about one student, as of {when}.

profile.json      the account, its classes, accepted legal texts, script tokens and sessions
drafts.json       code being written (one per problem, and the scratchpad)
files.json        uploaded files; their contents are under files/
submissions.json  every submission with its code, results and teachers' comments; the code and
                  files of each are under submissions/<id>/, with full outputs and pictures
runs.json         every run (code tried without grading), laid out like the submissions

Results are shown as the student sees them: hidden tests show their verdict only.
"""
_EXTENSIONS = {"image/png": "png", "image/apng": "png"}


@dataclass
class _Archive:
    """What goes in the zip: documents, and members whose bytes are in the blob store."""

    documents: dict[str, bytes] = field(default_factory=dict)
    blobs: list[tuple[str, str]] = field(default_factory=list)  # (path, digest)

    def json(self, path: str, data: Any) -> None:
        self.documents[path] = json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")

    def blob(self, path: str, digest: str) -> str:
        self.blobs.append((path, digest))
        return path


def _safe(name: str) -> str:
    # Names were checked at upload (no folders, no leading dot); this keeps any old one inside its folder.
    return name.replace("/", "_").replace("\\", "_").lstrip(".") or "unnamed"


def _source_name(language: str) -> str:
    lang = LANGUAGES.get(language)
    return lang.source_name if lang else "code.txt"


def _profile(student: Row, memberships: list[Row], legal: list[Row], tokens: list[Row], sessions: list[Row]) -> Any:
    return {
        "user": {
            "id": student["id"],
            "username": student["username"],
            "role": student["role"],
            "birthdate": student["birthdate"],
            "created_at": api_iso(student["created_at"]),
            "disabled": bool(student["disabled"]),
        },
        "classes": [
            {
                "id": m["id"],
                "name": m["name"],
                "added_at": api_iso(m["added_at"]),
                "joined_by_code": bool(m["joined_by_code"]),
            }
            for m in memberships
        ],
        "legal_acceptances": [
            {"kind": a["kind"], "version": a["version"], "accepted_at": api_iso(a["accepted_at"])} for a in legal
        ],
        "tokens": [{key: (api_iso(t[key]) if key.endswith("_at") else t[key]) for key in t.keys()} for t in tokens],
        "sessions": [
            {"created_at": api_iso(s["created_at"]), "expires_at": api_iso(s["expires_at"])} for s in sessions
        ],
    }


async def _job_members(
    db: Database, archive: _Archive, base: str, job: Row, shown_id: int, student: bool
) -> dict[str, Any]:
    """Code, input files, full outputs and pictures of one job, as members under `base`."""
    exported: dict[str, Any] = {"code": f"{base}/{_source_name(job['language'])}"}
    archive.documents[exported["code"]] = job["code"].encode("utf-8")
    exported["files"] = [
        archive.blob(f"{base}/files/{_safe(row['name'])}", row["blob"])
        for row in await file_store.files_of_job(db, job["rejudge_of"] or job["id"])
    ]
    tests = await (job_store.tests_for_student(db, shown_id) if student else job_store.tests_full(db, shown_id))
    exported["outputs"] = [
        archive.blob(f"{base}/outputs/{test['position']}-{stream}.txt", test[f"{stream}_blob"])
        for test in tests
        for stream in ("stdout", "stderr")
        if test["visible"] and test[f"{stream}_blob"]
    ]
    exported["pictures"] = [
        archive.blob(f"{base}/pictures/{p['position']}-{p['idx']}.{_EXTENSIONS.get(p['media_type'], 'bin')}", p["blob"])
        for p in await job_store.job_images(db, shown_id, student=student)
    ]
    return exported


async def _collect(db: Database, blobs: BlobStore, student: Row) -> _Archive:
    user_id = student["id"]
    as_student = User.from_row(student)
    archive = _Archive()
    archive.documents["README.txt"] = README.format(when=api_iso(db_now())).encode("utf-8")
    archive.json(
        "profile.json",
        _profile(
            student,
            await student_data.memberships(db, user_id),
            await student_data.legal_acceptances(db, user_id),
            await student_data.tokens(db, user_id),
            await student_data.sessions(db, user_id),
        ),
    )
    archive.json(
        "drafts.json",
        [
            {**{k: d[k] for k in d.keys()}, "updated_at": api_iso(d["updated_at"])}
            for d in await student_data.drafts(db, user_id)
        ],
    )
    archive.json(
        "files.json",
        [
            {
                "id": f["id"],
                "name": f["name"],
                "kind": f["kind"],
                "media_type": f["media_type"],
                "size": f["size"],
                "created_at": api_iso(f["created_at"]),
                "expires_at": api_iso(f["expires_at"]),
                "deleted_at": api_iso(f["deleted_at"]),
                "path": archive.blob(f"files/{f['id']}/{_safe(f['name'])}", f["blob"]),
            }
            for f in await student_data.files(db, user_id)
        ],
    )
    submissions = []
    for job_id in await student_data.job_ids(db, user_id, "submission"):
        job = await job_store.get(db, job_id)
        if job is None:  # removed since it was listed (its problem was deleted)
            continue
        data = await jobs.submission_json(db, blobs, as_student, job_id)
        data["comments"] = await comments.list_for(db, as_student, job_id)
        shown = job["published_rejudge"] or job_id
        data["exported"] = await _job_members(db, archive, f"submissions/{job_id}", job, shown, student=True)
        submissions.append(data)
    archive.json("submissions.json", submissions)
    runs = []
    for job_id in await student_data.job_ids(db, user_id, "run"):
        job = await job_store.get(db, job_id)
        if job is None:
            continue
        data = await jobs.run_json(db, as_student, job_id)
        data["code"] = job["code"]
        data["stdin"] = job["stdin"]
        data["exported"] = await _job_members(db, archive, f"runs/{job_id}", job, job_id, student=False)
        runs.append(data)
    archive.json("runs.json", runs)
    return archive


def _write(archive: _Archive, blobs: BlobStore, out: IO[bytes]) -> None:
    missing: list[str] = []
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for path, data in archive.documents.items():
            bundle.writestr(path, data)
        for path, digest in archive.blobs:
            try:
                bundle.writestr(path, blobs.get(digest))
            except (OSError, ValueError):  # a lost or corrupt blob: said so, not a failed export
                missing.append(path)
        if missing:
            bundle.writestr("MISSING.txt", "These files were lost from the blob store:\n" + "\n".join(missing) + "\n")
    out.seek(0)


async def export(
    db: Database, blobs: BlobStore, settings: Settings, actor: User, user_id: int
) -> tuple[Row, IO[bytes]]:
    """The student's row and their export as an open temporary file (gone once closed). The
    student may export their own data; otherwise as `managed_student` says."""
    student = await managed_student(db, actor, user_id, self_allowed=True)
    await exams.refuse_export_during_exam(db, User.from_row(student))
    archive = await _collect(db, blobs, student)
    # On disk, not in memory: a student's files, outputs and pictures may add up to many megabytes.
    out = tempfile.TemporaryFile(dir=settings.data_dir)
    try:
        await asyncio.to_thread(_write, archive, blobs, out)
    except BaseException:
        out.close()
        raise
    return student, out
