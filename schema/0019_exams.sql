-- Exam mode (issue 11): between its start and end, a class's students see only the exam's
-- problems, may be refused runs, have a submission count per problem, and keep one live session.
-- Times are appliance/clock.py's stored form, so the window is compared as plain text.
CREATE TABLE exams (
    id INTEGER PRIMARY KEY,
    class_id INTEGER NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    ends_at TEXT NOT NULL,
    runs_allowed INTEGER NOT NULL DEFAULT 1,
    -- NULL: no limit beyond the appliance's own submission budgets.
    max_submissions_per_problem INTEGER CHECK (max_submissions_per_problem IS NULL OR max_submissions_per_problem >= 1),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CHECK (ends_at > starts_at)
);
-- "Is any class of this student in an exam now?" is asked on every student request that lists or
-- reads problems: by class, newest end first.
CREATE INDEX exams_class_window ON exams(class_id, ends_at, starts_at);

CREATE TABLE exam_problems (
    exam_id INTEGER NOT NULL REFERENCES exams(id) ON DELETE CASCADE,
    problem_id INTEGER NOT NULL REFERENCES problems(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (exam_id, problem_id)
);
CREATE INDEX exam_problems_problem ON exam_problems(problem_id);

-- Sessions a student's new login ended during an exam (hashes only, as in `sessions`), so the old
-- browser is told why it was logged out rather than just "please log in". Kept until the ended
-- session would have expired anyway.
CREATE TABLE ended_sessions (
    id_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    ended_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX ended_sessions_expiry ON ended_sessions(expires_at);
