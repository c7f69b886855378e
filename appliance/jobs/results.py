"""Results of runs and submissions as each reader may see them.

Who may read a job, and what of it: staff see every test in full; a student sees hidden tests
only as their problem's `hidden_feedback` allows, and never a hidden test's output or pictures.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from appliance import exams, user_files
from appliance.accounts import User
from appliance.blobs import BlobStore
from appliance.clock import api_epoch
from appliance.db import Database, Row
from appliance.errors import NotFound
from appliance.store import jobs as job_store
from appliance.store import problems as problem_store
from runner import outcomes

FINAL = ("done", "failed")


async def _can_read(db: Database, user: User, job: Row) -> bool:
    if job["user_id"] == user.id or user.role == "admin":
        return True
    if user.role != "teacher" or job["problem_id"] is None:
        return False
    problem = await problem_store.get(db, job["problem_id"])
    return problem is not None and problem["owner_id"] == user.id


async def readable_job(db: Database, user: User, job_id: int, kind: str) -> Row:
    """The job if `user` may read it and it is of `kind`; otherwise 404, as for a missing one."""
    job = await job_store.get(db, job_id)
    kinds = ("submission", "rejudge") if kind == "submission" else (kind,)
    if job is None or job["kind"] not in kinds or not await _can_read(db, user, job):
        raise NotFound("not_found", f"no such {kind}")
    if job["kind"] == "rejudge" and not user.is_staff:
        raise NotFound("not_found", f"no such {kind}")
    await _refuse_outside_exam(db, user, job, kind)
    return job


async def _refuse_outside_exam(db: Database, user: User, job: Row, kind: str) -> None:
    """During their exam a student reads only their submissions to its problems (404 for others)."""
    if job["problem_id"] is not None and not user.is_staff:
        scope = await exams.problem_scope(db, user)
        if scope is not None and job["problem_id"] not in scope:
            raise NotFound("not_found", f"no such {kind}")


def _infra(job: Row, staff: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"infra_retries": job["infra_attempts"]}
    if job["status"] == "failed":
        out["error"] = {
            "code": "infra_error",
            "message": "the sandbox could not run this program after several tries; your attempt was not counted. "
            "Please try again later or tell your teacher.",
        }
    if staff:
        out["infra_log"] = json.loads(job["infra_log"] or "[]")
    return out


def _pictures_json(base: str, rows: Sequence[Row]) -> dict[str, Any]:
    """`images`: URLs of the still pictures in the order drawn; `animation`: the APNG of the
    frames, if there is one."""
    stills = [f"{base}/images/{r['idx']}" for r in rows if r["kind"] == "still"]
    animation = next((f"{base}/images/{r['idx']}" for r in rows if r["kind"] == "animation"), None)
    return {"images": stills, "animation": animation}


def _ending(language: str, row: Row) -> dict[str, Any]:
    """How the test's program ended, in words the output does not say plainly: `stopped` (the runner
    stopped it at its wall time and judged what it drew) and a `hint` on its error, or None."""
    return {
        "stopped": outcomes.stopped_at_wall_time(row["verdict"], row["signal"]),
        "hint": outcomes.hint(language, row["verdict"], row["stderr"]),
    }


def _test_json(row: Row, full: bool, pictures: dict[str, Any], language: str) -> dict[str, Any]:
    out = {"position": row["position"], "name": row["name"], "verdict": row["verdict"], "visible": bool(row["visible"])}
    if row["visible"] or full:
        out.update(pictures)
        out.update(_ending(language, row))
        out.update(
            exit_code=row["exit_code"],
            signal=row["signal"],
            time_ms=row["time_ms"],
            stdout=row["stdout"],
            stderr=row["stderr"],
            truncated=bool(row["truncated"]),
            stdin=row["stdin"],
            expected_stdout=row["expected_stdout"],
            full_output=bool(row["stdout_blob"] or row["stderr_blob"]),
        )
    if full and "visibility" in row.keys():
        # Staff see every test in full; this says which ones their students see only as a verdict.
        out["visibility"] = row["visibility"]
    return out


def _read_judged(blobs: BlobStore, rows: Sequence[Row]) -> list[tuple[str, str] | None]:
    """Each row's judged stdin and expected output from the blob store; None where none was kept."""
    out: list[tuple[str, str] | None] = []
    for row in rows:
        pair = None
        if row["stdin_blob"] and row["expected_blob"]:
            try:
                pair = (
                    blobs.get(row["stdin_blob"]).decode(errors="replace"),
                    blobs.get(row["expected_blob"]).decode(errors="replace"),
                )
            except (OSError, ValueError):  # a lost or corrupt blob (a restore without blobs): not kept
                pair = None
        out.append(pair)
    return out


