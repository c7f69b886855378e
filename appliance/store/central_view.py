"""The central view's SQL: what the central instance holds of each registered appliance.

The synced records (`synced_*.record`) are the bundles' whole JSON, and a problem's holds every
test case, hidden ones included. So every query here names the fields it returns
(`json_extract`, or counts over `json_each`), and none returns a `record` column: what is never
selected cannot reach a page.
"""

from __future__ import annotations

from appliance.db import Database, Dialect, Row, dialect_of


# The records are JSON text. The engines share no JSON functions: these spell a field, and the
# elements of an array field, in each engine's own.
def _field(dialect: Dialect, column: str, key: str, *, integer: bool = False) -> str:
    """A field of a JSON object: text, or with `integer` a number (SQLite's json_extract gives
    each JSON value its own SQL type; PostgreSQL's ->> gives text)."""
    if dialect == "postgresql":
        text = f"(CAST({column} AS jsonb) ->> '{key}')"
        return f"CAST({text} AS BIGINT)" if integer else text
    return f"json_extract({column}, '$.{key}')"


def _elements(dialect: Dialect, column: str, key: str, alias: str) -> str:
    """A FROM item: the elements of an array field, each as `alias.value`."""
    if dialect == "postgresql":
        return f"jsonb_array_elements(CAST({column} AS jsonb) -> '{key}') AS {alias}(value)"
    return f"json_each({column}, '$.{key}') {alias}"


def _number(dialect: Dialect, value: str) -> str:
    """An array element that is a number (a user id)."""
    return f"CAST({value} AS BIGINT)" if dialect == "postgresql" else value


def _appliance(d: Dialect) -> str:
    return (
        "SELECT a.id, a.name, a.fingerprint, a.appliance_id, a.added_at, a.last_generation, a.last_watermark,"
        " a.last_imported_at,"
        " (SELECT count(*) FROM synced_classes c WHERE c.appliance_id = a.appliance_id) AS classes,"
        " (SELECT count(*) FROM synced_problems p WHERE p.appliance_id = a.appliance_id) AS problems,"
        " (SELECT count(*) FROM synced_users u WHERE u.appliance_id = a.appliance_id AND u.role = 'student')"
        " AS students,"
        " (SELECT count(*) FROM synced_submissions s WHERE s.appliance_id = a.appliance_id) AS submissions,"
        f" (SELECT max({_field(d, 's.record', 'created_at')}) FROM synced_submissions s"
        "  WHERE s.appliance_id = a.appliance_id) AS last_submission_at"
        " FROM sync_appliances a"
    )


async def appliances(db: Database) -> list[Row]:
    return await db.fetchall(f"{_appliance(dialect_of(db))} ORDER BY a.name")


async def appliance(db: Database, registration_id: int) -> Row | None:
    return await db.fetchone(f"{_appliance(dialect_of(db))} WHERE a.id = ?", (registration_id,))


async def last_imports(db: Database, job: str, per_appliance: int) -> list[Row]:
    """The newest `per_appliance` recorded imports of each registration, newest first."""
    d = dialect_of(db)
    registration = _field(d, "detail", "registration", integer=True)
    return await db.fetchall(
        "SELECT registration, finished_at, generation, since, watermark FROM ("
        f" SELECT {registration} AS registration, finished_at,"
        f" {_field(d, 'detail', 'generation', integer=True)} AS generation,"
        f" {_field(d, 'detail', 'since', integer=True)} AS since,"
        f" {_field(d, 'detail', 'watermark', integer=True)} AS watermark,"
        f" row_number() OVER (PARTITION BY {registration} ORDER BY id DESC) AS nth"
        " FROM job_runs WHERE job = ? AND outcome = 'ok') AS t"
        " WHERE nth <= ? ORDER BY registration, nth",
        (job, per_appliance),
    )


async def classes(db: Database, appliance_id: str) -> list[Row]:
    d = dialect_of(db)
    return await db.fetchall(
        "SELECT c.local_id, c.name, o.name AS teacher,"
        f" (SELECT count(*) FROM {_elements(d, 'c.record', 'members', 'm')} JOIN synced_users u"
        f"  ON u.appliance_id = c.appliance_id AND u.local_id = {_number(d, 'm.value')} WHERE u.role = 'student')"
        " AS students"
        " FROM synced_classes c"
        " LEFT JOIN synced_users o ON o.appliance_id = c.appliance_id AND o.local_id = c.owner_local_id"
        " WHERE c.appliance_id = ? ORDER BY c.name, c.local_id",
        (appliance_id,),
    )


async def problems(db: Database, appliance_id: str) -> list[Row]:
    """Title, language and how many tests of each visibility: counts only, never a test's content."""
    d = dialect_of(db)
    tests = _elements(d, "p.record", "test_cases", "t")
    visibility = _field(d, "t.value", "visibility")
    return await db.fetchall(
        f"SELECT p.local_id, p.title, {_field(d, 'p.record', 'language')} AS language,"
        f" {_field(d, 'p.record', 'updated_at')} AS updated_at,"
        f" (SELECT count(*) FROM {tests} WHERE {visibility} = 'visible') AS visible_tests,"
        f" (SELECT count(*) FROM {tests} WHERE {visibility} != 'visible') AS other_tests"
        " FROM synced_problems p WHERE p.appliance_id = ? ORDER BY p.title, p.local_id",
        (appliance_id,),
    )


async def assignments(db: Database, appliance_id: str) -> list[Row]:
    """(class, problem) pairs: the problem is set in the class."""
    d = dialect_of(db)
    return await db.fetchall(
        f"SELECT {_field(d, 'k.value', 'class', integer=True)} AS class_id, p.local_id AS problem_id"
        f" FROM synced_problems p CROSS JOIN {_elements(d, 'p.record', 'classes', 'k')} WHERE p.appliance_id = ?"
        " ORDER BY class_id, problem_id",
        (appliance_id,),
    )


async def class_students(db: Database, appliance_id: str) -> list[Row]:
    d = dialect_of(db)
    return await db.fetchall(
        "SELECT c.local_id AS class_id, u.local_id AS user_id"
        f" FROM synced_classes c CROSS JOIN {_elements(d, 'c.record', 'members', 'm')}"
        f" JOIN synced_users u ON u.appliance_id = c.appliance_id AND u.local_id = {_number(d, 'm.value')}"
        " WHERE c.appliance_id = ? AND u.role = 'student'",
        (appliance_id,),
    )


async def best_scores(db: Database, appliance_id: str) -> list[Row]:
    """Per student and problem: the best graded score (None before one) and the last submission."""
    d = dialect_of(db)
    return await db.fetchall(
        "SELECT user_local_id AS user_id, problem_local_id AS problem_id,"
        f" max(CASE WHEN {_field(d, 'record', 'status')} = 'done' THEN score END) AS best,"
        f" max({_field(d, 'record', 'created_at')}) AS last_at"
        " FROM synced_submissions WHERE appliance_id = ? GROUP BY user_local_id, problem_local_id",
        (appliance_id,),
    )
