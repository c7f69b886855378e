-- The job queue (runs, submissions, rejudges) and per-test results.
-- Queue times are epoch seconds (REAL) because lease and backoff arithmetic happens in SQL.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('run', 'submission', 'rejudge')),
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    problem_id INTEGER REFERENCES problems(id) ON DELETE CASCADE,
    -- For a rejudge: the submission (a job of kind 'submission') it re-runs.
    rejudge_of INTEGER REFERENCES jobs(id) ON DELETE CASCADE,
    language TEXT NOT NULL,
    code TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    stdin TEXT NOT NULL DEFAULT '',
    priority INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    verdict TEXT,
    score REAL,
    compile_output TEXT,
    infra_attempts INTEGER NOT NULL DEFAULT 0,
    infra_log TEXT NOT NULL DEFAULT '[]',
    not_before REAL NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires REAL,
    -- For a submission: the rejudge whose result the teacher published (NULL: its own result).
    published_rejudge INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    CHECK ((kind = 'run') = (problem_id IS NULL))
);
CREATE INDEX jobs_claim ON jobs(status, priority, id);
CREATE INDEX jobs_user ON jobs(user_id, status);
CREATE INDEX jobs_dedup ON jobs(user_id, problem_id, code_hash);
CREATE INDEX jobs_problem ON jobs(problem_id, kind);
CREATE INDEX jobs_rejudge ON jobs(rejudge_of);

CREATE TABLE job_tests (
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    test_case_id INTEGER REFERENCES test_cases(id) ON DELETE SET NULL,
    name TEXT NOT NULL,
    verdict TEXT NOT NULL,
    exit_code INTEGER,
    signal INTEGER,
    time_ms INTEGER NOT NULL,
    stdout TEXT NOT NULL,
    stderr TEXT NOT NULL,
    truncated INTEGER NOT NULL DEFAULT 0,
    stdout_blob TEXT,
    stderr_blob TEXT,
    PRIMARY KEY (job_id, position)
);
