"""The central instance's view of its classroom appliances, for admins: each registered appliance
with its last import and lag, and for one appliance its classes, problems and the scores of each
class on each problem it is set.

Lag is the time since this instance last imported a bundle from the appliance: its copy here is at
least that old. A classroom pushes only when it has something new, so an idle one (a weekend) lags
without anything being wrong; what the last bundle carried (its changes, the time since the bundle
before) says how busy it was. Never imported: lag None, shown as "never".

Hidden test data: the synced problem records hold every test case; the store selects only the
fields shown here (appliance/store/central_view.py), never a record.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from typing import Any

from appliance import clock
from appliance.db import Database, Row
from appliance.errors import NotFound
from appliance.gradebook import MAX_SCORE
from appliance.store import central_view as store
from appliance.sync_import import JOB_NAME as IMPORT_JOB


def _seconds_between(earlier: str | None, later: str | None) -> float | None:
    if earlier is None or later is None:
        return None
    return round(clock.epoch(later) - clock.epoch(earlier), 1)


def _appliance(row: Row, imports: list[Row], now: float) -> dict[str, Any]:
    last = imports[0] if imports else None
    before = imports[1] if len(imports) > 1 else None
    imported = row["last_imported_at"]
    bundle = None
    if last is not None:
        since, watermark = int(last["since"]), int(last["watermark"])
        bundle = {
            "generation": int(last["generation"]),
            "since": since,
            "watermark": watermark,
            # A full bundle (since 0) is the appliance's whole state, not a count of recent changes.
            "changes": None if since == 0 else watermark - since,
            "after_s": None if before is None else _seconds_between(before["finished_at"], last["finished_at"]),
        }
    return {
        "id": row["id"],
        "name": row["name"],
        "fingerprint": row["fingerprint"],
        "appliance_id": row["appliance_id"],
        "added_at": clock.api_iso(row["added_at"]),
        "last_import_at": clock.api_iso(imported),
        "lag_s": None if imported is None else round(max(0.0, now - clock.epoch(imported)), 1),
        "generation": row["last_generation"],
        "watermark": row["last_watermark"],
        "last_bundle": bundle,
        "classes": row["classes"],
        "problems": row["problems"],
        "students": row["students"],
        "submissions": row["submissions"],
        "last_submission_at": clock.api_iso(row["last_submission_at"]),
    }


async def _imports_by_appliance(db: Database) -> dict[int, list[Row]]:
    grouped: dict[int, list[Row]] = defaultdict(list)
    for row in await store.last_imports(db, IMPORT_JOB, 2):
        if row["registration"] is not None:
            grouped[int(row["registration"])].append(row)
    return grouped


async def overview(db: Database) -> dict[str, Any]:
    now = time.time()
    imports = await _imports_by_appliance(db)
    rows = await store.appliances(db)
    return {"at": now, "appliances": [_appliance(row, imports[row["id"]], now) for row in rows]}


def _scores(
    classes: list[Row], problems: list[Row], pairs: list[Row], members: list[Row], best: list[Row]
) -> list[dict[str, Any]]:
    """One row per class and problem set in it: how many of its students tried, solved, and their
    best scores' mean and median (over those who have a graded score)."""
    class_names = {row["local_id"]: row["name"] for row in classes}
    titles = {row["local_id"]: row["title"] for row in problems}
    students: dict[int, set[int]] = defaultdict(set)
    for row in members:
        students[int(row["class_id"])].add(int(row["user_id"]))
    by_problem: dict[int, dict[int, Row]] = defaultdict(dict)
    for row in best:
        by_problem[int(row["problem_id"])][int(row["user_id"])] = row
    out = []
    for pair in pairs:
        class_id, problem_id = int(pair["class_id"]), int(pair["problem_id"])
        if class_id not in class_names:
            continue  # set in a class the appliance deleted since: nothing to aggregate
        mine = [by_problem[problem_id][user] for user in sorted(students[class_id]) if user in by_problem[problem_id]]
        graded = [float(row["best"]) for row in mine if row["best"] is not None]
        last = max((row["last_at"] for row in mine if row["last_at"] is not None), default=None)
        out.append(
            {
                "class_id": class_id,
                "class_name": class_names[class_id],
                "problem_id": problem_id,
                "problem_title": titles[problem_id],
                "students": len(students[class_id]),
                "attempted": len(mine),
                "solved": sum(1 for score in graded if score >= MAX_SCORE),
                "mean_best": round(statistics.fmean(graded), 1) if graded else None,
                "median_best": round(statistics.median(graded), 1) if graded else None,
                "last_submission_at": clock.api_iso(last),
            }
        )
    return sorted(out, key=lambda row: (row["class_name"], row["class_id"], row["problem_title"], row["problem_id"]))


async def detail(db: Database, registration_id: int) -> dict[str, Any]:
    row = await store.appliance(db, registration_id)
    if row is None:
        raise NotFound("appliance_not_found", "no appliance is registered here under this id")
    imports = (await _imports_by_appliance(db))[registration_id]
    shown = _appliance(row, imports, time.time())
    if row["appliance_id"] is None:
        return {**shown, "class_list": [], "problem_list": [], "scores": [], "max_score": MAX_SCORE}
    appliance_id = str(row["appliance_id"])
    classes = await store.classes(db, appliance_id)
    problems = await store.problems(db, appliance_id)
    scores = _scores(
        classes,
        problems,
        await store.assignments(db, appliance_id),
        await store.class_students(db, appliance_id),
        await store.best_scores(db, appliance_id),
    )
    return {
        **shown,
        "class_list": [
            {"id": c["local_id"], "name": c["name"], "teacher": c["teacher"], "students": c["students"]}
            for c in classes
        ],
        "problem_list": [
            {
                "id": p["local_id"],
                "title": p["title"],
                "language": p["language"],
                "updated_at": clock.api_iso(p["updated_at"]),
                "visible_tests": p["visible_tests"],
                "other_tests": p["other_tests"],
            }
            for p in problems
        ],
        "scores": scores,
        "max_score": MAX_SCORE,
    }