async def _judged_data(blobs: BlobStore, rows: Sequence[Row]) -> list[dict[str, Any]]:
    """For staff: the stdin and expected output each test was judged against, not the test case as
    it is now. `test_data_kept` False: neither is known, because the result predates snapshots
    (migration 0011) and its test case was replaced or deleted since."""
    snapshots = await asyncio.to_thread(_read_judged, blobs, rows)
    out = []
    for row, snapshot in zip(rows, snapshots, strict=True):
        if snapshot is not None:
            out.append({"stdin": snapshot[0], "expected_stdout": snapshot[1], "test_data_kept": True})
        else:
            # A test case that still links is unchanged since judging: edits replace test cases.
            linked = row["test_case_id"] is not None
            out.append({"stdin": row["stdin"], "expected_stdout": row["expected_stdout"], "test_data_kept": linked})
    return out


def student_verdict(verdict: str | None, hidden_feedback: str, first_visible_failure: str | None) -> str | None:
    """The overall verdict a student is shown. It is the first failing test's, so with summary
    feedback a failing hidden test would tell its own verdict through it: then the student sees
    the verdict of the first failing test they can see, or wrong_answer if only hidden ones failed.
    A job stopped by staff (the dashboard's Abort) says so: no test decided it."""
    if hidden_feedback != "summary" or verdict in (None, "accepted", "compile_error", "stopped"):
        return verdict
    return first_visible_failure or "wrong_answer"


async def _judgement(db: Database, blobs: BlobStore, job: Row, full: bool, hidden_feedback: str) -> dict[str, Any]:
    """A job's result as `full` (staff) or a student sees it. With `hidden_feedback` "summary" a
    student gets no row for a hidden test, only `hidden_tests`: how many of them passed."""
    summary = not full and hidden_feedback == "summary"
    if full:
        tests = await job_store.tests_full(db, job["id"])
        judged = await _judged_data(blobs, tests)
    else:
        tests = await job_store.tests_for_student(db, job["id"], hidden_rows=not summary)
        judged = [{} for _ in tests]
    passed, total = await job_store.hidden_summary(db, job["id"])
    verdict = job["verdict"]
    if not full:
        failing = next((t["verdict"] for t in tests if t["visible"] and t["verdict"] != "accepted"), None)
        verdict = student_verdict(verdict, hidden_feedback, failing)
    pictures: dict[int, list[Row]] = {}
    for picture in await job_store.job_images(db, job["id"], student=not full):
        pictures.setdefault(picture["position"], []).append(picture)
    base = f"/api/submissions/{job['id']}/tests"
    return {
        "status": job["status"],
        "verdict": verdict,
        "score": job["score"],
        "compile_output": job["compile_output"],
        "position": await job_store.queue_position(db, job),
        "tests": [
            {
                **_test_json(
                    t, full, _pictures_json(f"{base}/{t['position']}", pictures.get(t["position"], [])), job["language"]
                ),
                **data,
            }
            for t, data in zip(tests, judged, strict=True)
        ],
        # Tests a student cannot see now (hidden, or reveal-later before their date).
        "hidden_tests": {"passed": passed, "total": total},
        "created_at": api_epoch(job["created_at"]),
        "finished_at": api_epoch(job["finished_at"]),
    }


