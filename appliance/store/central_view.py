"""The central view's SQL: what the central instance holds of each registered appliance.

The synced records (`synced_*.record`) are the bundles' whole JSON, and a problem's holds every
test case, hidden ones included. So every query here names the fields it returns
(`json_extract`, or counts over `json_each`), and none returns a `record` column: what is never
selected cannot reach a page.
"""

from __future__ import annotations

from appliance.db import Database, Row

_APPLIANCE = (
    "SELECT a.id, a.name, a.fingerprint, a.appliance_id, a.added_at, a.last_generation, a.last_watermark,"
    " a.last_imported_at,"
    " (SELECT count(*) FROM synced_classes c WHERE c.appliance_id = a.appliance_id) AS classes,"
    " (SELECT count(*) FROM synced_problems p WHERE p.appliance_id = a.appliance_id) AS problems,"
    " (SELECT count(*) FROM synced_users u WHERE u.appliance_id = a.appliance_id AND u.role = 'student') AS students,"
    " (SELECT count(*) FROM synced_submissions s WHERE s.appliance_id = a.appliance_id) AS submissions,"
    " (SELECT max(json_extract(s.record, '$.created_at')) FROM synced_submissions s"
    "  WHERE s.appliance_id = a.appliance_id) AS last_submission_at"
    " FROM sync_appliances a"
)


async def appliances(db: Database) -> list[Row]:
    return await db.fetchall(f"{_APPLIANCE} ORDER BY a.name")


async def appliance(db: Database, registration_id: int) -> Row | None:
    return await db.fetchone(f"{_APPLIANCE} WHERE a.id = ?", (registration_id,))


async def last_imports(db: Database, job: str, per_appliance: int) -> list[Row]:
    """The newest `per_appliance` recorded imports of each registration, newest first."""
    return await db.fetchall(
        "SELECT registration, finished_at, generation, since, watermark FROM ("
        " SELECT json_extract(detail, '$.registration') AS registration, finished_at,"
        " json_extract(detail, '$.generation') AS generation, json_extract(detail, '$.since') AS since,"
        " json_extract(detail, '$.watermark') AS watermark,"
        " row_number() OVER (PARTITION BY json_extract(detail, '$.registration') ORDER BY id DESC) AS nth"
        " FROM job_runs WHERE job = ? AND outcome = 'ok')"
        " WHERE nth <= ? ORDER BY registration, nth",
        (job, per_appliance),
    )


async def classes(db: Database, appliance_id: str) -> list[Row]:
    return await db.fetchall(
        "SELECT c.local_id, c.name, o.name AS teacher,"
        " (SELECT count(*) FROM json_each(c.record, '$.members') m JOIN synced_users u"
        "  ON u.appliance_id = c.appliance_id AND u.local_id = m.value WHERE u.role = 'student') AS students"
        " FROM synced_classes c"
        " LEFT JOIN synced_users o ON o.appliance_id = c.appliance_id AND o.local_id = c.owner_local_id"
        " WHERE c.appliance_id = ? ORDER BY c.name, c.local_id",
        (appliance_id,),
    )


async def problems(db: Database, appliance_id: str) -> list[Row]:
    """Title, language and how many tests of each visibility: counts only, never a test's content."""
    return await db.fetchall(
        "SELECT p.local_id, p.title, json_extract(p.record, '$.language') AS language,"
        " json_extract(p.record, '$.updated_at') AS updated_at,"
        " (SELECT count(*) FROM json_each(p.record, '$.test_cases') t"
        "  WHERE json_extract(t.value, '$.visibility') = 'visible') AS visible_tests,"
        " (SELECT count(*) FROM json_each(p.record, '$.test_cases') t"
        "  WHERE json_extract(t.value, '$.visibility') != 'visible') AS other_tests"
        " FROM synced_problems p WHERE p.appliance_id = ? ORDER BY p.title, p.local_id",
        (appliance_id,),
    )


async def assignments(db: Database, appliance_id: str) -> list[Row]:
    """(class, problem) pairs: the problem is set in the class."""
    return await db.fetchall(
        "SELECT json_extract(k.value, '$.class') AS class_id, p.local_id AS problem_id"
        " FROM synced_problems p, json_each(p.record, '$.classes') k WHERE p.appliance_id = ?"
        " ORDER BY class_id, problem_id",
        (appliance_id,),
    )


async def class_students(db: Database, appliance_id: str) -> list[Row]:
    return await db.fetchall(
        "SELECT c.local_id AS class_id, u.local_id AS user_id"
        " FROM synced_classes c, json_each(c.record, '$.members') m"
        " JOIN synced_users u ON u.appliance_id = c.appliance_id AND u.local_id = m.value"
        " WHERE c.appliance_id = ? AND u.role = 'student'",
        (appliance_id,),
    )


async def best_scores(db: Database, appliance_id: str) -> list[Row]:
    """Per student and problem: the best graded score (None before one) and the last submission."""
    return await db.fetchall(
        "SELECT user_local_id AS user_id, problem_local_id AS problem_id,"
        " max(CASE WHEN json_extract(record, '$.status') = 'done' THEN score END) AS best,"
        " max(json_extract(record, '$.created_at')) AS last_at"
        " FROM synced_submissions WHERE appliance_id = ? GROUP BY user_local_id, problem_local_id",
        (appliance_id,),
    )
