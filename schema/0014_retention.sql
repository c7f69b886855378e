-- Retention purges (issue 10): the daily purge removes what its policy no longer keeps, per user by
-- their age on the day of the purge, and records here what it removed, so an admin can show it.

-- One row per kind of data a purge run looked at (written even when nothing was due, so the log
-- shows the run happened). Counts only: nothing in this table names a user.
CREATE TABLE retention_purges (
    id INTEGER PRIMARY KEY,
    -- When the run began: the rows of one run share it, and the next run is due from it.
    run_at TEXT NOT NULL,
    -- minor: users under adult_age that day; adult: the others; everyone: expiry that ignores age.
    policy TEXT NOT NULL CHECK (policy IN ('minor', 'adult', 'everyone')),
    -- runs, submission_content, submissions, files, drafts, outputs, sessions, tokens, blobs.
    what TEXT NOT NULL,
    rows INTEGER NOT NULL,
    blobs INTEGER NOT NULL,
    -- What was purged was older than this; NULL for a rule that is not an age (blobs nothing uses).
    older_than TEXT,
    finished_at TEXT NOT NULL
);
CREATE INDEX retention_purges_run ON retention_purges(run_at);

-- What a purge already took from a finished job: 'outputs' (its outputs and pictures), 'content'
-- (its code, input and files as well; the verdict and score stay for the gradebook). NULL: whole.
ALTER TABLE jobs ADD COLUMN purged TEXT CHECK (purged IN ('outputs', 'content'));

-- Deleting a job sets NULL in every submission that published it as its rejudge; without an index
-- each deleted job would scan the whole jobs table for them.
CREATE INDEX jobs_published_rejudge ON jobs(published_rejudge) WHERE published_rejudge IS NOT NULL;

-- The blob purges ask of every blob column whether a row still names a hash: these two columns of
-- 0011 had no index, so every batch of every purge scanned all test results twice.
CREATE INDEX job_tests_stdin_blob ON job_tests(stdin_blob) WHERE stdin_blob IS NOT NULL;
CREATE INDEX job_tests_expected_blob ON job_tests(expected_blob) WHERE expected_blob IS NOT NULL;