async def submission_json(db: Database, blobs: BlobStore, user: User, job_id: int) -> dict[str, Any]:
    job = await readable_job(db, user, job_id, "submission")
    staff = user.is_staff
    problem = await problem_store.get(db, job["problem_id"])
    feedback = problem["hidden_feedback"] if problem is not None else "summary"
    shown = job
    if job["published_rejudge"] is not None:
        shown = await job_store.get(db, job["published_rejudge"]) or job
    out: dict[str, Any] = {
        "id": job["id"],
        "kind": job["kind"],
        "problem_id": job["problem_id"],
        "user_id": job["user_id"],
        "language": job["language"],
        "code": job["code"],
        "attempts": await job_store.attempt_number(db, job) if job["kind"] == "submission" else None,
        "files": await user_files.files_of_job(db, job["rejudge_of"] or job["id"]),
        "hidden_feedback": feedback,
        "late": bool(job["late"]),
        **await _judgement(db, blobs, shown, staff, feedback),
        **_infra(shown, staff),
    }
    if staff and job["kind"] == "submission":
        out["original"] = {**await _judgement(db, blobs, job, True, feedback), **_infra(job, True)}
        out["rejudges"] = [
            {"id": r["id"], **await _judgement(db, blobs, r, True, feedback), **_infra(r, True)}
            for r in await job_store.rejudges_of(db, job["id"])
        ]
        out["published_rejudge"] = job["published_rejudge"]
    return out


async def run_json(db: Database, user: User, job_id: int) -> dict[str, Any]:
    job = await readable_job(db, user, job_id, "run")
    tests = await job_store.tests_full(db, job_id)
    first = tests[0] if tests else None
    # Only its owner (or an admin) reads a run, and a run has no hidden tests.
    pictures = await job_store.job_images(db, job_id, student=False)
    return {
        "id": job["id"],
        "language": job["language"],
        "status": job["status"],
        "verdict": job["verdict"],
        "position": await job_store.queue_position(db, job),
        "stdout": first["stdout"] if first else None,
        "stderr": first["stderr"] if first else None,
        "exit_code": first["exit_code"] if first else None,
        "signal": first["signal"] if first else None,
        "time_ms": first["time_ms"] if first else None,
        "truncated": bool(first["truncated"]) if first else False,
        **(_ending(job["language"], first) if first else {"stopped": False, "hint": None}),
        "full_output": bool(first and (first["stdout_blob"] or first["stderr_blob"])),
        "compile_output": job["compile_output"],
        "files": await user_files.files_of_job(db, job["id"]),
        **_pictures_json(f"/api/runs/{job_id}", pictures),
        "created_at": api_epoch(job["created_at"]),
        "finished_at": api_epoch(job["finished_at"]),
        **_infra(job, user.is_staff),
    }


async def job_status(db: Database, job_id: int) -> tuple[str, int | None]:
    job = await job_store.get(db, job_id)
    if job is None:
        return "gone", None
    return job["status"], await job_store.queue_position(db, job)


async def full_output(db: Database, user: User, job_id: int, kind: str, position: int, stream: str) -> str | None:
    """The blob hash of a test's full output, if the caller may see that test; None if nothing was cut."""
    await _readable_result(db, user, job_id, kind)
    full = user.is_staff or kind == "run"
    tests = await (job_store.tests_full(db, job_id) if full else job_store.tests_for_student(db, job_id))
    for test in tests:
        if test["position"] == position and test["visible"]:
            return test[f"{stream}_blob"]
    raise NotFound("not_found", "no such test output")


async def _result_job(db: Database, user: User, job_id: int) -> Row:
    """A submission, or a rejudge of one: staff read what `readable_job` lets them; a student also
    the published rejudge of their own submission, whose results their submission shows."""
    job = await job_store.get(db, job_id)
    if job is not None and job["kind"] == "rejudge" and not user.is_staff:
        parent = await job_store.get(db, job["rejudge_of"])
        if parent is None or parent["user_id"] != user.id or parent["published_rejudge"] != job_id:
            raise NotFound("not_found", "no such submission")
        await _refuse_outside_exam(db, user, job, "submission")
        return job
    return await readable_job(db, user, job_id, "submission")


async def _readable_result(db: Database, user: User, job_id: int, kind: str) -> Row:
    """The job whose per-test results (outputs, pictures) the caller asks for, if they may."""
    if kind == "run":
        return await readable_job(db, user, job_id, "run")
    return await _result_job(db, user, job_id)


async def picture(db: Database, user: User, job_id: int, kind: str, position: int, idx: int) -> Row:
    """One picture a test drew, if the caller may see that test (hidden tests: never a student)."""
    await _readable_result(db, user, job_id, kind)
    student = kind != "run" and not user.is_staff
    rows = await job_store.job_images(db, job_id, student=student, position=position, idx=idx)
    if not rows:
        raise NotFound("not_found", "no such picture")
    return rows[0]
