-- Files users upload, problem assets teachers upload, and the files given to each job.
-- Contents live in the blob store; rows hold its hash in a column named `blob` (or `*_blob`):
-- the blob purge finds every referencing column by that naming rule, so keep to it.

-- A user's uploaded file. The id is random (not a counter), so ids reveal nothing about other
-- users' files. Times are epoch seconds (REAL) because expiry arithmetic happens in SQL.
CREATE TABLE files (
    id TEXT PRIMARY KEY,
    owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    blob TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    -- Set when the owner deletes a file a stored submission still uses: the row stays (for the
    -- submission's readers) but is gone for its owner; the purge removes it with the submission.
    deleted_at REAL
);
CREATE INDEX files_owner ON files(owner_id, name);
CREATE INDEX files_expiry ON files(expires_at);
CREATE INDEX files_blob ON files(blob);

-- Images for statements and data files for every student of a problem, served at
-- content-hashed URLs; those marked in_workdir are also put in each submission's working dir.
CREATE TABLE problem_assets (
    id INTEGER PRIMARY KEY,
    problem_id INTEGER NOT NULL REFERENCES problems(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    blob TEXT NOT NULL,
    in_workdir INTEGER NOT NULL DEFAULT 1,
    uploaded_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    UNIQUE (problem_id, name)
);
CREATE INDEX problem_assets_blob ON problem_assets(blob, name);

-- The user files a run or submission was queued with, snapshotted (name and blob) at enqueue:
-- the job runs with exactly these bytes even if the file is deleted or expires meanwhile.
CREATE TABLE job_files (
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    file_id TEXT REFERENCES files(id) ON DELETE SET NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    blob TEXT NOT NULL,
    PRIMARY KEY (job_id, position)
);
CREATE INDEX job_files_file ON job_files(file_id);
CREATE INDEX job_files_blob ON job_files(blob);

-- The blob purge asks "does any row still use this hash?" of every blob column; without these,
-- each batch would scan all of job_tests. Partial: most tests have no full output kept.
CREATE INDEX job_tests_stdout_blob ON job_tests(stdout_blob) WHERE stdout_blob IS NOT NULL;
CREATE INDEX job_tests_stderr_blob ON job_tests(stderr_blob) WHERE stderr_blob IS NOT NULL;
