-- One timestamp representation (DESIGN §3): every time is a fixed-width UTC ISO 8601 string with
-- microseconds, 'YYYY-MM-DDTHH:MM:SS.ffffffZ', which sorts as text in time order, so SQL compares
-- times as plain text and the queue keeps its sub-second precision.
--
-- PostgreSQL's form of schema/0010_timestamps.sql. SQLite keeps that text in the REAL columns of
-- 0002, 0003 and 0007 (its column types are only affinities); PostgreSQL needs them TEXT, so here
-- they change type, their epoch seconds converted as the SQLite migration converts them, and the
-- DEFAULT 0 of jobs.not_before and problems.tests_changed_at becomes epoch 0 in the stored form
-- (the code always writes both; DROP DEFAULT first, because USING does not convert a default).
-- The SQLite migration's rewriting of whole-second ISO text has nothing to do here: a PostgreSQL
-- database is always made by a Labrunner that writes the stored form.

ALTER TABLE jobs
    ALTER COLUMN not_before DROP DEFAULT,
    ALTER COLUMN not_before TYPE TEXT
        USING to_char(to_timestamp(not_before) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    ALTER COLUMN not_before SET DEFAULT '1970-01-01T00:00:00.000000Z',
    ALTER COLUMN lease_expires TYPE TEXT
        USING to_char(to_timestamp(lease_expires) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    ALTER COLUMN created_at TYPE TEXT
        USING to_char(to_timestamp(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    ALTER COLUMN started_at TYPE TEXT
        USING to_char(to_timestamp(started_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    ALTER COLUMN finished_at TYPE TEXT
        USING to_char(to_timestamp(finished_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');

ALTER TABLE files
    ALTER COLUMN created_at TYPE TEXT
        USING to_char(to_timestamp(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    ALTER COLUMN expires_at TYPE TEXT
        USING to_char(to_timestamp(expires_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    ALTER COLUMN deleted_at TYPE TEXT
        USING to_char(to_timestamp(deleted_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');

ALTER TABLE problems
    ALTER COLUMN tests_changed_at DROP DEFAULT,
    ALTER COLUMN tests_changed_at TYPE TEXT
        USING to_char(to_timestamp(tests_changed_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    ALTER COLUMN tests_changed_at SET DEFAULT '1970-01-01T00:00:00.000000Z';
