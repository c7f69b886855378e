"""Gradebooks for teachers and progress for students, from the same summary of submissions.

The CSV exports follow nbgrader's shape: a long table with one row per student × problem, and a
wide one with a column per problem for spreadsheets and LMS imports. Scores are out of 100; a
student's grade for a problem is their best finished submission; a submission made after the
student's due date is marked late (`appliance.deadlines`), and so is a grade that comes from one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from appliance import classes, exams, jobs
from appliance.accounts import User
from appliance.clock import api_iso
from appliance.csvio import write_csv
from appliance.db import Database, Row
from appliance.store import classes as class_store
from appliance.store import gradebook as gradebook_store

MAX_SCORE = 100.0


@dataclass
class Cell:
    """One student's standing on one problem."""

    attempts: int = 0
    best_score: float | None = None
    best_verdict: str | None = None
    last_status: str | None = None
    last_verdict: str | None = None
    last_at: str | None = None  # as stored
    late_attempts: int = 0
    best_late: bool = False

    @property
    def solved(self) -> bool:
        return self.best_score is not None and self.best_score >= MAX_SCORE

    def to_json(self) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "best_score": self.best_score,
            "best_verdict": self.best_verdict,
            "solved": self.solved,
            "last_status": self.last_status,
            "last_verdict": self.last_verdict,
            "last_submitted_at": api_iso(self.last_at),
            "late_attempts": self.late_attempts,
            "best_late": self.best_late,
        }


def summarize(rows: Iterable[Row]) -> dict[tuple[int, int], Cell]:
    """(user_id, problem_id) → Cell, from submissions in creation order."""
    cells: dict[tuple[int, int], Cell] = {}
    for row in rows:
        cell = cells.setdefault((row["user_id"], row["problem_id"]), Cell())
        cell.attempts += 1
        cell.late_attempts += bool(row["late"])
        cell.last_status, cell.last_verdict, cell.last_at = row["status"], row["verdict"], row["created_at"]
        # Only finished, graded work counts; a later equal score does not replace the first.
        if row["status"] == "done" and row["score"] is not None:
            if cell.best_score is None or row["score"] > cell.best_score:
                cell.best_score, cell.best_verdict, cell.best_late = row["score"], row["verdict"], bool(row["late"])
    return cells


async def class_gradebook(db: Database, user: User, class_id: int) -> dict[str, Any]:
    row = await classes.owned_row(db, user, class_id)
    problems = [{"id": p["id"], "title": p["title"]} for p in await gradebook_store.class_problems(db, class_id)]
    students = [m for m in await class_store.members(db, class_id) if m["role"] == "student"]
    cells = summarize(await gradebook_store.class_submissions(db, class_id))
    out_students = []
    for student in students:
        mine = {p["id"]: cells.get((student["id"], p["id"]), Cell()) for p in problems}
        out_students.append(
            {
                "id": student["id"],
                "username": student["username"],
                "total": sum(c.best_score or 0.0 for c in mine.values()),
                "solved": sum(1 for c in mine.values() if c.solved),
                "cells": {str(pid): c.to_json() for pid, c in mine.items()},
            }
        )
    return {
        "class": {"id": row["id"], "name": row["name"]},
        "max_score": MAX_SCORE,
        "problems": problems,
        "students": out_students,
    }


def long_csv(book: dict[str, Any]) -> bytes:
    header = (
        "class",
        "username",
        "problem_id",
        "problem",
        "attempts",
        "best_score",
        "max_score",
        "verdict",
        "solved",
        "last_submitted_at",
        "best_late",
        "late_attempts",
    )
    rows = []
    for student in book["students"]:
        for problem in book["problems"]:
            cell = student["cells"][str(problem["id"])]
            rows.append(
                (
                    book["class"]["name"],
                    student["username"],
                    problem["id"],
                    problem["title"],
                    cell["attempts"],
                    cell["best_score"],
                    book["max_score"],
                    cell["best_verdict"],
                    cell["solved"],
                    cell["last_submitted_at"],
                    cell["best_late"],
                    cell["late_attempts"],
                )
            )
    return write_csv(header, rows)


def wide_csv(book: dict[str, Any]) -> bytes:
    # The id keeps two problems with the same title apart in the header.
    titles = [f"{problem['title']} (id {problem['id']})" for problem in book["problems"]]
    header = ["username", *titles, "total", "solved"]
    rows = [
        [
            student["username"],
            *(student["cells"][str(p["id"])]["best_score"] for p in book["problems"]),
            student["total"],
            student["solved"],
        ]
        for student in book["students"]
    ]
    return write_csv(header, rows)


async def progress(db: Database, user: User) -> list[dict[str, Any]]:
    """The caller's standing on every problem they submitted to (for their problem list)."""
    # During their exam a student's standing elsewhere is hidden like the problems themselves.
    rows: list[Any] = list(await gradebook_store.user_submissions(db, user.id, await exams.problem_scope(db, user)))
    if not user.is_staff:
        rows = [
            {
                **{key: row[key] for key in row.keys()},
                "verdict": jobs.student_verdict(row["verdict"], row["hidden_feedback"], row["first_visible_failure"]),
            }
            for row in rows
        ]
    cells = summarize(rows)
    return [{"problem_id": pid, **cell.to_json()} for (_, pid), cell in sorted(cells.items())]
