-- Every run of a scheduled or admin-started maintenance job (issue 10): backups, restores and the
-- periodic purges, readable by admins as the job history.
CREATE TABLE job_runs (
    id INTEGER PRIMARY KEY,
    -- 'backup', 'restore', or a periodic task's name.
    job TEXT NOT NULL,
    -- What started it: 'schedule', 'catch_up' (a slot missed while the machine was off),
    -- 'admin' (the API), 'cli'.
    trigger TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    outcome TEXT NOT NULL DEFAULT 'running' CHECK (outcome IN ('running', 'ok', 'failed')),
    -- Bytes written (a backup's archive size), when the job writes any.
    bytes INTEGER,
    -- JSON: counts (rows per table, blobs, ...), the archive's name, or the error's code and message.
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX job_runs_job_started ON job_runs(job, started_at);
CREATE INDEX job_runs_started ON job_runs(started_at);
